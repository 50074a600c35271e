/**
 * Drives frames through a deployed lane flow and times them: each frame is sent from a
 * probe node (so it crosses a real wire into lane-classify) with its own `_msgid`, and its
 * result (at the probe on classify's output) or its error (through a catch node) is
 * matched back by that id. Two kinds of load:
 *   - open loop: frames are due at fixed times (a camera at N fps); latency counts from
 *     the time a frame was due, so a stalled event loop shows up in it instead of hiding
 *     (no coordinated omission);
 *   - closed loop: K frames in flight, the next sent as one comes back (saturation with
 *     back-pressure: as fast as the node sustains, nothing dropped by construction).
 */
import * as os from 'node:os';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import type { Node, NodeMessage } from 'node-red';
import { distribution, type Distribution } from './stats.js';

/** lane-classify's counters since it started (msg.laneVision.queue). */
interface QueueCounters {
  queued: number;
  maxQueued: number;
  processed: number;
  failed: number;
  dropped: number;
}

/** What lane-classify puts on a message it settles: the result, and its queue counters. */
interface ResultMessage extends NodeMessage {
  classification?: { modelVersion?: number; engine?: string; backend?: string; timings?: Record<string, number> };
  laneVision?: { dropped?: string; batchSize?: number; queue?: QueueCounters };
}

interface CaughtMessage extends NodeMessage {
  error?: { message?: string; code?: string; source?: { id?: string } };
}

const NODE_TIMINGS = ['queueMs', 'decodeMs', 'featuresMs', 'headMs', 'totalMs'] as const;
type NodeTiming = (typeof NODE_TIMINGS)[number];
/** Error codes that mean "the node let this frame go because it was full". */
const DROP_CODE = /OVERLOAD|DROP|QUEUE_FULL/i;

export interface PhaseFigures {
  name: string;
  /** "open loop 30 fps" or "closed loop, 16 in flight". */
  load: string;
  offeredFps?: number;
  offered: number;
  results: number;
  /** Frames the node refused or dropped, by its error or its counters. */
  dropped: number;
  /** Frames that failed for another reason. */
  failed: number;
  /** offered - results - dropped - failed: frames never heard of again (within the drain time). */
  lost: number;
  errorCodes: Record<string, number>;
  /** From the first frame due to the last result. */
  seconds: number;
  achievedFps: number;
  /** Due (open loop) or sent (closed loop) -> result at the collector, ms. */
  latency: Distribution;
  /** How late the bench's timer sent frames (event-loop stalls on the sending side), ms. */
  sendLag: Distribution;
  /** Per-frame split reported by the node itself (msg.classification.timings), p50 ms. */
  node: Record<NodeTiming, number>;
  /** Median latency the node's own timings do not explain: Node-RED delivery both ways and waiting for the event loop. */
  outsideNodeP50Ms: number;
  /** The slowest 1% of frames (latency >= p99), mean ms: where their time went. */
  tail: { frames: number; latency: number; queueMs: number; decodeMs: number; featuresMs: number; outside: number };
  eventLoopDelay: { p50: number; p99: number; max: number };
  modelVersions: number[];
  /** Frames per backbone call (msg.laneVision.batchSize): p50 and max. */
  batchSize?: { p50: number; max: number };
  /** From the node's own counters (msg.laneVision.queue) over the phase, when the node keeps them. */
  nodeCounters?: { dropped: number; processed: number; failed: number; maxQueuedSinceStart: number };
  /** CPU time of the bench process (Node-RED and the lane run in it) per wall second: 2 = both cores. */
  processCores: number;
  /** 1-minute load average at the end of the phase: other work on the machine. */
  loadAverage: number;
  /** Full (mark-compact) collections of the main thread's heap during the phase: each pauses the lane's thread. */
  majorGc: { count: number; maxMs: number };
}

