/**
 * The console's one Server-Sent Events stream per open page: the runtime pushes frames,
 * figures, training progress and model changes as they happen, so the page never polls.
 * Written by hand: the format is four lines of text, and express answers with a plain
 * response stream.
 */
import type { Request, Response } from 'express';

/** Comment lines keep proxies and browsers from closing an idle stream. */
const HEARTBEAT_MS = 20_000;
/** Open pages per console; more are refused (503) rather than letting a tab loop eat memory. */
export const MAX_VIEWERS = 32;

export class EventHub {
  private readonly clients = new Set<Response>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly onViewersChange: (viewers: number) => void = () => undefined) {}

  get viewers(): number {
    return this.clients.size;
  }

  /** Answers `req` with a stream; `first` is sent on it before anything else. Returns false when full. */
  open(req: Request, res: Response, first: { event: string; data: unknown }): boolean {
    if (this.clients.size >= MAX_VIEWERS) return false;
    res.status(200);
    res.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      // nginx would otherwise buffer the stream
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write(`retry: 2000\n`);
    res.write(frame(first.event, first.data));
    this.clients.add(res);
    const drop = (): void => {
      if (this.clients.delete(res)) this.changed();
    };
    req.on('close', drop);
    res.on('error', drop);
    this.changed();
    return true;
  }

  send(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const text = frame(event, data);
    for (const res of this.clients) res.write(text);
  }

  /** Ends every stream (node stopped); pages reconnect to whatever serves the path next. */
  close(): void {
    for (const res of this.clients) res.end();
    this.clients.clear();
    this.changed();
  }

  private changed(): void {
    if (this.clients.size > 0 && !this.heartbeat) {
      this.heartbeat = setInterval(() => this.clients.forEach((res) => res.write(': keep-alive\n\n')), HEARTBEAT_MS);
      this.heartbeat.unref();
    } else if (this.clients.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
    this.onViewersChange(this.clients.size);
  }
}

function frame(event: string, data: unknown): string {
  // JSON.stringify never emits a raw newline, so the data fits one `data:` line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
