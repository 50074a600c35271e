/**
 * Benchmark section: what a dashboard costs, for the shared photos (348 px JPEGs) and 1080p
 * camera frames (JPEGs made in memory from the photos):
 * - bytesPerSecond: what Dashboard 2 receives per second from a 30 frames/s lane, results
 *   wired straight to a widget with the frame in every result (lane-classify's Include frame;
 *   the frame's bytes counted once, a lower bound) against lane-stats' six messages every 2 s;
 * - recordUs: lane-stats' cost per result (counting, keeping the latest frame);
 * - emitMs: one emission (the figures plus the last frame made into a 320 px JPEG data URL).
 * `bench/run.ts --only dashboard` runs it.
 */
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import type { ClassificationResult } from '../src/classify/index.js';
import { DashboardFeed } from '../src/dashboard/index.js';
import { classImages, groceryValDir, YOGHURT_CLASSES } from '../test/support/shared.js';
import * as fs from 'node:fs';
import { distribution, fixed, type Distribution } from './stats.js';

const LANE_FPS = 30;
const EMIT_INTERVAL_S = 2;
const FRAME_BOX = 320;

export interface DashboardBenchOptions {
  quick?: boolean;
  say: (text?: string) => void;
}

interface FrameKindFigures {
  frameBytes: number;
  bytesPerSecondFramePerResult: number;
  bytesPerSecondLaneStats: number;
  recordUs: Distribution;
  emitMs: Distribution;
  lastFrameDataUrlBytes: number;
}

export type DashboardBenchFigures = Record<'photos' | 'fullHd', FrameKindFigures>;

function result(label: string, confidence: number): ClassificationResult {
  return {
    label,
    code: 1,
    confidence,
    accepted: confidence >= 0.6,
    reason: confidence >= 0.6 ? 'accepted' : 'low-confidence',
    threshold: 0.6,
    similarityThreshold: null,
    margin: 0.2,
    topK: [{ label, code: 1, confidence }],
    modelVersion: 3,
    backboneId: 'mobilenet-v2-0.35-features',
    engine: 'tfjs',
    backend: 'wasm',
    frameHash: 'f'.repeat(64),
    timings: { queueMs: 1, decodeMs: 4, featuresMs: 20, headMs: 1, totalMs: 26 },
  };
}

async function measure(frames: Buffer[], emissions: number): Promise<FrameKindFigures> {
  const feed = new DashboardFeed({ windowMinutes: 10, frameBox: FRAME_BOX });
  const recordUs: number[] = [];
  const emitMs: number[] = [];
  let laneStatsBytes = 0;
  let resultBytes = 0;
  let lastFrameDataUrlBytes = 0;
  let at = Date.now();
  const perEmission = LANE_FPS * EMIT_INTERVAL_S;
  for (let e = 0; e < emissions; e++) {
    for (let i = 0; i < perEmission; i++) {
      const frame = frames[(e * perEmission + i) % frames.length];
      const classified = result(YOGHURT_CLASSES[i % YOGHURT_CLASSES.length], 0.5 + (i % 5) / 10);
      // A result with its frame, as a widget receives it: the result as JSON, the frame's bytes
      // counted once (socket.io carries a Buffer as a binary attachment): a lower bound.
      if (e === 0 && i < 4) resultBytes += JSON.stringify({ payload: classified.label, classification: classified }).length + frame.length;
      const started = performance.now();
      feed.record(classified, frame, at);
      recordUs.push((performance.now() - started) * 1000);
      at += 1000 / LANE_FPS;
    }
    const started = performance.now();
    const out = await feed.messages(at);
    emitMs.push(performance.now() - started);
    const sent = [out.counts, out.rejectRate, out.confidence, out.throughput, out.frame, out.model].filter(Boolean);
    laneStatsBytes += sent.reduce((sum, msg) => sum + JSON.stringify(msg).length, 0);
    if (out.frame) lastFrameDataUrlBytes = out.frame.payload.length;
  }
  return {
    frameBytes: Math.round(frames.reduce((sum, f) => sum + f.length, 0) / frames.length),
    bytesPerSecondFramePerResult: Math.round((resultBytes / 4) * LANE_FPS),
    bytesPerSecondLaneStats: Math.round(laneStatsBytes / (emissions * EMIT_INTERVAL_S)),
    recordUs: distribution(recordUs),
    emitMs: distribution(emitMs),
    lastFrameDataUrlBytes,
  };
}

export async function runDashboardBench(options: DashboardBenchOptions): Promise<DashboardBenchFigures> {
  const { say } = options;
  const emissions = options.quick ? 5 : 20;
  const photos = ['Arla-Mild-Vanilla-Yoghurt', 'Yoggi-Strawberry-Yoghurt', 'Valio-Vanilla-Yoghurt'].flatMap((product) =>
    classImages(groceryValDir, product)
      .slice(0, 4)
      .map((file) => fs.readFileSync(file)),
  );
  const fullHd = await Promise.all(photos.slice(0, 4).map((photo) => sharp(photo).resize(1920, 1080, { fit: 'cover' }).jpeg({ quality: 85 }).toBuffer()));
  const figures: DashboardBenchFigures = { photos: await measure(photos, emissions), fullHd: await measure(fullHd, emissions) };
  const kb = (bytes: number) => `${fixed(bytes / 1024, 0)} KB`;
  say(`a ${LANE_FPS} frames/s lane; lane-stats emits every ${EMIT_INTERVAL_S} s with a ${FRAME_BOX} px last frame; ${emissions} emissions per kind`);
  for (const [kind, f] of Object.entries(figures)) {
    say(
      `${kind.padEnd(7)} frame ${kb(f.frameBytes)}: to the dashboard ${kb(f.bytesPerSecondFramePerResult)}/s with the frame in every result, ` +
        `${kb(f.bytesPerSecondLaneStats)}/s from lane-stats (last frame ${kb(f.lastFrameDataUrlBytes)}); ` +
        `record p50 ${fixed(f.recordUs.p50, 1)} µs, emission p50 ${fixed(f.emitMs.p50, 1)} ms p99 ${fixed(f.emitMs.p99, 1)} ms`,
    );
  }
  return figures;
}
