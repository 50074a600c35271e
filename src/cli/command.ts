/** What every subcommand module provides, and the small pieces they share. */
import { isLaneVisionError } from '../errors.js';
import { oneLine, type CliStreams } from './output.js';

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text. */
  help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: readonly string[], streams: CliStreams): Promise<number>;
}

export const PROGRAM = 'lane-vision';

export const BACKEND_HELP = '--backend auto|tensorflow|wasm|cpu  TensorFlow.js backend (default: LANE_VISION_BACKEND, else the best available)';
export const ENGINE_HELP = '--engine auto|onnx|tfjs             engine running the backbone (default: LANE_VISION_ENGINE, else auto: ONNX Runtime when it can)';
export const INT8_HELP = '--int8 <folder>                     run the backbone in int8, calibrated on the images in <folder> (the lane\'s own frames, e.g. its dataset)';
export const JSON_HELP = '--json                              machine-readable output: one JSON object per line on stdout';

/** An error as a JSON field: a stable code and the message. */
export function errorRecord(err: unknown): { code: string; message: string } {
  return {
    code: isLaneVisionError(err) ? err.code : ((err as NodeJS.ErrnoException)?.code ?? 'ERROR'),
    message: oneLine(err instanceof Error ? err.message : String(err)),
  };
}
