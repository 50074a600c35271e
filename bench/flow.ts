/**
 * Benchmark section: the lane's throughput through a REAL Node-RED flow. Node-RED is
 * embedded in the bench process (bench/flow-runtime.ts) with Lane Vision loaded from the
 * package; the flow is what a lane deploys:
 *
 *   probe "source" -> lane-classify -> probe "results"
 *   probe "seed-in" -> lane-train (val/ photos)        -> probe "trained"
 *   probe "train-in" -> lane-train (whole train/ split) -> probe "trained"
 *   catch (classify, both trains) -> probe "caught"
 *
 * with a lane-backbone config node (MobileNetV2 0.35 features; engine auto = ONNX Runtime)
 * and two lane-dataset config nodes sharing one model store: a seed dataset (val/, so its
 * features are not those of train/) gives classify its first model; the whole train/
 * split (864 photos, 31 classes) is the full retrain that runs while the lane classifies.
 * Both datasets are temp folders of symlinks to the shared photos (nothing is copied, the
 * shared folder is never opened for writing).
 *
 * Phases, each with frames from memory (JPEG bytes of val/ and train/), matched by msg id:
 * open loop at 10 and 30 fps; saturation (closed loop, 16 in flight); overload (open loop
 * at 400 fps: what the node's queue does); 30 fps while the whole split retrains (in
 * lane-train's worker thread, and again on the main thread for comparison); a soak of
 * N frames at saturation with back-pressure (memory and tensors at start, every chunk and
 * end). Lane frames are decoded and embedded in the backbone node's inference worker
 * thread; the same flow with LANE_VISION_INFERENCE_THREAD=main (frames on Node-RED's own
 * thread) is measured at 30 fps and at saturation for comparison. Then the same flow on
 * tfjs's pure-JS cpu backend (engine tfjs, backend cpu: how a tfjs-in-process Node-RED
 * node runs) at 10 fps offered and at saturation, a few dozen frames, and the ratios.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NodeMessage } from 'node-red';
import { tf } from '../src/engine/index.js';
import { table } from '../src/cli/output.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, modelDir } from '../test/support/shared.js';
import { LaneDriver, Phase, type PhaseFigures } from './flow-driver.js';
import { probe, startNodeRed, type EmbeddedNodeRed, type FlowNode } from './flow-runtime.js';
import { fixed, megabytes, ratio } from './stats.js';

const BACKBONE = 'mobilenet-v2-0.35-features';
export const FLOW_TARGETS = { saturationFps: 100, p99At30FpsMs: 25, retrainP99Ratio: 2 } as const;
export const DEFAULT_SOAK_FRAMES = 100_000;
export const QUICK_SOAK_FRAMES = 3_000;
/** Frames in flight for saturation: two of classify's micro-batches (maxBatch 8). */
const SATURATION_IN_FLIGHT = 16;
const MAX_BATCH = 8;
const QUEUE_LIMIT = 100;

interface Plan {
  tenFpsSeconds: number;
  thirtyFpsSeconds: number;
  saturationFrames: number;
  overloadFps: number;
  overloadSeconds: number;
  /** The retrain phase runs at least this long, and on until the training has finished. */
  retrainMinSeconds: number;
  soakChunk: number;
  cpu: { tenFpsFrames: number; saturationFrames: number; inFlight: number };
}

const PLANS: Record<'full' | 'quick', Plan> = {
  full: {
    tenFpsSeconds: 30,
    thirtyFpsSeconds: 30,
    saturationFrames: 3000,
    overloadFps: 400,
    overloadSeconds: 10,
    retrainMinSeconds: 10,
    soakChunk: 10_000,
    cpu: { tenFpsFrames: 30, saturationFrames: 24, inFlight: 8 },
  },
  quick: {
    tenFpsSeconds: 8,
    thirtyFpsSeconds: 10,
    saturationFrames: 800,
    overloadFps: 400,
    overloadSeconds: 4,
    retrainMinSeconds: 5,
    soakChunk: 1_000,
    cpu: { tenFpsFrames: 16, saturationFrames: 16, inFlight: 8 },
  },
};

export interface FlowBenchOptions {
  quick: boolean;
  /** Frames of the soak (default 100,000; 3,000 with quick). */
  soakFrames?: number;
  /** Folder for the temp datasets, model store, Node-RED user dir and converted models (removed by the caller). */
  scratch: string;
  repoRoot: string;
  say: (line?: string) => void;
}

interface MemoryPoint {
  frames: number;
  rssBytes: number;
  heapUsedBytes: number;
  numTensors: number;
}

interface TrainingFigures {
  wallMs: number;
  version?: number;
  images?: number;
  labels?: number;
  featuresMs?: number;
  trainMs?: number;
  cachedFeatures?: number;
}

