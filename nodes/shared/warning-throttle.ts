/**
 * Counts repeated warnings of one kind instead of logging each: a broker away for an hour
 * at 30 frames/s would otherwise write 100,000 identical lines. The first occurrence is
 * logged at once; later ones within the interval are counted and logged as one line when
 * it has passed (or when the node closes).
 */
export interface WarningThrottle {
  /** One more occurrence; `details` are the latest (e.g. the topic) and go into the next line. */
  note(details: Record<string, string>): void;
  /** Logs what is still counted and stops the timer (on close). */
  flush(): void;
}

export function createWarningThrottle(
  warn: (count: number, details: Record<string, string>) => void,
  intervalMs = 60_000,
): WarningThrottle {
  let counted = 0;
  let latest: Record<string, string> = {};
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (counted > 0) warn(counted, latest);
    counted = 0;
  };

  return {
    note(details) {
      latest = details;
      if (timer) {
        counted++;
        return;
      }
      warn(1, details);
      timer = setTimeout(flush, intervalMs);
      timer.unref();
    },
    flush,
  };
}
