/**
 * QoS >= 1 events not yet confirmed by the broker, kept in a file so that after a restart
 * (a crash, a redeploy, Node-RED stopped during an outage) they are published again, with
 * the payload and eventId they had. A receiver that saw one already drops it by eventId
 * (at least once, as QoS 1 is anyway).
 *
 * An append-only journal, one JSON line per event added and per event done, rewritten to
 * just the pending events when it has grown past twice their number. Lines are written
 * synchronously, so an event is on disk before its publish is under way; a line torn by a
 * crash is skipped on reading.
 *
 * Written here rather than through an mqtt.js store (mqtt-level-store): mqtt.js only holds
 * what it has in flight, while the offline queue (bounded, drop-oldest, counted) is the
 * connection's own, and a list of at most the queue limit needs no database.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';

const log = createDebug('lane-vision:events');

/** Journal lines beyond twice the pending events (and this many) trigger a rewrite. */
const COMPACT_SLACK = 1000;

export interface StoredEvent {
  id: number;
  topic: string;
  payload: Buffer;
  qos: 1 | 2;
}

type JournalLine = { add: number; topic: string; qos: 1 | 2; payload: string } | { done: number };

export class DiskOutbox {
  private fd: number;
  private readonly pendingEvents = new Map<number, StoredEvent>();
  private nextId = 1;
  private lines = 0;

  private constructor(private readonly file: string) {
    this.fd = -1;
  }

  /** Opens (or creates) the journal at `file`; the events still pending are returned in publish order. */
  static open(file: string): { outbox: DiskOutbox; pending: StoredEvent[] } {
    const outbox = new DiskOutbox(file);
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      outbox.read();
      outbox.compact();
    } catch (err) {
      throw new LaneVisionError('MQTT_OUTBOX_IO', `Cannot use the event outbox file ${file}: ${(err as Error).message}`, { cause: err });
    }
    return { outbox, pending: [...outbox.pendingEvents.values()] };
  }

  get pending(): number {
    return this.pendingEvents.size;
  }

  /** Records an event before it is handed to the broker; returns its id for `done`. */
  add(topic: string, payload: Buffer, qos: 1 | 2): number {
    const id = this.nextId++;
    this.pendingEvents.set(id, { id, topic, payload, qos });
    this.append({ add: id, topic, qos, payload: payload.toString('utf8') });
    return id;
  }

  /** The event was confirmed, or will never be sent (dropped from a full queue, refused). */
  done(id: number): void {
    if (!this.pendingEvents.delete(id)) return;
    this.append({ done: id });
    if (this.lines > 2 * this.pendingEvents.size + COMPACT_SLACK) this.compact();
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private read(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let torn = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: JournalLine;
      try {
        entry = JSON.parse(line) as JournalLine;
      } catch {
        torn++;
        continue;
      }
      if ('done' in entry) this.pendingEvents.delete(entry.done);
      else if (Number.isSafeInteger(entry.add) && typeof entry.topic === 'string' && typeof entry.payload === 'string' && (entry.qos === 1 || entry.qos === 2)) {
        this.pendingEvents.set(entry.add, { id: entry.add, topic: entry.topic, payload: Buffer.from(entry.payload, 'utf8'), qos: entry.qos });
        this.nextId = Math.max(this.nextId, entry.add + 1);
      } else torn++;
    }
    if (torn > 0) log('outbox %s: %d unreadable lines skipped (a write cut short)', this.file, torn);
    if (this.pendingEvents.size > 0) log('outbox %s: %d events to publish again', this.file, this.pendingEvents.size);
  }

  /** Rewrites the journal to the pending events only (temp file, fsync, rename). */
  private compact(): void {
    this.close();
    const temp = `${this.file}.tmp`;
    const text = [...this.pendingEvents.values()].map((e) => JSON.stringify({ add: e.id, topic: e.topic, qos: e.qos, payload: e.payload.toString('utf8') }) + '\n').join('');
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, this.file);
    this.lines = this.pendingEvents.size;
    this.fd = fs.openSync(this.file, 'a');
  }

  private append(line: JournalLine): void {
    if (this.fd < 0) throw new LaneVisionError('MQTT_OUTBOX_IO', `The event outbox ${this.file} is closed.`);
    fs.writeSync(this.fd, JSON.stringify(line) + '\n');
    this.lines++;
  }
}
