/**
 * `npm run bench`: Lane Vision's speed, cost and accuracy figures, all measured side by
 * side in one run on real weights (MobileNetV2 0.35 features) and real photos
 * (grocery-packages):
 *   1. frame -> features (hash + decode + resize + backbone): p50/p99 ms at batch 1 and
 *      frames/s at batch 1/4/8/16, for the engine/backend in use and for tfjs's pure-JS
 *      cpu backend, each loaded on its own, with ratios;
 *      (and bench/onnx.ts: ONNX Runtime with 1 and 2 threads against tfjs wasm);
 *   2. decode only (sharp), so the split is visible;
 *   3. cold and warm retrain, demo-sized and the whole train/ split, against targets;
 *   4. accuracy on val/ of heads trained on train/ (20 classes; 6 yoghurt kinds), and (bench/pipeline.ts)
 *      the default training's val/ accuracy and reported estimate, old against new, the search
 *      time, and the per-frame cost of test-time views;
 *   5. tfjs tensor count and process memory before and after;
 *   6. (bench/flow.ts) the lane through a real Node-RED flow: frames/s and latency at 10
 *      and 30 fps and at saturation, during a full retrain, a soak, and tfjs cpu beside it;
 *   7. (bench/camera.ts) a 1920x1080 MJPEG camera (ffmpeg) through src/camera into the
 *      classifier: camera cost per frame, ROI crop, camera-to-decision latency;
 *   8. (bench/dashboard.ts) what a dashboard receives per second (frames in every result
 *      against lane-stats), and lane-stats' cost per result and per emission.
 *
 * Options: --quick (fewer frames), --only flow|library|camera|frame-path|dashboard, --soak N (frames of the flow
 * soak), --json [FILE] (also write every figure as JSON), --help. LANE_VISION_SHARED
 * points at the shared models and datasets.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, loadBackbone, tf, type Backbone, type BackendName, type LoadBackboneOptions } from '../src/engine/index.js';
import { embedImages, FeatureCache } from '../src/features/index.js';
import { prepareImage } from '../src/image/index.js';
import { openDataset, type Dataset } from '../src/dataset/index.js';
import { openModelStore } from '../src/model-store/index.js';
import { retrain, type RetrainResult } from '../src/retrain/index.js';
import { evaluateHead, trainHead, type HeadKind } from '../src/training/index.js';
import { table } from '../src/cli/output.js';
import { classImages, classNames, groceryDir, groceryTrainDir, groceryValDir, modelDir, sharedDir, YOGHURT_CLASSES } from '../test/support/shared.js';
import { DEFAULT_SOAK_FRAMES, QUICK_SOAK_FRAMES, runFlowBench } from './flow.js';
import { runFramePathBench } from './frame-path.js';
import { runCameraBench } from './camera.js';
import { runOnnxBench } from './onnx.js';
import { runPipelineBench, type PipelineBenchFigures } from './pipeline.js';
import { runOpenSetBench, type OpenSetBenchFigures } from './open-set.js';
import { runFineTuneBench } from './fine-tune.js';
import { runDashboardBench } from './dashboard.js';
import { distribution, fixed, megabytes, ratio, timed, type Distribution } from './stats.js';

const BACKBONE = 'mobilenet-v2-0.35-features';
const BATCH_SIZES = [1, 4, 8, 16] as const;
/** The classic demo: seven kinds (the six yoghurts and an oatghurt), 10 to 33 photos each. */
const DEMO_CLASSES = [...YOGHURT_CLASSES, 'Oatly-Natural-Oatghurt'];
const DEMO_MIN_IMAGES = 10;
const DEMO_MAX_IMAGES = 33;
/**
 * coldDemo: the seeds' demo took 5.5 minutes; we take seconds. warmDemo: a retrain after a
 * few new frames (the searched pipeline reused). coldWholeSplit: the full pipeline search on
 * the 864 photos. (A warm retrain of the whole split is reported, not targeted: since the
 * honest estimate it now scores five grouped folds with augmentation views, not one random hold-out.)
 */
const TARGETS = { coldDemoMs: 10_000, warmDemoMs: 1_000, coldWholeSplitMs: 120_000 };
const HEAD_KINDS: readonly HeadKind[] = ['softmax', 'mlp', 'prototype', 'knn'];

