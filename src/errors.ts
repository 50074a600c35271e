/**
 * One error type for the whole library, so nodes and the CLI can show a clear message
 * and branch on a stable `code` instead of parsing text.
 */
export class LaneVisionError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LaneVisionError';
    this.code = code;
  }
}

export function isLaneVisionError(err: unknown, code?: string): err is LaneVisionError {
  return err instanceof LaneVisionError && (code === undefined || err.code === code);
}

/** The message an error shows on a node or page: LaneVisionError messages are written for people. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