export interface FlowBenchReport {
  nodeRed: string;
  backbone: string;
  /** Where lane-train ran the retrain: "worker" (its own thread) or "main". */
  trainThread: string;
  /** Where lane-classify's frames were decoded and embedded: "worker" (the inference thread) or "main". */
  inferenceThread: string;
  photos: number;
  soakFrames: number;
  /** The flow on the engine auto picks (ONNX Runtime where installed). */
  fast: {
    runtime: string;
    seedTraining: TrainingFigures;
    phases: Record<string, PhaseFigures>;
    retrain: TrainingFigures;
    /** The same retrain on the main thread, when lane-train defaults to its worker. */
    mainThreadRetrain?: TrainingFigures;
    soak: { phase: PhaseFigures; memory: MemoryPoint[] };
    /** 30 fps and saturation with the frames on the main thread, when they default to the inference worker. */
    framesOnMainThread?: Record<string, PhaseFigures>;
  };
  /** The same flow on tfjs's pure-JS cpu backend. */
  pureJs: { runtime: string; phases: Record<string, PhaseFigures> };
  targets: Record<string, { value: string; target: string; pass: boolean }>;
  ratios: Record<string, number>;
  unmatchedMessages: number;
  otherErrors: string[];
  nodeRedLog: { warnings: number; errors: number; distinct: string[] };
  tensors: { before: number; after: number };
}

const IDS = {
  tab: 'bench-tab',
  backbone: 'bench-backbone',
  seedData: 'bench-seed-data',
  wholeData: 'bench-whole-data',
  seedTrain: 'bench-seed-train',
  wholeTrain: 'bench-whole-train',
  classify: 'bench-classify',
  source: 'bench-source',
  results: 'bench-results',
  seedIn: 'bench-seed-in',
  trainIn: 'bench-train-in',
  trained: 'bench-trained',
  catch: 'bench-catch',
  caught: 'bench-caught',
};

interface FlowSettings {
  backend: string;
  engine: string;
  folders: { seed: string; whole: string; models: string };
  withTraining: boolean;
}

/** The lane flow, as the editor would export it. */
function laneFlow(s: FlowSettings): FlowNode[] {
  const z = IDS.tab;
  const dataset = (id: string, folder: string): FlowNode => ({ id, type: 'lane-dataset', name: '', folder, modelsFolder: s.folders.models, maxPerLabel: 0, whenFull: 'refuse' });
  const train = (id: string, data: string): FlowNode => ({
    id,
    type: 'lane-train',
    z,
    name: '',
    dataset: data,
    backbone: IDS.backbone,
    headKind: 'softmax',
    epochs: '',
    hiddenUnits: '',
    holdoutFraction: '',
    seed: '',
    targetPrecision: '',
    activate: true,
    wires: [[IDS.trained], []],
  });
  const flow: FlowNode[] = [
    { id: z, type: 'tab', label: 'bench lane' },
    {
      id: IDS.backbone,
      type: 'lane-backbone',
      name: '',
      source: modelDir(BACKBONE),
      featureLayer: '',
      fit: 'cover',
      roiLeft: '',
      roiTop: '',
      roiWidth: '',
      roiHeight: '',
      backend: s.backend,
      engine: s.engine,
    },
    dataset(IDS.wholeData, s.folders.whole),
    {
      id: IDS.classify,
      type: 'lane-classify',
      z,
      name: '',
      backbone: IDS.backbone,
      dataset: IDS.wholeData,
      mode: 'trained',
      threshold: 0.6,
      topK: 3,
      maxBatch: MAX_BATCH,
      // The node's queue settings, at their defaults (stated so the figures say what ran).
      maxWaitMs: 0,
      queueLimit: QUEUE_LIMIT,
      overflow: 'drop-oldest',
      splitOutputs: false,
      wires: [[IDS.results]],
    },
    probe(IDS.source, z, [[IDS.classify]]),
    probe(IDS.results, z),
    { id: IDS.catch, type: 'catch', z, name: '', scope: [IDS.classify, IDS.seedTrain, IDS.wholeTrain], uncaught: false, wires: [[IDS.caught]] },
    probe(IDS.caught, z),
  ];
  if (s.withTraining) {
    flow.push(
      dataset(IDS.seedData, s.folders.seed),
      train(IDS.seedTrain, IDS.seedData),
      train(IDS.wholeTrain, IDS.wholeData),
      probe(IDS.seedIn, z, [[IDS.seedTrain]]),
      probe(IDS.trainIn, z, [[IDS.wholeTrain]]),
      probe(IDS.trained, z),
    );
  }
  // Node-RED tells flow nodes from config nodes by their place on the canvas.
  return flow.map((n, i) => (n.z ? { x: 200, y: 40 * (i + 1), ...n } : n));
}