interface Plan {
  /** Frames timed one by one at batch 1. */
  latencyFrames: number;
  /** Frames per batch-size run. */
  throughputFrames: number;
}

const PLANS: Record<'full' | 'quick', { fast: Plan; pureJs: Plan; decodeFrames: number }> = {
  full: { fast: { latencyFrames: 100, throughputFrames: 64 }, pureJs: { latencyFrames: 24, throughputFrames: 32 }, decodeFrames: 200 },
  quick: { fast: { latencyFrames: 30, throughputFrames: 32 }, pureJs: { latencyFrames: 8, throughputFrames: 16 }, decodeFrames: 60 },
};

const HELP = `Usage: node --import tsx bench/run.ts [--quick] [--only flow|library|camera|frame-path|dashboard] [--soak N] [--json [FILE]]

  --quick          fewer frames and a 3,000-frame soak (a few minutes instead of about twenty)
  --only flow      only the Node-RED flow section (lane-classify / lane-train in a real runtime)
  --only library   everything but the flow and camera sections
  --only camera    only the camera section (a 1920x1080 MJPEG stream from ffmpeg into the classifier)
  --only frame-path  only the frame path at saturation (photos and 1080p frames through the inference worker)
  --only dashboard   only the dashboard section (bytes a dashboard receives, lane-stats' cost)
  --soak N         frames in the flow section's soak (default ${DEFAULT_SOAK_FRAMES}, ${QUICK_SOAK_FRAMES} with --quick)
  --json [FILE]    also write every figure as JSON to FILE (default lane-vision-bench-<time>.json)
  -h, --help       this help

LANE_VISION_SHARED overrides the folder holding models/ and datasets/.`;

function say(text = ''): void {
  process.stdout.write(text + '\n');
}

function heading(text: string): void {
  say();
  say(`== ${text}`);
}

interface Options {
  quick: boolean;
  only?: 'flow' | 'library' | 'camera' | 'frame-path' | 'dashboard';
  soak?: number;
  jsonFile?: string;
}