/** Major GCs of this (the main) thread's heap, for the whole run: each Phase reads its own window. */
const majorGcs: { start: number; duration: number }[] = [];
let gcObserver: PerformanceObserver | undefined;
function observeMajorGcs(): void {
  gcObserver ??= new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs.push({ start: entry.startTime, duration: entry.duration });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

export class Phase {
  offered = 0;
  results = 0;
  dropped = 0;
  failed = 0;
  pending = 0;
  readonly errorCodes: Record<string, number> = {};
  readonly latencies: number[] = [];
  readonly sendLag: number[] = [];
  readonly nodeTimings: Record<NodeTiming, number[]> = { queueMs: [], decodeMs: [], featuresMs: [], headMs: [], totalMs: [] };
  readonly modelVersions = new Set<number>();
  readonly batchSizes: number[] = [];
  countersAtStart?: QueueCounters;
  countersAtEnd?: QueueCounters;
  firstDueAt?: number;
  lastResultAt?: number;
  lastProgressAt = performance.now();
  onSettled?: () => void;
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly cpuAtStart = process.cpuUsage();
  private readonly startedAt = performance.now();

  constructor(
    readonly name: string,
    readonly load: string,
    readonly offeredFps?: number,
  ) {
    this.loopDelay.enable();
    observeMajorGcs();
  }

  settle(): void {
    this.pending--;
    this.lastProgressAt = performance.now();
    this.onSettled?.();
  }

  figures(): PhaseFigures {
    this.loopDelay.disable();
    const ms = (ns: number) => ns / 1e6;
    const known = (values: number[]) => values.filter((v) => !Number.isNaN(v));
    const nodeP50 = Object.fromEntries(NODE_TIMINGS.map((k) => [k, distribution(known(this.nodeTimings[k])).p50])) as Record<NodeTiming, number>;
    const latency = distribution(this.latencies);
    const slow = this.latencies.map((_, i) => i).filter((i) => this.latencies[i] >= latency.p99);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    const tailMean = (key: NodeTiming) => mean(slow.map((i) => this.nodeTimings[key][i]));
    const cpu = process.cpuUsage(this.cpuAtStart);
    const start = this.countersAtStart;
    const end = this.countersAtEnd;
    const batch = distribution(this.batchSizes);
    const seconds = this.firstDueAt !== undefined && this.lastResultAt !== undefined ? (this.lastResultAt - this.firstDueAt) / 1000 : NaN;
    return {
      name: this.name,
      load: this.load,
      offeredFps: this.offeredFps,
      offered: this.offered,
      results: this.results,
      dropped: this.dropped,
      failed: this.failed,
      lost: this.offered - this.results - this.dropped - this.failed,
      errorCodes: { ...this.errorCodes },
      seconds,
      achievedFps: this.results / seconds,
      latency,
      sendLag: distribution(this.sendLag),
      node: nodeP50,
      outsideNodeP50Ms: latency.p50 - nodeP50.totalMs,
      tail: {
        frames: slow.length,
        latency: mean(slow.map((i) => this.latencies[i])),
        queueMs: tailMean('queueMs'),
        decodeMs: tailMean('decodeMs'),
        featuresMs: tailMean('featuresMs'),
        outside: mean(slow.map((i) => this.latencies[i] - this.nodeTimings.totalMs[i])),
      },
      eventLoopDelay: { p50: ms(this.loopDelay.percentile(50)), p99: ms(this.loopDelay.percentile(99)), max: ms(this.loopDelay.max) },
      modelVersions: [...this.modelVersions].sort((a, b) => a - b),
      batchSize: batch.n ? { p50: batch.p50, max: batch.max } : undefined,
      nodeCounters:
        start && end
          ? { dropped: end.dropped - start.dropped, processed: end.processed - start.processed, failed: end.failed - start.failed, maxQueuedSinceStart: end.maxQueued }
          : undefined,
      processCores: (cpu.user + cpu.system) / 1000 / (performance.now() - this.startedAt),
      loadAverage: os.loadavg()[0],
      majorGc: (() => {
        const during = majorGcs.filter((gc) => gc.start >= this.startedAt);
        return { count: during.length, maxMs: during.reduce((max, gc) => Math.max(max, gc.duration), 0) };
      })(),
    };
  }
}

export class LaneDriver {
  private readonly inFlight = new Map<string, { phase: Phase; dueAt: number }>();
  private sequence = 0;
  private nextFrame = 0;
  /** Results or errors whose id the bench did not send (should stay 0). */
  unmatched = 0;
  /** Engine and backend named by the latest result ("onnxruntime cpu"). */
  lastRuntime?: string;
  /** The classify node's counters on the latest message it settled. */
  private counters?: QueueCounters;
  private readonly stopListening: () => void;
  /** Errors from other nodes of the flow (a training that failed). */
  readonly otherErrors: string[] = [];

  constructor(
    private readonly source: Node,
    results: Node,
    caught: Node,
    private readonly classifyId: string,
    private readonly frames: readonly Buffer[],
    private readonly tag: string,
    onComplete: (listener: (nodeId: string, msg: NodeMessage) => void) => () => void,
  ) {
    results.on('input', (msg: ResultMessage) => this.onResult(msg));
    caught.on('input', (msg: CaughtMessage) => this.onCaught(msg));
    this.stopListening = onComplete((nodeId, msg) => {
      if (nodeId === this.classifyId) this.onSettledByClassify(msg as ResultMessage);
    });
  }

  dispose(): void {
    this.stopListening();
  }

  /** Sends the next frame; `dueAt` is when it was due (open loop), default now. */
  offer(phase: Phase, dueAt = performance.now()): void {
    const id = `${this.tag}-${++this.sequence}`;
    phase.offered++;
    phase.pending++;
    phase.countersAtStart ??= this.counters;
    phase.firstDueAt ??= dueAt;
    phase.sendLag.push(performance.now() - dueAt);
    this.inFlight.set(id, { phase, dueAt });
    const payload = this.frames[this.nextFrame++ % this.frames.length];
    this.source.send({ _msgid: id, payload });
  }

  private onResult(msg: ResultMessage): void {
    const now = performance.now();
    const id = msg._msgid ?? '';
    const entry = this.inFlight.get(id);
    if (!entry) {
      this.unmatched++;
      return;
    }
    this.inFlight.delete(id);
    const { phase, dueAt } = entry;
    phase.results++;
    phase.lastResultAt = now;
    phase.latencies.push(now - dueAt);
    const timings = msg.classification?.timings;
    for (const key of NODE_TIMINGS) phase.nodeTimings[key].push(typeof timings?.[key] === 'number' ? timings[key] : NaN);
    if (typeof msg.classification?.modelVersion === 'number') phase.modelVersions.add(msg.classification.modelVersion);
    if (msg.classification?.engine) this.lastRuntime = `${msg.classification.engine} ${msg.classification.backend ?? ''}`.trim();
    if (typeof msg.laneVision?.batchSize === 'number') phase.batchSizes.push(msg.laneVision.batchSize);
    phase.settle();
  }

  /**
   * Every message classify settles: a frame it dropped (done without a result or an error,
   * msg.laneVision.dropped says why) is settled here; the counters of every one are kept.
   */
  private onSettledByClassify(msg: ResultMessage): void {
    const entry = this.inFlight.get(msg._msgid ?? '');
    if (msg.laneVision?.queue) {
      this.counters = msg.laneVision.queue;
      if (entry) entry.phase.countersAtEnd = msg.laneVision.queue;
    }
    if (!entry || !msg.laneVision?.dropped) return;
    this.inFlight.delete(msg._msgid ?? '');
    const code = `dropped: ${msg.laneVision.dropped}`;
    entry.phase.errorCodes[code] = (entry.phase.errorCodes[code] ?? 0) + 1;
    entry.phase.dropped++;
    entry.phase.settle();
  }

  private onCaught(msg: CaughtMessage): void {
    const id = msg._msgid ?? '';
    const entry = msg.error?.source?.id === this.classifyId ? this.inFlight.get(id) : undefined;
    if (!entry) {
      if (msg.error?.source?.id === this.classifyId) this.unmatched++;
      else this.otherErrors.push(`${msg.error?.source?.id ?? '?'}: ${msg.error?.message ?? 'error'}`);
      return;
    }
    this.inFlight.delete(id);
    const { phase } = entry;
    const code = msg.error?.code ?? 'error';
    phase.errorCodes[code] = (phase.errorCodes[code] ?? 0) + 1;
    if (DROP_CODE.test(code)) phase.dropped++;
    else phase.failed++;
    phase.settle();
  }

  /**
   * Frames due every 1000/fps ms from now until `count` were sent, or, with `until`, until
   * it says stop (and at least `count` were sent).
   */
  openLoop(phase: Phase, fps: number, count: number, until?: () => boolean): Promise<void> {
    const interval = 1000 / fps;
    const start = performance.now();
    let sent = 0;
    const done = () => sent >= count && (!until || until());
    return new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (!done() && start + sent * interval <= now) this.offer(phase, start + sent++ * interval);
        if (done()) resolve();
        else setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      };
      tick();
    });
  }

  /** Keeps `inFlight` frames in the flow until `count` were sent and all came back; fails if nothing comes back for `stallMs`. */
  closedLoop(phase: Phase, inFlight: number, count: number, stallMs: number): Promise<void> {
    let sent = 0;
    return new Promise((resolve, reject) => {
      const watchdog = setInterval(() => {
        if (performance.now() - phase.lastProgressAt > stallMs) {
          finish();
          reject(new Error(`${phase.name}: no result for ${stallMs / 1000} s (${phase.pending} frames in flight)`));
        }
      }, 1000);
      const finish = () => {
        clearInterval(watchdog);
        phase.onSettled = undefined;
      };
      phase.onSettled = () => {
        if (sent < count) {
          sent++;
          this.offer(phase);
        } else if (phase.pending === 0) {
          finish();
          resolve();
        }
      };
      phase.lastProgressAt = performance.now();
      for (; sent < Math.min(inFlight, count); sent++) this.offer(phase);
    });
  }

  /** Waits until every frame of `phase` came back, or nothing came back for `stallMs` (the rest count as lost). */
  async drain(phase: Phase, stallMs: number): Promise<void> {
    phase.lastProgressAt = performance.now();
    while (phase.pending > 0 && performance.now() - phase.lastProgressAt < stallMs) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
