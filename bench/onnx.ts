/**
 * Benchmark section: the backbone on ONNX Runtime (1 and 2 intra-op threads) against
 * TensorFlow.js on WebAssembly, for MobileNetV2 0.35 features on real grocery photos:
 * p50/p99 ms per frame at batch 1 and frames/s at batch 8, model time alone and including
 * the sharp decode (src/image prepareImage). `bench/run.ts` calls `runOnnxBench`; it can also
 * run on its own: `node --import tsx bench/onnx.ts [--quick]`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { currentBackend, initBackend, loadBackbone, type LoadBackboneOptions } from '../src/engine/index.js';
import { prepareImage } from '../src/image/index.js';
import { classImages, classNames, groceryValDir, modelDir } from '../test/support/shared.js';
import { distribution, fixed, ratio, timed, type Distribution } from './stats.js';

const BACKBONE = 'mobilenet-v2-0.35-features';
const BATCH = 8;

export interface OnnxBenchOptions {
  /** Fewer frames (seconds instead of tens of seconds). */
  quick?: boolean;
  /** Where lines of the report go (default stdout). */
  say?: (line?: string) => void;
}

export interface OnnxBenchRow {
  label: string;
  engine: string;
  backend: string;
  threads?: number;
  loadMs: number;
  /** Backbone only, frames already decoded. */
  model: { batch1: Distribution; batch8FramesPerSecond: number };
  /** sharp decode + resize (prepareImage from JPEG bytes in memory) + backbone. */
  withDecode: { batch1: Distribution; batch8FramesPerSecond: number };
}

export interface OnnxBenchReport {
  backbone: string;
  cpus: number;
  rows: OnnxBenchRow[];
  /** ONNX Runtime (1 thread) against tfjs wasm. */
  speedup: { modelBatch1P50: number; modelBatch8: number; withDecodeBatch1P50: number; withDecodeBatch8: number };
}

interface Plan {
  batch1Runs: number;
  batch8Runs: number;
}

const PLANS = {
  full: { fast: { batch1Runs: 200, batch8Runs: 25 }, slow: { batch1Runs: 40, batch8Runs: 5 } },
  quick: { fast: { batch1Runs: 50, batch8Runs: 8 }, slow: { batch1Runs: 12, batch8Runs: 2 } },
};

