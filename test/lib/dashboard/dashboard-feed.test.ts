/**
 * DashboardFeed: the figures lane-stats sends, from results as lane-classify makes them,
 * with real photos as frames: counts per label over the window, reject rate, mean
 * confidence, frames per second, the last frame as a small JPEG (once per new frame) and
 * the model version (once per change).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import sharp from 'sharp';
import { DashboardFeed, DASHBOARD_TOPICS } from '../../../src/dashboard/index.js';
import { LiveStats } from '../../../src/console/live-stats.js';
import type { ClassificationResult } from '../../../src/classify/index.js';
import { classImages, groceryValDir, YOGHURT_CLASSES } from '../../support/shared.js';

const photo = fs.readFileSync(classImages(groceryValDir, YOGHURT_CLASSES[0])[0]);

function result(label: string, confidence: number, accepted: boolean, modelVersion = 2): ClassificationResult {
  return {
    label,
    code: 1,
    confidence,
    accepted,
    reason: accepted ? 'accepted' : 'low-confidence',
    threshold: 0.6,
    similarityThreshold: null,
    margin: 0.1,
    topK: [{ label, code: 1, confidence }],
    modelVersion,
    backboneId: 'mobilenet-v2-0.35-features',
    engine: 'tfjs',
    backend: 'cpu',
    frameHash: 'x',
    timings: { queueMs: 0, decodeMs: 1, featuresMs: 10, headMs: 1, totalMs: 12 },
  };
}

test('counts per label (sorted, for a bar chart), reject rate and mean confidence in percent, frames per second', async () => {
  const feed = new DashboardFeed({ windowMinutes: 10, frameBox: 0 });
  const t0 = 1_000_000;
  feed.record(result('vanilla', 0.9, true), undefined, t0);
  feed.record(result('strawberry', 0.8, true), undefined, t0 + 500);
  feed.record(result('unknown', 0.3, false), undefined, t0 + 1000);
  feed.record(result('vanilla', 0.7, true), undefined, t0 + 1500);
  const out = await feed.messages(t0 + 1500);
  assert.deepEqual(out.counts, {
    topic: DASHBOARD_TOPICS.counts,
    payload: [
      { label: 'strawberry', count: 1 },
      { label: 'unknown', count: 1 },
      { label: 'vanilla', count: 2 },
    ],
    windowMinutes: 10,
  });
  assert.deepEqual(out.rejectRate, { topic: 'reject rate', payload: 25, windowMinutes: 10 });
  assert.deepEqual(out.confidence, { topic: 'confidence', payload: 67.5 });
  // Three intervals in 1.5 s.
  assert.deepEqual(out.throughput, { topic: 'frames/s', payload: 2 });
  assert.equal(out.frame, undefined, 'frame size 0: no frame');
});

test('the model goes out in the first emission and again only when the version changes', async () => {
  const feed = new DashboardFeed({ windowMinutes: 10, frameBox: 0 });
  feed.record(result('vanilla', 0.9, true, 2), undefined);
  assert.deepEqual((await feed.messages()).model, { topic: 'model', payload: 'v2', version: 2, backboneId: 'mobilenet-v2-0.35-features' });
  feed.record(result('vanilla', 0.9, true, 2), undefined);
  assert.equal((await feed.messages()).model, undefined, 'unchanged');
  feed.record(result('vanilla', 0.9, true, 3), undefined);
  assert.equal((await feed.messages()).model?.payload, 'v3');
  feed.record(result('tench', 0.9, true, 0), undefined);
  assert.equal((await feed.messages()).model?.payload, 'ImageNet (backbone)');
});

test('the last frame is a JPEG data URL within the frame size, sent once per new frame, with its label', async () => {
  const feed = new DashboardFeed({ windowMinutes: 10, frameBox: 160 });
  feed.record(result('vanilla', 0.9, true), photo);
  feed.record(result('unknown', 0.4, false), photo);
  const first = await feed.messages();
  assert.ok(first.frame, 'a frame');
  assert.equal(first.frame.topic, 'last frame');
  assert.equal(first.frame.label, 'unknown', 'the latest frame');
  assert.equal(first.frame.confidence, 0.4);
  const prefix = 'data:image/jpeg;base64,';
  assert.ok(first.frame.payload.startsWith(prefix));
  const jpeg = Buffer.from(first.frame.payload.slice(prefix.length), 'base64');
  const meta = await sharp(jpeg).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(Math.max(meta.width!, meta.height!), 160);
  assert.ok(jpeg.length < photo.length, `smaller than the photo: ${jpeg.length} bytes from ${photo.length}`);
  assert.equal((await feed.messages()).frame, undefined, 'no new frame, none sent');
});

test('a frame that is not an image is reported, and the other figures still go out', async () => {
  const feed = new DashboardFeed({ windowMinutes: 10, frameBox: 160 });
  feed.record(result('vanilla', 0.9, true), Buffer.from('not an image at all, just some bytes'));
  const out = await feed.messages();
  assert.equal(out.frame, undefined);
  assert.ok(out.frameProblem instanceof Error);
  assert.equal(out.counts.payload.length, 1);
  assert.equal(out.throughput.topic, 'frames/s');
});

test('old frames leave the window: counts empty, no reject rate, and the rate falls to 0 when frames stop', async () => {
  const feed = new DashboardFeed({ windowMinutes: 1, frameBox: 0 });
  const t0 = 5_000_000;
  feed.record(result('vanilla', 0.9, true), undefined, t0);
  feed.record(result('vanilla', 0.9, false), undefined, t0 + 200);
  const later = await feed.messages(t0 + 61_000);
  assert.deepEqual(later.counts.payload, []);
  assert.equal(later.rejectRate, undefined);
  assert.equal(later.throughput.payload, 0);
  assert.equal(feed.resultCount, 2);
});

test('LiveStats without a decision (older callers) counts no rejects and no confidence', () => {
  const stats = new LiveStats(10);
  stats.classified(1000, 'a', 5);
  const view = stats.snapshot(1000);
  assert.equal(view.rejectRate, 0);
  assert.equal(view.confidence, null);
  assert.deepEqual(view.counts, { a: 1 });
});
