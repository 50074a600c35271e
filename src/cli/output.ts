/**
 * Where the CLI writes: results on stdout (text, or one JSON object per line with
 * --json), everything about the run (backend, progress, warnings) on stderr, so
 * `--json` output can be piped as it is.
 */
import type { HeadMetrics } from '../training/index.js';

export interface CliStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

export class Output {
  constructor(
    readonly json: boolean,
    private readonly streams: CliStreams,
  ) {}

  /** A line of the human-readable result (ignored with --json). */
  line(text = ''): void {
    if (!this.json) this.streams.stdout.write(text + '\n');
  }

  /** One JSON record (only with --json). */
  record(value: unknown): void {
    if (this.json) this.streams.stdout.write(JSON.stringify(value) + '\n');
  }

  /** About the run, not the result: stderr, human mode only. */
  note(text: string): void {
    if (!this.json) this.streams.stderr.write(text + '\n');
  }

  /** A problem with one item of several (the run goes on): stderr, in both modes. */
  warn(text: string): void {
    this.streams.stderr.write(oneLine(text) + '\n');
  }

  /** Progress that overwrites itself on a terminal and stays silent otherwise. */
  progress(text: string | undefined): void {
    if (this.json || !this.streams.stderr.isTTY) return;
    this.streams.stderr.write(text === undefined ? '\r\x1b[K' : `\r\x1b[K${text}`);
  }

  /** The backend in use (and the engine running the model, when one does), on stderr. */
  backend(info: BackendSummary, engine?: string): void {
    this.note(`backend: ${describeBackend(info, engine)}`);
  }
}

/** What `describeBackend` needs of tfjs's `BackendInfo` or an engine's report of it. */
export interface BackendSummary {
  name: string;
  skipped: readonly { name: string; reason: string }[];
}

export function describeBackend(info: BackendSummary, engine?: string): string {
  const notes = [
    ...(engine ? [`engine ${engine}`] : []),
    ...info.skipped.map((s) => `skipped ${s.name}: ${s.reason}`),
  ];
  return notes.length ? `${info.name} (${notes.join('; ')})` : info.name;
}

/** The one-line form of a message (error messages may hold causes on several lines). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export function percent(share: number | null | undefined, digits = 1): string {
  return share === null || share === undefined || !Number.isFinite(share) ? '-' : `${(share * 100).toFixed(digits)}%`;
}

export function milliseconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

/** Left-aligned text columns, right-aligned number columns. */
export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[], numeric: readonly boolean[] = []): string[] {
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  return cells.map((row) =>
    row
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * Per-class precision/recall and the confusion matrix as text. Only classes that occur
 * (as truth or as prediction) are shown, so a 31-class model scored on 3 classes stays readable.
 */
export function metricsReport(metrics: HeadMetrics, codes?: readonly number[]): string[] {
  const shown = metrics.perClass
    .map((m, c) => ({ ...m, c, predicted: metrics.confusion.reduce((sum, row) => sum + row[c], 0) }))
    .filter((m) => m.support > 0 || m.predicted > 0);
  const lines = table(
    ['#', 'label', ...(codes ? ['code'] : []), 'frames', 'precision', 'recall', 'F1'],
    shown.map((m, i) => [
      i + 1,
      m.label,
      ...(codes ? [codes[m.c]] : []),
      m.support,
      m.predicted > 0 ? percent(m.precision) : '-',
      m.support > 0 ? percent(m.recall) : '-',
      m.support > 0 && m.predicted > 0 ? m.f1.toFixed(2) : '-',
    ]),
    [true, false, ...(codes ? [true] : []), true, true, true, true],
  );
  lines.push('', 'confusion (rows: true #, columns: predicted #)');
  const matrix = shown
    .filter((m) => m.support > 0)
    .map((row) => [shown.indexOf(row) + 1, ...shown.map((col) => metrics.confusion[row.c][col.c] || '.')]);
  lines.push(...table(['', ...shown.map((_, i) => String(i + 1))], matrix, [true, ...shown.map(() => true)]));
  return lines;
}