/** Runs the section and returns every figure; prints a table through `say`. */
export async function runOnnxBench(options: OnnxBenchOptions = {}): Promise<OnnxBenchReport> {
  const say = options.say ?? ((line = '') => process.stdout.write(line + '\n'));
  const plans = PLANS[options.quick ? 'quick' : 'full'];
  const size = { width: 224, height: 224 };
  const prepare = { ...size, fit: { kind: 'cover' as const } };
  const files = classNames(groceryValDir).flatMap((c) => classImages(groceryValDir, c)).slice(0, 40);
  const jpegs = files.map((f) => fs.readFileSync(f));
  const frames = await Promise.all(jpegs.map((j) => prepareImage(j, prepare)));

  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-bench-onnx-'));
  const previousBackend = currentBackend();
  const rows: OnnxBenchRow[] = [];
  try {
    const runners: { label: string; request: LoadBackboneOptions; plan: Plan }[] = [
      { label: 'onnxruntime, 1 thread', request: { engine: 'onnx', onnxThreads: 1 }, plan: plans.fast },
      { label: 'onnxruntime, 2 threads', request: { engine: 'onnx', onnxThreads: 2 }, plan: plans.fast },
      { label: 'tfjs wasm', request: { engine: 'tfjs', backend: 'wasm' }, plan: plans.slow },
    ];
    for (const runner of runners) {
      const { result: backbone, ms: loadMs } = await timed(() => loadBackbone(modelDir(BACKBONE), { ...runner.request, cacheDir: scratch }));
      try {
        const engine = backbone.engine;
        for (let i = 0; i < 5; i++) await engine.features([frames[i]]); // settle allocations and JIT

        const modelSamples: number[] = [];
        for (let i = 0; i < runner.plan.batch1Runs; i++) modelSamples.push((await timed(() => engine.features([frames[i % frames.length]]))).ms);
        const modelBatch8 = await timed(async () => {
          for (let i = 0; i < runner.plan.batch8Runs; i++) await engine.features(pick(frames, i * BATCH, BATCH));
        });

        const decodeSamples: number[] = [];
        for (let i = 0; i < runner.plan.batch1Runs; i++) {
          const jpeg = jpegs[i % jpegs.length];
          decodeSamples.push((await timed(async () => engine.features([await prepareImage(jpeg, prepare)]))).ms);
        }
        const decodeBatch8 = await timed(async () => {
          for (let i = 0; i < runner.plan.batch8Runs; i++) {
            // A batch's frames are decoded together, as frames queued for one batch are.
            await engine.features(await Promise.all(pick(jpegs, i * BATCH, BATCH).map((j) => prepareImage(j, prepare))));
          }
        });

        const framesPerSecond = (ms: number) => (runner.plan.batch8Runs * BATCH) / (ms / 1000);
        rows.push({
          label: runner.label,
          engine: engine.name,
          backend: backbone.backend.name,
          threads: runner.request.onnxThreads,
          loadMs,
          model: { batch1: distribution(modelSamples), batch8FramesPerSecond: framesPerSecond(modelBatch8.ms) },
          withDecode: { batch1: distribution(decodeSamples), batch8FramesPerSecond: framesPerSecond(decodeBatch8.ms) },
        });
      } finally {
        backbone.release();
      }
    }
  } finally {
    // The wasm run switched tfjs over; give the rest of the benchmark the backend it had.
    if (previousBackend && previousBackend.name !== 'wasm') await initBackend(previousBackend.name);
    fs.rmSync(scratch, { recursive: true, force: true });
  }

  const [onnx, , wasm] = rows;
  const report: OnnxBenchReport = {
    backbone: BACKBONE,
    cpus: os.cpus().length,
    rows,
    speedup: {
      modelBatch1P50: wasm.model.batch1.p50 / onnx.model.batch1.p50,
      modelBatch8: onnx.model.batch8FramesPerSecond / wasm.model.batch8FramesPerSecond,
      withDecodeBatch1P50: wasm.withDecode.batch1.p50 / onnx.withDecode.batch1.p50,
      withDecodeBatch8: onnx.withDecode.batch8FramesPerSecond / wasm.withDecode.batch8FramesPerSecond,
    },
  };

  say(`backbone ${BACKBONE} at 224x224 on ${report.cpus} CPU(s); ${files.length} val photos in memory`);
  const header = ['engine', 'load ms', 'model b1 p50', 'model b1 p99', 'model b8 fps', 'decode+model b1 p50', 'decode+model b1 p99', 'decode+model b8 fps'];
  const lines = rows.map((r) => [
    r.label,
    fixed(r.loadMs, 0),
    `${fixed(r.model.batch1.p50, 2)} ms`,
    `${fixed(r.model.batch1.p99, 2)} ms`,
    fixed(r.model.batch8FramesPerSecond),
    `${fixed(r.withDecode.batch1.p50, 2)} ms`,
    `${fixed(r.withDecode.batch1.p99, 2)} ms`,
    fixed(r.withDecode.batch8FramesPerSecond),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  for (const line of [header, widths.map((w) => '-'.repeat(w)), ...lines]) say(line.map((cell, i) => (i ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  '));
  say(
    `onnxruntime (1 thread) vs tfjs wasm: model ${ratio(wasm.model.batch1.p50, onnx.model.batch1.p50)} at batch 1 (p50), ` +
      `${ratio(onnx.model.batch8FramesPerSecond, wasm.model.batch8FramesPerSecond)} at batch 8; with decode ` +
      `${ratio(wasm.withDecode.batch1.p50, onnx.withDecode.batch1.p50)} and ${ratio(onnx.withDecode.batch8FramesPerSecond, wasm.withDecode.batch8FramesPerSecond)}`,
  );
  return report;
}

function pick<T>(items: readonly T[], start: number, count: number): T[] {
  return Array.from({ length: count }, (_, i) => items[(start + i) % items.length]);
}

if (require.main === module) {
  runOnnxBench({ quick: process.argv.includes('--quick') }).catch((err: unknown) => {
    process.stderr.write(`bench onnx: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
