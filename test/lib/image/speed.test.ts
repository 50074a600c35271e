import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { prepareImage } from '../../../src/image/index.js';
import { classImages, classNames, groceryValDir } from '../../support/shared.js';

/** The brief's per-frame budget for decoding + resizing (the CNN has its own). */
const BUDGET_MS = 10;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

test('a 348x348 shared JPEG becomes 224x224 RGB within the per-frame budget', async (t) => {
  const photos = classNames(groceryValDir).flatMap((name) => classImages(groceryValDir, name));
  assert.ok(photos.length >= 50, 'enough validation photos');
  const buffers = await Promise.all(photos.map((file) => fs.promises.readFile(file)));
  const size = { width: 224, height: 224 };
  for (const buffer of buffers.slice(0, 10)) await prepareImage(buffer, size); // warm-up

  const perForm: Record<string, number> = {};
  for (const [form, inputs] of [
    ['buffer', buffers],
    ['path', photos],
    ['base64', buffers.map((b) => b.toString('base64'))],
  ] as const) {
    const times: number[] = [];
    for (const input of inputs) {
      const started = process.hrtime.bigint();
      const prepared = await prepareImage(input, size);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
      assert.equal(prepared.data.length, 224 * 224 * 3);
    }
    perForm[form] = median(times);
    t.diagnostic(`${form}: median ${median(times).toFixed(2)} ms/frame, mean ${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(2)} ms over ${times.length} frames`);
  }
  for (const [form, ms] of Object.entries(perForm)) assert.ok(ms < BUDGET_MS, `${form} took ${ms.toFixed(2)} ms/frame (budget ${BUDGET_MS})`);
});
