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

export interface EventHubLimits {
  /** Streams in all (default MAX_VIEWERS). */
  maxViewers: number;
  /** Streams from one address: a script or a tab loop on one machine cannot take them all. */
  perClient: number;
  /** Kept for requests that logged in (httpNodeAuth): anonymous ones stop this many short of the maximum. */
  reservedForAuthenticated: number;
  /** A stream is ended after this long; the page's EventSource reconnects within seconds, an abandoned one does not. */
  maxStreamMs: number;
  /** A client that stopped reading (this much unsent) is dropped instead of buffering without end. */
  maxBufferedBytes: number;
}

export const DEFAULT_HUB_LIMITS: EventHubLimits = {
  maxViewers: MAX_VIEWERS,
  perClient: 8,
  reservedForAuthenticated: 4,
  maxStreamMs: 15 * 60_000,
  maxBufferedBytes: 1024 * 1024,
};

/** Why a stream was not opened: the address has its share (429), or the console is full (503). */
export type OpenRefusal = 'client-limit' | 'full';

interface Client {
  res: Response;
  address: string;
  timer: NodeJS.Timeout;
}

export class EventHub {
  private readonly clients = new Map<Response, Client>();
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly limits: EventHubLimits;

  constructor(
    private readonly onViewersChange: (viewers: number) => void = () => undefined,
    limits: Partial<EventHubLimits> = {},
  ) {
    this.limits = { ...DEFAULT_HUB_LIMITS, ...limits };
  }

  get viewers(): number {
    return this.clients.size;
  }

  /**
   * Answers `req` with a stream; `first` is sent on it before anything else. Returns why
   * not when the caller's address has its share or the console is full (for anonymous
   * requests, full means the slots kept for logged-in ones are all that is left).
   */
  open(req: Request, res: Response, first: { event: string; data: unknown }, options: { authenticated?: boolean } = {}): OpenRefusal | undefined {
    const { maxViewers, perClient, reservedForAuthenticated } = this.limits;
    const address = req.socket?.remoteAddress ?? 'unknown';
    let fromAddress = 0;
    for (const client of this.clients.values()) if (client.address === address) fromAddress++;
    if (fromAddress >= perClient) return 'client-limit';
    const capacity = options.authenticated ? maxViewers : Math.max(0, maxViewers - reservedForAuthenticated);
    if (this.clients.size >= capacity) return 'full';
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
    const timer = setTimeout(() => this.end(res), this.limits.maxStreamMs);
    timer.unref();
    this.clients.set(res, { res, address, timer });
    const drop = (): void => this.forget(res);
    req.on('close', drop);
    res.on('error', drop);
    this.changed();
    return undefined;
  }

  send(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    this.write(frame(event, data));
  }

  /** Ends every stream (node stopped); pages reconnect to whatever serves the path next. */
  close(): void {
    for (const client of [...this.clients.values()]) this.end(client.res);
  }

  private write(text: string): void {
    for (const client of [...this.clients.values()]) {
      // A reader that stopped reading: end it rather than hold ever more text for it.
      if (client.res.writableLength > this.limits.maxBufferedBytes) this.end(client.res);
      else client.res.write(text);
    }
  }

  private end(res: Response): void {
    res.end();
    this.forget(res);
  }

  private forget(res: Response): void {
    const client = this.clients.get(res);
    if (!client) return;
    clearTimeout(client.timer);
    this.clients.delete(res);
    this.changed();
  }

  private changed(): void {
    if (this.clients.size > 0 && !this.heartbeat) {
      this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), HEARTBEAT_MS);
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