/** A folder-per-class dataset of symlinks to `splitDir`'s photos: the lane-dataset node opens it like any dataset, the shared files stay untouched. */
function linkDataset(splitDir: string, dir: string): number {
  let count = 0;
  for (const label of classNames(splitDir)) {
    fs.mkdirSync(path.join(dir, label), { recursive: true });
    for (const file of classImages(splitDir, label)) {
      fs.symlinkSync(file, path.join(dir, label, path.basename(file)));
      count++;
    }
  }
  return count;
}

/** Every photo of val/ and train/, read into memory, classes interleaved (as a mixed lane). */
function loadPhotos(): Buffer[] {
  const byClass = [groceryValDir, groceryTrainDir].flatMap((split) => classNames(split).map((c) => classImages(split, c)));
  const files: string[] = [];
  for (let i = 0; files.length < byClass.reduce((n, c) => n + c.length, 0); i++) for (const c of byClass) if (i < c.length) files.push(c[i]);
  return files.map((f) => fs.readFileSync(f));
}

function memoryPoint(frames: number): MemoryPoint {
  const usage = process.memoryUsage();
  return { frames, rssBytes: usage.rss, heapUsedBytes: usage.heapUsed, numTensors: tf.memory().numTensors };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs lane-train through its input probe and waits for its model message (or its error). */
async function trainThroughFlow(nodeRed: EmbeddedNodeRed, driver: LaneDriver, inputId: string, timeoutMs: number): Promise<{ done: Promise<TrainingFigures>; isDone: () => boolean }> {
  const trained = nodeRed.node(IDS.trained);
  const errorsBefore = driver.otherErrors.length;
  const started = performance.now();
  let finished = false;
  const done = new Promise<TrainingFigures>((resolve, reject) => {
    const timer = setInterval(() => {
      const failure = driver.otherErrors.slice(errorsBefore).find((e) => e.startsWith(inputId === IDS.seedIn ? IDS.seedTrain : IDS.wholeTrain));
      if (failure || performance.now() - started > timeoutMs) {
        cleanup();
        reject(new Error(`training did not finish: ${failure ?? `timed out after ${timeoutMs / 1000} s`}`));
      }
    }, 200);
    const onModel = (msg: NodeMessage) => {
      cleanup();
      const payload = msg.payload as { version?: number; labels?: string[]; metrics?: { trainCount: number; holdoutCount: number; timings?: Record<string, number> } } | undefined;
      const m = payload?.metrics;
      resolve({
        wallMs: performance.now() - started,
        version: payload?.version,
        images: m ? m.trainCount + m.holdoutCount : undefined,
        labels: payload?.labels?.length,
        featuresMs: m?.timings?.featuresMs,
        trainMs: m?.timings?.trainMs,
        cachedFeatures: m?.timings?.cachedFeatures,
      });
    };
    const cleanup = () => {
      finished = true;
      clearInterval(timer);
      trained.removeListener('input', onModel);
    };
    trained.on('input', onModel);
  });
  nodeRed.node(inputId).send({ payload: {} });
  return { done, isDone: () => finished };
}

/** Sends small closed-loop bursts until every frame of a burst comes back decided by `version` or later. */
async function warmUp(driver: LaneDriver, name: string, inFlight: number, frames: number, minVersion: number, stallMs: number): Promise<PhaseFigures> {
  for (let attempt = 1; ; attempt++) {
    const phase = new Phase(`${name} warm-up`, `closed loop, ${inFlight} in flight`);
    await driver.closedLoop(phase, inFlight, frames, stallMs);
    const figures = phase.figures();
    if (figures.results === frames && figures.modelVersions.every((v) => v >= minVersion)) return figures;
    if (attempt >= 20) throw new Error(`${name}: the lane did not classify with model v${minVersion} (${JSON.stringify(figures.errorCodes)})`);
    await pause(500);
  }
}

async function openLoopPhase(driver: LaneDriver, name: string, fps: number, frames: number, stallMs: number, until?: () => boolean): Promise<PhaseFigures> {
  const phase = new Phase(name, `open loop ${fps} fps`, fps);
  await driver.openLoop(phase, fps, frames, until);
  await driver.drain(phase, stallMs);
  return phase.figures();
}

async function closedLoopPhase(driver: LaneDriver, name: string, inFlight: number, frames: number, stallMs: number): Promise<PhaseFigures> {
  const phase = new Phase(name, `closed loop, ${inFlight} in flight`);
  await driver.closedLoop(phase, inFlight, frames, stallMs);
  return phase.figures();
}

function phaseRows(phases: PhaseFigures[]): string[] {
  return table(
    ['phase', 'load', 'offered', 'results', 'dropped', 'failed', 'lost', 'frames/s', 'p50 ms', 'p99 ms', 'max ms'],
    phases.map((p) => [p.name, p.load, p.offered, p.results, p.dropped, p.failed, p.lost, fixed(p.achievedFps), fixed(p.latency.p50), fixed(p.latency.p99), fixed(p.latency.max)]),
    [false, false, ...Array(9).fill(true)],
  );
}

/** Where the time went, per phase: the node's own split, what lies outside it, and what else ran. */
function profileRows(phases: PhaseFigures[]): string[] {
  return table(
    ['phase', 'queue', 'decode', 'backbone', 'head', 'outside', 'p99 tail: queue/decode/backbone/outside', 'batch p50/max', 'loop p99/max', 'major GC n/max', 'send lag p99', 'node dropped', 'cores used', 'load avg'],
    phases.map((p) => [
      p.name,
      fixed(p.node.queueMs),
      fixed(p.node.decodeMs),
      fixed(p.node.featuresMs),
      fixed(p.node.headMs, 2),
      fixed(p.outsideNodeP50Ms),
      [p.tail.queueMs, p.tail.decodeMs, p.tail.featuresMs, p.tail.outside].map((v) => fixed(v)).join('/'),
      p.batchSize ? `${p.batchSize.p50}/${p.batchSize.max}` : '-',
      `${fixed(p.eventLoopDelay.p99)}/${fixed(p.eventLoopDelay.max)}`,
      `${p.majorGc.count}/${fixed(p.majorGc.maxMs)}`,
      fixed(p.sendLag.p99),
      p.nodeCounters ? p.nodeCounters.dropped : '-',
      fixed(p.processCores, 2),
      fixed(p.loadAverage, 2),
    ]),
    [false, ...Array(13).fill(true)],
  );
}

export async function runFlowBench(options: FlowBenchOptions): Promise<FlowBenchReport> {
  const { say } = options;
  const plan = PLANS[options.quick ? 'quick' : 'full'];
  const soakFrames = options.soakFrames ?? (options.quick ? QUICK_SOAK_FRAMES : DEFAULT_SOAK_FRAMES);
  const root = path.join(options.scratch, 'flow');
  const folders = { seed: path.join(root, 'seed-dataset'), whole: path.join(root, 'whole-dataset'), models: path.join(root, 'models') };
  const seedPhotos = linkDataset(groceryValDir, folders.seed);
  const wholePhotos = linkDataset(groceryTrainDir, folders.whole);
  const photos = loadPhotos();
  const savedEnv = {
    engine: process.env.LANE_VISION_ENGINE,
    cache: process.env.LANE_VISION_CACHE,
    trainThread: process.env.LANE_VISION_TRAIN_THREAD,
    inferenceThread: process.env.LANE_VISION_INFERENCE_THREAD,
  };
  // Converted models go to the scratch folder, not the user's cache.
  process.env.LANE_VISION_CACHE = path.join(options.scratch, 'model-cache');
  const tensorsBefore = tf.memory().numTensors;
  const trainThread = trainingThread(options.repoRoot);
  const inferenceThread = framesThread(options.repoRoot);
  const nodeRed = await startNodeRed(options.repoRoot, path.join(root, 'node-red'));
  say(`Node-RED ${nodeRed.version} embedded; ${photos.length} photos in memory (${megabytes(photos.reduce((n, p) => n + p.length, 0))}); ` +
    `seed dataset ${seedPhotos} photos (val/), whole split ${wholePhotos} photos (train/), both symlinked under ${os.tmpdir()}; lane-train trains on the ${trainThread} thread, lane-classify's frames are embedded on the ${inferenceThread} thread`);
  if (os.loadavg()[0] > os.cpus().length) say(`note: load average ${fixed(os.loadavg()[0], 2)} on ${os.cpus().length} CPUs: other work competes for the cores, latency tails below are pessimistic`);
  try {
    // ---------------------------------------------------------------- fast engine (auto)
    process.env.LANE_VISION_ENGINE = 'auto';
    await nodeRed.deploy(laneFlow({ backend: 'auto', engine: 'auto', folders, withTraining: true }));
    let fastDriver = new LaneDriver(nodeRed.node(IDS.source), nodeRed.node(IDS.results), nodeRed.node(IDS.caught), IDS.classify, photos, 'auto', nodeRed.onComplete);
    /** From drivers already disposed. */
    const otherErrors: string[] = [];
    let unmatched = 0;
    const seed = await trainThroughFlow(nodeRed, fastDriver, IDS.seedIn, 300_000);
    const seedTraining = await seed.done;
    say(`seed model v${seedTraining.version}: ${seedTraining.images} photos, ${seedTraining.labels} classes, trained through lane-train in ${fixed(seedTraining.wallMs / 1000, 1)} s`);
    await warmUp(fastDriver, 'auto', MAX_BATCH, 64, seedTraining.version ?? 1, 60_000);
    const runtime = fastDriver.lastRuntime ?? 'unknown';
    say(`-- classify on ${runtime}`);

    const phases: Record<string, PhaseFigures> = {};
    const show = (p: PhaseFigures) => say(`   ${p.name}: ${p.results}/${p.offered} results, ${fixed(p.achievedFps)} frames/s, p50 ${fixed(p.latency.p50)} ms, p99 ${fixed(p.latency.p99)} ms, dropped ${p.dropped}, lost ${p.lost}`);
    phases.tenFps = await openLoopPhase(fastDriver, '10 fps', 10, 10 * plan.tenFpsSeconds, 30_000);
    show(phases.tenFps);
    phases.thirtyFps = await openLoopPhase(fastDriver, '30 fps', 30, 30 * plan.thirtyFpsSeconds, 30_000);
    show(phases.thirtyFps);
    phases.saturation = await closedLoopPhase(fastDriver, 'saturation', SATURATION_IN_FLIGHT, plan.saturationFrames, 30_000);
    show(phases.saturation);
    phases.overload = await openLoopPhase(fastDriver, `overload ${plan.overloadFps} fps`, plan.overloadFps, plan.overloadFps * plan.overloadSeconds, 30_000);
    show(phases.overload);
    // The same lane with its frames on Node-RED's own thread (LANE_VISION_INFERENCE_THREAD=main), to show what the
    // inference worker buys: measured here, while the main heap is in the state the phases above saw; then the lane
    // with its training nodes is deployed again.
    let framesOnMainThread: Record<string, PhaseFigures> | undefined;
    if (inferenceThread === 'worker') {
      fastDriver.dispose();
      otherErrors.push(...fastDriver.otherErrors);
      unmatched += fastDriver.unmatched;
      process.env.LANE_VISION_INFERENCE_THREAD = 'main';
      try {
        await nodeRed.deploy(laneFlow({ backend: 'auto', engine: 'auto', folders, withTraining: false }));
        const mainDriver = new LaneDriver(nodeRed.node(IDS.source), nodeRed.node(IDS.results), nodeRed.node(IDS.caught), IDS.classify, photos, 'main', nodeRed.onComplete);
        await warmUp(mainDriver, 'frames on the main thread', MAX_BATCH, 64, seedTraining.version ?? 1, 60_000);
        framesOnMainThread = {
          thirtyFps: await openLoopPhase(mainDriver, '30 fps, frames on main thread', 30, 30 * plan.thirtyFpsSeconds, 30_000),
          saturation: await closedLoopPhase(mainDriver, 'saturation, frames on main thread', SATURATION_IN_FLIGHT, plan.saturationFrames, 30_000),
        };
        Object.values(framesOnMainThread).forEach(show);
        mainDriver.dispose();
        otherErrors.push(...mainDriver.otherErrors);
        unmatched += mainDriver.unmatched;
      } finally {
        restoreEnv('LANE_VISION_INFERENCE_THREAD', savedEnv.inferenceThread);
      }
      await nodeRed.deploy(laneFlow({ backend: 'auto', engine: 'auto', folders, withTraining: true }));
      fastDriver = new LaneDriver(nodeRed.node(IDS.source), nodeRed.node(IDS.results), nodeRed.node(IDS.caught), IDS.classify, photos, 'auto', nodeRed.onComplete);
      await warmUp(fastDriver, 'auto again', MAX_BATCH, 64, seedTraining.version ?? 1, 60_000);
    }
    await pause(1000);


    // 30 fps while the whole train/ split retrains (cold: none of its photos were embedded yet).
    const retrainWhileClassifying = async (name: string): Promise<{ figures: PhaseFigures; training: TrainingFigures }> => {
      const training = await trainThroughFlow(nodeRed, fastDriver, IDS.trainIn, 900_000);
      const running = openLoopPhase(fastDriver, name, 30, 30 * plan.retrainMinSeconds, 30_000, training.isDone);
      const trained = await training.done;
      const figures = await running;
      show(figures);
      say(`   ${name.replace('30 fps + ', '')} of the whole split through lane-train: v${trained.version}, ${trained.images} photos, ${trained.labels} classes, ` +
        `${fixed(trained.wallMs / 1000, 1)} s (features ${fixed((trained.featuresMs ?? NaN) / 1000, 1)} s, ${trained.cachedFeatures ?? '?'} cached; heads ${fixed(trained.trainMs ?? NaN, 0)} ms)`);
      // The retrained model is in use from here on.
      await warmUp(fastDriver, `after ${name}`, MAX_BATCH, 16, trained.version ?? 2, 60_000);
      return { figures, training: trained };
    };
    const { figures: retrainFigures, training: retrain } = await retrainWhileClassifying(`30 fps + retrain (${trainThread} thread)`);
    phases.retrain = retrainFigures;
    let mainThreadRetrain: TrainingFigures | undefined;
    if (trainThread === 'worker') {
      // The same on the main thread (LANE_VISION_TRAIN_THREAD=main), to show what the worker buys. Cold too:
      // the worker handed its features to the nodes' process-wide cache, which is emptied first.
      compiledFeatureCache(options.repoRoot).clear();
      process.env.LANE_VISION_TRAIN_THREAD = 'main';
      try {
        const { figures, training } = await retrainWhileClassifying('30 fps + retrain (main thread)');
        phases.retrainMainThread = figures;
        mainThreadRetrain = training;
      } finally {
        restoreEnv('LANE_VISION_TRAIN_THREAD', savedEnv.trainThread);
      }
    }

    // Soak: closed loop in chunks; memory sampled between chunks, when no frame is in flight.
    const soak = new Phase(`soak ${soakFrames}`, `closed loop, ${SATURATION_IN_FLIGHT} in flight`);
    const memory: MemoryPoint[] = [memoryPoint(0)];
    say(`   soak: ${soakFrames} frames; start RSS ${megabytes(memory[0].rssBytes)}, ${memory[0].numTensors} tensors`);
    for (let sent = 0; sent < soakFrames; ) {
      const chunk = Math.min(plan.soakChunk, soakFrames - sent);
      await fastDriver.closedLoop(soak, SATURATION_IN_FLIGHT, chunk, 60_000);
      sent += chunk;
      const point = memoryPoint(sent);
      memory.push(point);
      say(`   soak ${String(sent).padStart(String(soakFrames).length)}: RSS ${megabytes(point.rssBytes)}, heap ${megabytes(point.heapUsedBytes)}, ${point.numTensors} tensors, ` +
        `${fixed(soak.results / ((performance.now() - (soak.firstDueAt ?? 0)) / 1000))} frames/s, dropped ${soak.dropped}, failed ${soak.failed}`);
    }
    const soakFigures = soak.figures();
    phases.soak = soakFigures;

    // ---------------------------------------------------------------- pure-JS tfjs cpu
    // The same flow without the training nodes, classifying with the model trained above.
    fastDriver.dispose();
    process.env.LANE_VISION_ENGINE = 'tfjs';
    await nodeRed.deploy(laneFlow({ backend: 'cpu', engine: 'tfjs', folders, withTraining: false }));
    const cpuDriver = new LaneDriver(nodeRed.node(IDS.source), nodeRed.node(IDS.results), nodeRed.node(IDS.caught), IDS.classify, photos, 'cpu', nodeRed.onComplete);
    await warmUp(cpuDriver, 'tfjs cpu', 2, 2, retrain.version ?? 2, 180_000);
    const cpuRuntime = cpuDriver.lastRuntime ?? 'unknown';
    say(`-- classify on ${cpuRuntime}`);
    const cpuPhases: Record<string, PhaseFigures> = {};
    cpuPhases.tenFps = await openLoopPhase(cpuDriver, 'cpu 10 fps', 10, plan.cpu.tenFpsFrames, 180_000);
    show(cpuPhases.tenFps);
    cpuPhases.saturation = await closedLoopPhase(cpuDriver, 'cpu saturation', plan.cpu.inFlight, plan.cpu.saturationFrames, 180_000);
    show(cpuPhases.saturation);

    cpuDriver.dispose();
    await nodeRed.deploy([]);
    await pause(500);
    const tensorsAfter = tf.memory().numTensors;

    // ---------------------------------------------------------------- report
    say();
    const all = [...Object.values(phases), ...Object.values(framesOnMainThread ?? {}), ...Object.values(cpuPhases)];
    for (const line of phaseRows(all)) say(line);
    say('(latency: from the time a frame was due (open loop) or sent (closed loop) to its result at the collector; dropped: let go by the node\'s queue)');
    say();
    for (const line of profileRows(all)) say(line);
    say('(p50 ms per frame as the node reports it: queue wait, decode and backbone (its share of the batch, timed where they ran), head; outside: p50 latency');
    say(' minus the node\'s own total, i.e. Node-RED delivery both ways, the hop to the inference thread and event-loop waits; p99 tail: the same split, mean over');
    say(' the frames at or above p99; loop: event-loop delay of Node-RED\'s thread, ms (10 ms resolution); major GC: full collections of the main heap, count and');
    say(' longest pause, ms; cores used: CPU time of this process per wall second. ONNX Runtime\'s Node binding runs a batch synchronously: on the main thread it');
    say(' blocks the event loop, in the inference worker it does not)');

    const first = memory[1] ?? memory[0];
    const last = memory[memory.length - 1];
    const rssGrowth = last.rssBytes - first.rssBytes;
    const belowSaturation = [phases.tenFps, phases.thirtyFps, phases.retrain, soakFigures];
    const retrainRatio = phases.retrain.latency.p99 / phases.thirtyFps.latency.p99;
    const retrainLost = phases.retrain.dropped + phases.retrain.failed + phases.retrain.lost;
    const targets: FlowBenchReport['targets'] = {
      saturationFps: { value: `${fixed(phases.saturation.achievedFps)} frames/s`, target: `>= ${FLOW_TARGETS.saturationFps}`, pass: phases.saturation.achievedFps >= FLOW_TARGETS.saturationFps },
      p99At30Fps: { value: `${fixed(phases.thirtyFps.latency.p99)} ms`, target: `<= ${FLOW_TARGETS.p99At30FpsMs} ms`, pass: phases.thirtyFps.latency.p99 <= FLOW_TARGETS.p99At30FpsMs },
      retrainP99Ratio: {
        value: `${fixed(phases.retrain.latency.p99)} ms = ${fixed(retrainRatio, 2)}x quiet`,
        target: `<= ${FLOW_TARGETS.retrainP99Ratio}x`,
        pass: retrainRatio <= FLOW_TARGETS.retrainP99Ratio,
      },
      retrainFramesLost: { value: `${retrainLost} of ${phases.retrain.offered}`, target: '0', pass: retrainLost === 0 },
      droppedBelowSaturation: {
        value: belowSaturation.map((p) => `${p.name} ${p.dropped + p.lost}`).join(', '),
        target: '0',
        pass: belowSaturation.every((p) => p.dropped + p.lost === 0),
      },
      soakTensorsFlat: { value: `${memory[0].numTensors} -> ${last.numTensors}`, target: 'equal', pass: last.numTensors === memory[0].numTensors },
      soakRssFlat: {
        value: `${megabytes(memory[0].rssBytes)} start, ${megabytes(first.rssBytes)} after ${first.frames}, ${megabytes(last.rssBytes)} end (${rssGrowth >= 0 ? '+' : ''}${megabytes(rssGrowth)})`,
        target: 'growth after the first chunk < 5%',
        pass: rssGrowth < 0.05 * first.rssBytes,
      },
    };
    const ratios: Record<string, number> = {
      retrainP99: retrainRatio,
      ...(phases.retrainMainThread ? { retrainMainThreadP99: phases.retrainMainThread.latency.p99 / phases.thirtyFps.latency.p99 } : {}),
      ...(framesOnMainThread
        ? {
            framesOnMainP99At30Fps: framesOnMainThread.thirtyFps.latency.p99 / phases.thirtyFps.latency.p99,
            framesOnMainLoopP99AtSaturation: framesOnMainThread.saturation.eventLoopDelay.p99 / phases.saturation.eventLoopDelay.p99,
            framesOnMainSaturationFps: framesOnMainThread.saturation.achievedFps / phases.saturation.achievedFps,
          }
        : {}),
      saturationFps: phases.saturation.achievedFps / cpuPhases.saturation.achievedFps,
      tenFpsAchieved: phases.tenFps.achievedFps / cpuPhases.tenFps.achievedFps,
      tenFpsP50: cpuPhases.tenFps.latency.p50 / phases.tenFps.latency.p50,
      saturationP50: cpuPhases.saturation.latency.p50 / phases.saturation.latency.p50,
    };
    say();
    const rows: (string | number)[][] = Object.entries(targets).map(([name, t]) => [name, t.value, t.target, t.pass ? 'PASS' : 'MISS']);
    const onMain = phases.retrainMainThread;
    if (onMain) {
      const lostOnMain = onMain.dropped + onMain.failed + onMain.lost;
      rows.push(['retrain on the main thread', `p99 ${fixed(onMain.latency.p99)} ms = ${fixed(onMain.latency.p99 / phases.thirtyFps.latency.p99, 2)}x quiet, ${lostOnMain} lost`, 'for comparison', '']);
    }
    if (framesOnMainThread) {
      const [m30, mSat] = [framesOnMainThread.thirtyFps, framesOnMainThread.saturation];
      rows.push(
        ['frames on the main thread: 30 fps p99', `${fixed(m30.latency.p99)} vs ${fixed(phases.thirtyFps.latency.p99)} ms in the worker, ${m30.majorGc.count} vs ${phases.thirtyFps.majorGc.count} major GCs`, 'for comparison', ratio(m30.latency.p99, phases.thirtyFps.latency.p99)],
        ['frames on the main thread: saturation', `${fixed(mSat.achievedFps)} vs ${fixed(phases.saturation.achievedFps)} frames/s, event loop p99 ${fixed(mSat.eventLoopDelay.p99)} vs ${fixed(phases.saturation.eventLoopDelay.p99)} ms`, 'for comparison', ratio(mSat.eventLoopDelay.p99, phases.saturation.eventLoopDelay.p99)],
      );
    }
    rows.push(
      ['vs tfjs cpu: saturation', `${fixed(phases.saturation.achievedFps)} vs ${fixed(cpuPhases.saturation.achievedFps)} frames/s`, '', ratio(phases.saturation.achievedFps, cpuPhases.saturation.achievedFps)],
      ['vs tfjs cpu: 10 fps offered', `${fixed(phases.tenFps.achievedFps)} vs ${fixed(cpuPhases.tenFps.achievedFps)} frames/s achieved`, '', ratio(phases.tenFps.achievedFps, cpuPhases.tenFps.achievedFps)],
      ['vs tfjs cpu: p50 at 10 fps', `${fixed(phases.tenFps.latency.p50)} vs ${fixed(cpuPhases.tenFps.latency.p50)} ms`, '', `${ratio(cpuPhases.tenFps.latency.p50, phases.tenFps.latency.p50)} lower`],
      ['tensors', `${tensorsBefore} before the flow, ${tensorsAfter} after it was removed`, 'equal', tensorsAfter === tensorsBefore ? 'PASS' : 'MISS'],
    );
    for (const line of table(['flow figure', 'value', 'target', 'verdict'], rows)) say(line);
    const nodeRedLog = nodeRed.takeLog();
    otherErrors.push(...fastDriver.otherErrors, ...cpuDriver.otherErrors);
    if (otherErrors.length) say(`errors from other nodes: ${otherErrors.slice(0, 5).join('; ')}`);
    say(`Node-RED logged ${nodeRedLog.errors} errors, ${nodeRedLog.warnings} warnings${nodeRedLog.distinct.length ? `, e.g. ${nodeRedLog.distinct.join(' | ')}` : ''}`);
    return {
      nodeRed: nodeRed.version,
      backbone: BACKBONE,
      trainThread,
      inferenceThread,
      photos: photos.length,
      soakFrames,
      fast: { runtime, seedTraining, phases, retrain, mainThreadRetrain, soak: { phase: soakFigures, memory }, framesOnMainThread },
      pureJs: { runtime: cpuRuntime, phases: cpuPhases },
      targets,
      ratios,
      unmatchedMessages: unmatched + fastDriver.unmatched + cpuDriver.unmatched,
      otherErrors,
      nodeRedLog,
      tensors: { before: tensorsBefore, after: tensorsAfter },
    };
  } finally {
    await nodeRed.stop().catch(() => undefined);
    restoreEnv('LANE_VISION_ENGINE', savedEnv.engine);
    restoreEnv('LANE_VISION_CACHE', savedEnv.cache);
    restoreEnv('LANE_VISION_INFERENCE_THREAD', savedEnv.inferenceThread);
  }
}

/** The process-wide feature cache of the compiled library the nodes run on (dist/, not this file's src/). */
function compiledFeatureCache(repoRoot: string): { clear(): void } {
  return (require(path.join(repoRoot, 'dist', 'src', 'features', 'index.js')) as { sharedFeatureCache: { clear(): void } }).sharedFeatureCache;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/** Where the compiled nodes embed lane frames (src/features inferenceThreadFrom, LANE_VISION_INFERENCE_THREAD); "main" before they had a thread for it. */
function framesThread(repoRoot: string): string {
  const features = require(path.join(repoRoot, 'dist', 'src', 'features', 'index.js')) as { inferenceThreadFrom?: () => string };
  return features.inferenceThreadFrom?.() ?? 'main';
}

/** Where the compiled nodes train (src/retrain trainThreadFrom, LANE_VISION_TRAIN_THREAD); "main" before training had a thread of its own. */
function trainingThread(repoRoot: string): string {
  const retrain = require(path.join(repoRoot, 'dist', 'src', 'retrain', 'index.js')) as { trainThreadFrom?: () => string };
  return retrain.trainThreadFrom?.() ?? 'main';
}
