/**
 * `lane-vision versions`, run as a child process on a store of real version folders (the
 * heads are seeded random numbers: listing, activating and pruning never run a backbone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { openModelStore } from '../../../src/model-store/index.js';
import { backbone, makeHead, tempStoreDir } from '../model-store/helpers.js';
import { jsonLines, runLaneVision } from './support.js';

async function storeWithVersions(t: { after(fn: () => void): void }, count: number): Promise<string> {
  const dir = tempStoreDir(t);
  const store = await openModelStore(dir);
  for (let i = 1; i <= count; i++) {
    await store.saveModel({
      head: makeHead('softmax', 2, i),
      labels: ['a', 'b'],
      backbone,
      metrics: { holdout: { accuracy: i / 10 } },
      datasetFingerprint: `d${i}`,
    });
  }
  return dir;
}

test('versions list / activate / rollback / prune, with --json and as text', async (t) => {
  const dir = await storeWithVersions(t, 5);
  const listed = await runLaneVision(['versions', '--store', dir, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const records = jsonLines(listed);
  assert.deepEqual(records.map((r) => r.version), [1, 2, 3, 4, 5]);
  assert.deepEqual(records.map((r) => r.active), [false, false, false, false, true]);
  assert.deepEqual(records.map((r) => r.previous), [false, false, false, true, false]);
  assert.equal(records[2].accuracy, 0.3, 'the grouped accuracy of metrics.holdout');
  assert.deepEqual(records[0].labels.map((l: { label: string }) => l.label), ['a', 'b']);
  assert.equal(records[0].head, 'softmax');
  assert.equal(records[0].backboneId, backbone.id);

  const activated = await runLaneVision(['versions', '--store', dir, 'activate', 'v0002', '--json']);
  assert.equal(activated.code, 0, activated.stderr);
  assert.deepEqual(jsonLines(activated), [{ action: 'activate', version: 2, previous: 5 }]);

  // keep 1 keeps v5 (newest) and v2 (active); v5 is also the previous one.
  const pruned = await runLaneVision(['versions', '--store', dir, 'prune', '--keep', '1', '--json']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.deepEqual(jsonLines(pruned), [{ action: 'prune', removed: [1, 3, 4], kept: [2, 5] }]);

  const rolled = await runLaneVision(['versions', '--store', dir, 'rollback', '--json']);
  assert.equal(rolled.code, 0, rolled.stderr);
  assert.deepEqual(jsonLines(rolled), [{ action: 'rollback', version: 5, previous: 2 }]);

  const text = await runLaneVision(['versions', '--store', dir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^v5\s+active\s/m);
  assert.match(text.stdout, /^v2\s+previous\s/m);
});

test('prune keeps the previous version even when it is old', async (t) => {
  const dir = await storeWithVersions(t, 4);
  assert.equal((await runLaneVision(['versions', '--store', dir, 'activate', '1'])).code, 0);
  assert.equal((await runLaneVision(['versions', '--store', dir, 'activate', '4'])).code, 0);
  const pruned = await runLaneVision(['versions', '--store', dir, 'prune', '--keep', '1', '--json']);
  assert.deepEqual(jsonLines(pruned), [{ action: 'prune', removed: [2, 3], kept: [1, 4] }]);
});

test('versions refuses bad input with one line and the right exit code', async (t) => {
  const dir = await storeWithVersions(t, 1);
  for (const [args, code, pattern] of [
    [['versions', '--store', dir, 'frobnicate'], 2, /unknown action "frobnicate"/],
    [['versions', '--store', dir, 'activate'], 2, /missing N/],
    [['versions', '--store', dir, 'prune'], 2, /prune needs --keep/],
    [['versions', '--store', dir, 'prune', '--keep', '0'], 2, /--keep must be a whole number/],
    [['versions', '--store', dir, 'activate', '9'], 1, /v0009 is not in .*\[MODEL_VERSION_NOT_FOUND\]/],
    [['versions', '--store', dir, 'rollback'], 1, /\[MODEL_ROLLBACK_UNAVAILABLE\]/],
    [['versions', '--store', dir + '-missing'], 1, /No model store at .*\[MODEL_STORE_INVALID\]/],
  ] as const) {
    const run = await runLaneVision(args);
    assert.equal(run.code, code, `${args.join(' ')}: ${run.stderr}`);
    const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('lane-vision'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], pattern);
  }
  assert.ok(fs.existsSync(dir), 'nothing removed by the failed commands');
});