function parseOptions(argv: string[]): Options {
  const args = [...argv];
  const json = args.indexOf('--json');
  if (json >= 0 && (json === args.length - 1 || args[json + 1].startsWith('-'))) {
    args.splice(json + 1, 0, `lane-vision-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  }
  const usage = (message: string): never => {
    process.stderr.write(`bench: ${message} (see --help)\n`);
    process.exit(2);
  };
  let values: { quick?: boolean; json?: string; only?: string; soak?: string; help?: boolean } = {};
  try {
    ({ values } = parseArgs({
      args,
      options: { quick: { type: 'boolean' }, json: { type: 'string' }, only: { type: 'string' }, soak: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message.split('\n')[0]);
  }
  if (values.help) {
    say(HELP);
    process.exit(0);
  }
  if (values.only !== undefined && !['flow', 'library', 'camera', 'frame-path', 'dashboard'].includes(values.only)) usage(`--only takes flow, library, camera, frame-path or dashboard, not "${values.only}"`);
  const soak = values.soak === undefined ? undefined : Number(values.soak);
  if (soak !== undefined && !(Number.isSafeInteger(soak) && soak >= 1)) usage(`--soak takes a whole number of frames, not "${values.soak}"`);
  return { quick: values.quick === true, only: values.only as Options['only'], soak, jsonFile: values.json && path.resolve(values.json) };
}

// ------------------------------------------------------------------ memory

interface MemorySnapshot {
  numTensors: number;
  tfBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
}

function memory(): MemorySnapshot {
  const tfMemory = tf.memory();
  const usage = process.memoryUsage();
  return { numTensors: tfMemory.numTensors, tfBytes: tfMemory.numBytes, rssBytes: usage.rss, heapUsedBytes: usage.heapUsed };
}

function loadAverage(): string {
  return `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs`;
}

// ------------------------------------------------------------------ frames

/** `count` photos spread evenly over every class of both splits, read into memory as a camera would hand them over. */
function loadFrames(count: number): { files: string[]; buffers: Buffer[] } {
  const all = [groceryTrainDir, groceryValDir].flatMap((split) => classNames(split).flatMap((c) => classImages(split, c)));
  const step = all.length / Math.min(count, all.length);
  const files = Array.from({ length: Math.min(count, all.length) }, (_, i) => all[Math.floor(i * step)]);
  return { files, buffers: files.map((f) => fs.readFileSync(f)) };
}

// ------------------------------------------------------------------ 1. frame -> features

interface Runner {
  /** What was asked for. */
  request: Pick<LoadBackboneOptions, 'engine' | 'backend'>;
  plan: Plan;
}

interface RunnerResult {
  label: string;
  engine: string;
  backend: string;
  loadMs: number;
  tensorsWhileLoaded: number;
  /** Whole frame at batch 1: hash + decode + resize + backbone. */
  latency: Distribution;
  /** The backbone part of those frames. */
  modelLatency: Distribution;
  decodeLatency: Distribution;
  /** Frames per second by batch size. */
  framesPerSecond: Record<number, number>;
  best: { batch: number; framesPerSecond: number };
}

async function measureRunner(runner: Runner, frames: Buffer[], cacheDir: string): Promise<RunnerResult> {
  const { result: backbone, ms: loadMs } = await timed(() => loadBackbone(modelDir(BACKBONE), { ...runner.request, cacheDir }));
  try {
    const label = `${backbone.engine.name} ${backbone.backend.name}`;
    say(`-- ${label}: loaded in ${fixed(loadMs, 0)} ms (asked ${runner.request.engine ?? 'auto'} engine, ${runner.request.backend ?? 'auto'} backend)`);
    const tensorsWhileLoaded = tf.memory().numTensors;
    await embedImages(backbone, frames.slice(0, 4), { cache: null, batchSize: 4 }); // settle JIT / kernel caches

    const total: number[] = [];
    const model: number[] = [];
    const decode: number[] = [];
    for (let i = 0; i < runner.plan.latencyFrames; i++) {
      const frame = frames[i % frames.length];
      const { result, ms } = await timed(() => embedImages(backbone, [frame], { cache: null, batchSize: 1 }));
      total.push(ms);
      model.push(result.featuresMs);
      decode.push(result.decodeMs);
    }
    const latency = distribution(total);
    say(`   batch 1: p50 ${fixed(latency.p50)} ms, p99 ${fixed(latency.p99)} ms over ${latency.n} frames (backbone p50 ${fixed(distribution(model).p50)} ms)`);

    const framesPerSecond: Record<number, number> = {};
    const batchFrames = frames.slice(0, runner.plan.throughputFrames);
    for (const batchSize of BATCH_SIZES) {
      // A lane repeats one batch size: its first run (shape-specific set-up in some engines) is not timed.
      await embedImages(backbone, batchFrames.slice(0, batchSize), { cache: null, batchSize });
      const { ms } = await timed(() => embedImages(backbone, batchFrames, { cache: null, batchSize }));
      framesPerSecond[batchSize] = batchFrames.length / (ms / 1000);
      say(`   batch ${String(batchSize).padStart(2)}: ${fixed(framesPerSecond[batchSize])} frames/s over ${batchFrames.length} frames`);
    }
    const bestBatch = BATCH_SIZES.reduce((best, b) => (framesPerSecond[b] > framesPerSecond[best] ? b : best), BATCH_SIZES[0] as number);
    return {
      label,
      engine: backbone.engine.name,
      backend: backbone.backend.name,
      loadMs,
      tensorsWhileLoaded,
      latency,
      modelLatency: distribution(model),
      decodeLatency: distribution(decode),
      framesPerSecond,
      best: { batch: bestBatch, framesPerSecond: framesPerSecond[bestBatch] },
    };
  } finally {
    backbone.release();
  }
}

// ------------------------------------------------------------------ 2. decode only

interface DecodeResult {
  size: { width: number; height: number };
  sequential: Distribution;
  /** Frames/s decoding 8 at a time, as embedImages does for a batch. */
  parallelFramesPerSecond: number;
}

async function measureDecode(frames: Buffer[], size: { width: number; height: number }): Promise<DecodeResult> {
  const options = { ...size, fit: { kind: 'cover' as const } };
  for (const frame of frames.slice(0, 4)) await prepareImage(frame, options);
  const samples: number[] = [];
  for (const frame of frames) samples.push((await timed(() => prepareImage(frame, options))).ms);
  const { ms } = await timed(async () => {
    for (let start = 0; start < frames.length; start += 8) await Promise.all(frames.slice(start, start + 8).map((f) => prepareImage(f, options)));
  });
  return { size, sequential: distribution(samples), parallelFramesPerSecond: frames.length / (ms / 1000) };
}

// ------------------------------------------------------------------ 3. retrain

interface RetrainFigures {
  job: string;
  images: number;
  labels: number;
  cold: { wallMs: number; featuresMs: number; trainMs: number; cachedFeatures: number };
  warm: { wallMs: number; featuresMs: number; trainMs: number; cachedFeatures: number };
  holdoutAccuracy: number;
}

/** The demo job as its own dataset folder: DEMO_CLASSES with 10..33 photos, fewest for the class with fewest. */
function writeDemoDataset(dir: string): Record<string, number> {
  const available = DEMO_CLASSES.map((label) => ({ label, files: classImages(groceryTrainDir, label) })).sort(
    (a, b) => a.files.length - b.files.length || a.label.localeCompare(b.label),
  );
  const counts: Record<string, number> = {};
  available.forEach(({ label, files }, i) => {
    const wanted = Math.round(DEMO_MIN_IMAGES + ((DEMO_MAX_IMAGES - DEMO_MIN_IMAGES) * i) / (available.length - 1));
    const chosen = files.slice(0, Math.min(wanted, files.length));
    fs.mkdirSync(path.join(dir, label), { recursive: true });
    for (const file of chosen) fs.copyFileSync(file, path.join(dir, label, path.basename(file)));
    counts[label] = chosen.length;
  });
  return counts;
}

async function measureRetrain(job: string, open: () => Promise<Dataset>, backbone: Backbone, storeDir: string, cache: FeatureCache): Promise<RetrainFigures> {
  const store = await openModelStore(storeDir);
  const figures = (r: RetrainResult, wallMs: number) => ({
    wallMs,
    featuresMs: r.metrics.timings.featuresMs,
    trainMs: r.metrics.timings.trainMs,
    cachedFeatures: r.metrics.timings.cachedFeatures,
  });
  // Cold: a dataset not opened before in this process and an empty feature cache; the default (auto) training.
  const cold = await timed(async () => {
    const dataset = await open();
    return { dataset, result: await retrain({ dataset, backbone, store, cache }) };
  });
  const coldFigures = figures(cold.result.result, cold.ms);
  say(
    `-- ${job}: cold ${fixed(cold.ms / 1000, 2)} s (features ${fixed(coldFigures.featuresMs / 1000, 2)} s, search ${fixed(cold.result.result.metrics.timings.searchMs / 1000, 2)} s, final head ${fixed(coldFigures.trainMs, 0)} ms)`,
  );
  // Warm: what a lane does after a few new frames, reusing the pipeline the search chose.
  const previous = (await store.loadModel('active')).metadata.pipeline;
  const warm = await timed(() => retrain({ dataset: cold.result.dataset, backbone, store, cache, previous }));
  const warmFigures = figures(warm.result, warm.ms);
  say(`   warm ${fixed(warm.ms, 0)} ms (${warmFigures.cachedFeatures} cached features, heads ${fixed(warmFigures.trainMs, 0)} ms)`);
  const metrics = cold.result.result.metrics;
  return {
    job,
    images: metrics.trainCount + metrics.holdoutCount,
    labels: cold.result.result.labels.length,
    cold: coldFigures,
    warm: warmFigures,
    holdoutAccuracy: metrics.holdout.accuracy,
  };
}

// ------------------------------------------------------------------ 4. accuracy

interface AccuracyFigures {
  task: string;
  trainImages: number;
  valImages: number;
  classes: number;
  byHead: Record<HeadKind, { accuracy: number; macroF1: number; trainMs: number; correct: number }>;
}

async function labelledFeatures(backbone: Backbone, splitDir: string, classes: readonly string[], present: readonly string[], cache: FeatureCache) {
  const files = present.flatMap((label) => classImages(splitDir, label).map((file) => ({ file, label: classes.indexOf(label) })));
  const embedded = await embedImages(backbone, files.map((f) => f.file), { cache, batchSize: 16 });
  return { features: embedded.results.map((r) => r.features), labels: files.map((f) => f.label) };
}

async function measureAccuracy(task: string, backbone: Backbone, classes: readonly string[], cache: FeatureCache): Promise<AccuracyFigures> {
  const valPresent = classes.filter((c) => classNames(groceryValDir).includes(c));
  const train = await labelledFeatures(backbone, groceryTrainDir, classes, classes, cache);
  const val = await labelledFeatures(backbone, groceryValDir, classes, valPresent, cache);
  const byHead = {} as AccuracyFigures['byHead'];
  for (const kind of HEAD_KINDS) {
    const trained = await trainHead({ features: train.features, labels: train.labels, classCount: classes.length, labelNames: classes }, { kind, seed: 1 });
    const metrics = evaluateHead(trained.head, val.features, val.labels, classes);
    byHead[kind] = { accuracy: metrics.accuracy, macroF1: metrics.macroF1, trainMs: trained.ms, correct: Math.round(metrics.accuracy * metrics.count) };
  }
  say(`-- ${task}: ${HEAD_KINDS.map((k) => `${k} ${fixed(byHead[k].accuracy * 100)}%`).join(', ')}`);
  return { task, trainImages: train.features.length, valImages: val.features.length, classes: classes.length, byHead };
}

// ------------------------------------------------------------------ sections 1-5

/** Frame -> features, ONNX Runtime threads, decode, retrain, accuracy, memory; their summary. */
async function runLibrarySections(
  options: Options,
  plan: (typeof PLANS)['full'],
  inUse: Awaited<ReturnType<typeof initBackend>>,
  before: MemorySnapshot,
  scratch: string,
  cacheDir: string,
  report: Record<string, unknown>,
): Promise<void> {
  // 1. frame -> features
  heading('frame -> features (hash + decode + resize + backbone), each backend loaded on its own');
  const frames = loadFrames(Math.max(plan.fast.latencyFrames, plan.fast.throughputFrames, plan.decodeFrames));
  const runners: Runner[] = [
    { request: {}, plan: plan.fast }, // whatever auto picks (engine and backend)
    { request: { engine: 'tfjs', backend: inUse.name }, plan: inUse.name === 'cpu' ? plan.pureJs : plan.fast },
    { request: { engine: 'tfjs', backend: 'cpu' }, plan: plan.pureJs },
  ];
  const speed: RunnerResult[] = [];
  for (const runner of runners) {
    const same = speed.find((s) => s.engine === runner.request.engine && s.backend === runner.request.backend);
    if (same) {
      say(`-- ${same.label}: measured above (what auto picks)`);
      continue;
    }
    speed.push(await measureRunner(runner, frames.buffers, cacheDir));
  }
  const pureJs = speed.find((s) => s.engine === 'tfjs' && s.backend === 'cpu');
  say();
  for (const line of table(
    ['engine backend', 'load ms', 'b1 p50 ms', 'b1 p99 ms', 'backbone p50', ...BATCH_SIZES.map((b) => `fps@${b}`), 'best fps', 'vs tfjs cpu'],
    speed.map((s) => [
      s.label,
      fixed(s.loadMs, 0),
      fixed(s.latency.p50),
      fixed(s.latency.p99),
      fixed(s.modelLatency.p50),
      ...BATCH_SIZES.map((b) => fixed(s.framesPerSecond[b])),
      `${fixed(s.best.framesPerSecond)} (b${s.best.batch})`,
      pureJs ? ratio(s.best.framesPerSecond, pureJs.best.framesPerSecond) : '-',
    ]),
    [false, true, true, true, true, ...BATCH_SIZES.map(() => true), true, true],
  )) say(line);
  report.featureSpeed = speed;

  // 1b. ONNX Runtime threads against tfjs wasm, backbone alone and with decode (bench/onnx.ts)
  heading('backbone alone and with decode: onnxruntime 1 and 2 threads against tfjs wasm');
  try {
    report.onnx = await runOnnxBench({ quick: options.quick, say });
  } catch (err) {
    say(`skipped: ${err instanceof Error ? err.message : String(err)}`);
    report.onnx = { skipped: err instanceof Error ? err.message : String(err) };
  }
  // The cpu and wasm runs switched tfjs over; heads train on the backend in use again.
  await initBackend(inUse.name as BackendName);

  // 2. decode only
  heading('decode only (sharp: JPEG -> 224x224 RGB, centre crop)');
  const decode = await measureDecode(frames.buffers.slice(0, plan.decodeFrames), { width: 224, height: 224 });
  say(`one at a time: p50 ${fixed(decode.sequential.p50, 2)} ms, p99 ${fixed(decode.sequential.p99, 2)} ms over ${decode.sequential.n} frames; ` +
    `8 at a time: ${fixed(decode.parallelFramesPerSecond, 0)} frames/s`);
  for (const s of speed) {
    say(`share of a batch-1 frame spent decoding on ${s.label}: ${fixed((100 * s.decodeLatency.p50) / s.latency.p50, 0)}% (decode p50 ${fixed(s.decodeLatency.p50, 1)} of ${fixed(s.latency.p50, 1)} ms)`);
  }
  report.decode = decode;

  // 3. retrain, on what a lane uses (auto)
  heading('retrain: features + heads (hold-out and final) + save; cold = new dataset handle and empty feature cache');
  const backbone = await loadBackbone(modelDir(BACKBONE), { cacheDir });
  let accuracy: AccuracyFigures[] = [];
  let retrains: RetrainFigures[] = [];
  let openSet: OpenSetBenchFigures | undefined;
  let pipeline: PipelineBenchFigures = { tasks: [], perFrame: { plain: distribution([]), withTestViews: distribution([]), views: 0 } };
  try {
    say(`backbone on ${backbone.engine.name} ${backbone.backend.name}; heads train on tfjs ${inUse.name}`);
    const demoDir = path.join(scratch, 'demo-dataset');
    const demoCounts = writeDemoDataset(demoDir);
    say(`demo job: ${Object.entries(demoCounts).map(([label, n]) => `${label} ${n}`).join(', ')}`);
    const demo = await measureRetrain('demo (7 classes)', () => openDataset(demoDir, { readOnly: true }), backbone, path.join(scratch, 'demo-store'), new FeatureCache());
    const wholeCache = new FeatureCache();
    const whole = await measureRetrain('whole train/ split', () => openDataset(groceryTrainDir, { readOnly: true }), backbone, path.join(scratch, 'whole-store'), wholeCache);
    retrains = [demo, whole];
    say();
    for (const line of table(
      ['job', 'images', 'labels', 'cold s', 'cold features s', 'warm ms', 'warm heads ms', 'hold-out acc'],
      retrains.map((r) => [r.job, r.images, r.labels, fixed(r.cold.wallMs / 1000, 2), fixed(r.cold.featuresMs / 1000, 2), fixed(r.warm.wallMs, 0), fixed(r.warm.trainMs, 0), `${fixed(r.holdoutAccuracy * 100)}%`]),
      [false, true, true, true, true, true, true, true],
    )) say(line);
    report.retrain = retrains;

    // 4. accuracy on val/, features of train/ from the whole-split cache
    heading('accuracy on val/ (photos never trained on) of heads trained on all of train/');
    const valClasses = classNames(groceryValDir);
    accuracy = [
      await measureAccuracy(`${valClasses.length} classes of val/`, backbone, valClasses, wholeCache),
      await measureAccuracy(`${YOGHURT_CLASSES.length} yoghurt kinds`, backbone, YOGHURT_CLASSES, wholeCache),
    ];
    say();
    for (const line of table(
      ['task', 'train', 'val', ...HEAD_KINDS.map((k) => `${k}`), 'best'],
      accuracy.map((a) => {
        const best = HEAD_KINDS.reduce((b, k) => (a.byHead[k].accuracy > a.byHead[b].accuracy ? k : b), HEAD_KINDS[0]);
        return [a.task, a.trainImages, a.valImages, ...HEAD_KINDS.map((k) => `${fixed(a.byHead[k].accuracy * 100)}% (${a.byHead[k].correct}/${a.valImages})`), best];
      }),
      [false, true, true, ...HEAD_KINDS.map(() => true), false],
    )) say(line);
    say(`head training time (20 classes): ${HEAD_KINDS.map((k) => `${k} ${fixed(accuracy[0].byHead[k].trainMs, 0)} ms`).join(', ')}`);
    say('(chance: 5% for 20 classes, 25% for the 4 yoghurt kinds val/ holds)');
    report.accuracy = accuracy;

    // 4b. the default training against the first wave's, on val/
    heading('default training on train/, scored on val/ (another session): the first wave\'s default against the pipeline search');
    pipeline = await runPipelineBench({ backbone, cache: wholeCache, scratch, quick: options.quick, say });
    report.pipeline = pipeline;

    // 4c. products the model never saw
    heading('unknown products: 6 yoghurts known, other packages of val/ unknown, at each model\'s own operating point');
    openSet = await runOpenSetBench({ backbone, cache: wholeCache, scratch, quick: options.quick, say });
    report.openSet = openSet;

    // 4d. fine-tuning the backbone's last blocks
    heading("fine-tuning the backbone's last blocks against the frozen pipeline, scored on val/ as a lane serves each");
    report.fineTune = await runFineTuneBench({ backbone, cache: wholeCache, scratch, quick: options.quick, say });
  } finally {
    backbone.release();
  }

  // 5. memory after
  const after = memory();
  report.memoryAfter = after;
  report.peakRssBytes = process.resourceUsage().maxRSS * 1024;
  report.loadAverageAtEnd = os.loadavg();

  heading('summary');
  const [demo, whole] = retrains;
  const coldOk = demo.cold.wallMs <= TARGETS.coldDemoMs;
  const warmOk = demo.warm.wallMs <= TARGETS.warmDemoMs;
  const wholeOk = whole.cold.wallMs <= TARGETS.coldWholeSplitMs;
  const tensorsFlat = after.numTensors === before.numTensors;
  const inUseSpeed = speed[0];
  const lines: (string | number)[][] = [
    ['frame -> features, batch 1', `p50 ${fixed(inUseSpeed.latency.p50)} ms, p99 ${fixed(inUseSpeed.latency.p99)} ms on ${inUseSpeed.label}`, pureJs ? `tfjs cpu p50 ${fixed(pureJs.latency.p50)} ms: ${ratio(pureJs.latency.p50, inUseSpeed.latency.p50)} faster` : ''],
    ...speed.map((s) => ['best throughput', `${fixed(s.best.framesPerSecond)} frames/s on ${s.label} (batch ${s.best.batch})`, pureJs && s !== pureJs ? `${ratio(s.best.framesPerSecond, pureJs.best.framesPerSecond)} tfjs cpu` : '']),
    ['decode only', `p50 ${fixed(decode.sequential.p50, 2)} ms/frame, ${fixed(decode.parallelFramesPerSecond, 0)} frames/s 8-wide`, ''],
    ['cold retrain, demo', `${fixed(demo.cold.wallMs / 1000, 2)} s for ${demo.images} images`, `${coldOk ? 'PASS' : 'MISS'} (target <= ${TARGETS.coldDemoMs / 1000} s)`],
    ['warm retrain, demo', `${fixed(demo.warm.wallMs, 0)} ms (pipeline reused)`, `${warmOk ? 'PASS' : 'MISS'} (target <= ${TARGETS.warmDemoMs / 1000} s)`],
    ['cold retrain (search), whole train/', `${fixed(whole.cold.wallMs / 1000, 2)} s for ${whole.images} images`, `${wholeOk ? 'PASS' : 'MISS'} (target <= ${TARGETS.coldWholeSplitMs / 1000} s)`],
    ['warm retrain, whole train/', `${fixed(whole.warm.wallMs, 0)} ms (pipeline reused; five grouped folds with views)`, ''],
    ...pipeline.tasks.map((t) => [
      `val/, ${t.task}`,
      `old default ${fixed(t.old.valAccuracy * 100)}% (reported ${fixed(t.old.reportedHoldout * 100)}%); new ${fixed(t.auto.valAccuracy * 100)}% (reports ${fixed(t.auto.estimate * 100)}%)`,
      `gap ${fixed(t.auto.gapPoints)} pts; with ${t.testViews.views} test views ${fixed(t.testViews.valAccuracy * 100)}%`,
    ]),
    ['test-time views cost', `p50 ${fixed(pipeline.perFrame.plain.p50)} ms plain, ${fixed(pipeline.perFrame.withTestViews.p50)} ms with ${pipeline.perFrame.views}`, ''],
    ...(openSet?.rows ?? []).map((r) => [
      `open set: ${r.model.split(',')[0]}${r.model.includes('reject') ? ' + reject class' : ''}`,
      `unknown accepted ${r.figures.unknownAccepted === null ? '-' : `${fixed(r.figures.unknownAccepted * 100)}%`}, precision ${r.figures.precision === null ? '-' : `${fixed(r.figures.precision * 100)}%`}, coverage ${fixed(r.figures.coverage * 100)}%`,
      '',
    ]),
    ...(openSet ? [['novelty score', `p50 ${fixed(openSet.noveltyCost.noveltyUs.p50, 0)} µs a frame (${openSet.noveltyCost.indexedFrames} frames indexed)`, `backbone ${fixed(openSet.noveltyCost.backboneMs, 1)} ms`]] : []),
    ...accuracy.map((a) => [`val accuracy, ${a.task}`, HEAD_KINDS.map((k) => `${k} ${fixed(a.byHead[k].accuracy * 100)}%`).join(', '), '']),
    ['tf tensors', `${before.numTensors} before, ${after.numTensors} after`, tensorsFlat ? 'PASS (flat)' : 'MISS (leak)'],
    ['load average', `${loadAverage()} at the end`, ''],
    ['RSS', `${megabytes(before.rssBytes)} before, ${megabytes(after.rssBytes)} after, peak ${megabytes(process.resourceUsage().maxRSS * 1024)}`, ''],
  ];
  for (const line of table(['figure', 'value', 'against'], lines)) say(line);
  report.targets = { ...TARGETS, coldDemoPass: coldOk, warmDemoPass: warmOk, coldWholeSplitPass: wholeOk, tensorsFlat };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const plan = PLANS[options.quick ? 'quick' : 'full'];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-bench-'));
  // Converted models and downloads go to a scratch cache: the run leaves the user's cache alone.
  const cacheDir = path.join(scratch, 'model-cache');
  const report: Record<string, unknown> = { startedAt: new Date().toISOString(), quick: options.quick };
  try {
    const inUse = await initBackend(); // auto: what a lane gets on this machine
    const before = memory();
    const cpus = os.cpus();
    say(`Lane Vision benchmark${options.quick ? ' (quick)' : ''} — ${new Date().toISOString()}`);
    say(`machine   ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${megabytes(os.totalmem())} RAM, Node ${process.version}, ${os.platform()} ${os.arch()}`);
    say(`backbone  ${modelDir(BACKBONE)}`);
    say(`photos    ${groceryDir} (shared: ${sharedDir})`);
    say(`tfjs      ${tf.version_core}, backend in use ${inUse.name}${inUse.skipped.length ? ` (skipped ${inUse.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''}`);
    say(`memory    before: ${before.numTensors} tensors, RSS ${megabytes(before.rssBytes)}`);
    say(`load      ${loadAverage()} (other work on the machine slows every figure below)`);
    report.machine = { loadAverageAtStart: os.loadavg(), cpus: cpus.length, cpuModel: cpus[0]?.model, totalMemoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.arch()}` };
    report.backendInUse = inUse;
    report.memoryBefore = before;

    if (options.only === undefined || options.only === 'library') await runLibrarySections(options, plan, inUse, before, scratch, cacheDir, report);
    if (options.only === undefined || options.only === 'frame-path') {
      heading('frame path at saturation: JPEG bytes -> sharp -> backbone in the inference worker (photos and 1080p frames)');
      report.framePath = await runFramePathBench({ quick: options.quick, cacheDir, say });
    }
    if (options.only === undefined || options.only === 'camera') {
      heading('camera: a 1920x1080 MJPEG stream (ffmpeg, 30 frames/s) through src/camera into the classifier');
      report.camera = await runCameraBench({ quick: options.quick, say });
    }
    if (options.only === undefined || options.only === 'dashboard') {
      heading('dashboard: what Dashboard 2 receives from a 30 frames/s lane, and what lane-stats costs');
      report.dashboard = await runDashboardBench({ quick: options.quick, say });
    }
    if (options.only === undefined || options.only === 'flow') {
      heading('lane flow in a real Node-RED runtime: lane-classify and lane-train on the engine auto picks, then on tfjs cpu');
      report.flow = await runFlowBench({ quick: options.quick, soakFrames: options.soak, scratch, repoRoot: path.resolve(__dirname, '..'), say });
    }
    report.finishedAt = new Date().toISOString();
    if (options.jsonFile) {
      fs.writeFileSync(options.jsonFile, JSON.stringify(report, null, 2) + '\n');
      say();
      say(`figures written to ${options.jsonFile}`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
