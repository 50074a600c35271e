/**
 * The disk-backed feature cache (the fine-tune's activation cache): entries outlive the
 * process (a second cache on the same folder finds them), it stays within its byte bound by
 * dropping the least recently used, a changed key (another backbone, crop or view) misses,
 * and a damaged file is a miss, not an error. Embedding through it on a real backbone reads
 * the cached vectors instead of running the backbone again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireBackbone, type Backbone } from '../../../src/engine/index.js';
import { DiskFeatureCache, embedImages, FeatureCache } from '../../../src/features/index.js';
import { classImages, groceryValDir, modelDir } from '../../support/shared.js';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-disk-cache-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const vector = (n: number, fill: number) => new Float32Array(n).fill(fill);
const fitA = { kind: 'cover' as const, crop: { fraction: 0.7 } };

test('entries survive a new cache on the same folder; another key (backbone, crop, view, image) misses', () => {
  const dir = path.join(work, 'reuse');
  const key = FeatureCache.key('bb-1|activations:block_14_add', fitA, 'hash-a');
  new DiskFeatureCache(dir).set(key, vector(2744, 0.5));

  const again = new DiskFeatureCache(dir);
  assert.equal(again.size, 1);
  assert.deepEqual(again.get(key), vector(2744, 0.5), 'the same key reads the stored values back');
  for (const other of [
    FeatureCache.key('bb-2|activations:block_14_add', fitA, 'hash-a'),
    FeatureCache.key('bb-1|activations:block_15_add', fitA, 'hash-a'),
    FeatureCache.key('bb-1|activations:block_14_add', { ...fitA, crop: { fraction: 0.55 } }, 'hash-a'),
    FeatureCache.key('bb-1|activations:block_14_add', fitA, 'hash-a', { angle: 10 }),
    FeatureCache.key('bb-1|activations:block_14_add', fitA, 'hash-b'),
  ]) {
    assert.equal(again.get(other), undefined, `${other} is another entry`);
  }
  assert.equal(again.hits, 1);
  assert.equal(again.misses, 5);
});

test('the folder stays within its bound, dropping the least recently used entry first', () => {
  const dir = path.join(work, 'bound');
  const entryBytes = 1000 * 4;
  const cache = new DiskFeatureCache(dir, entryBytes * 3);
  for (const name of ['a', 'b', 'c']) cache.set(name, vector(1000, name.charCodeAt(0)));
  assert.ok(cache.get('a'), 'a is used again: b is now the oldest');
  cache.set('d', vector(1000, 4));
  assert.equal(cache.byteSize, entryBytes * 3);
  const onDisk = fs.readdirSync(dir).filter((f) => f.endsWith('.f32'));
  assert.equal(onDisk.length, 3, 'one file was deleted');
  assert.equal(cache.get('b'), undefined, 'the least recently used went');
  for (const name of ['a', 'c', 'd']) assert.ok(cache.get(name), `${name} stays`);

  // A smaller bound on the next open trims the folder at once.
  const smaller = new DiskFeatureCache(dir, entryBytes);
  assert.equal(smaller.size, 1);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.f32')).length, 1);
});

test('a damaged entry is a miss and is removed', () => {
  const dir = path.join(work, 'damaged');
  const cache = new DiskFeatureCache(dir);
  cache.set('k', vector(10, 1));
  const [file] = fs.readdirSync(dir);
  fs.writeFileSync(path.join(dir, file), Buffer.from([1, 2, 3]));
  assert.equal(cache.get('k'), undefined);
  assert.equal(fs.readdirSync(dir).length, 0);
});

let backbone: Backbone;
before(async () => {
  backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
});
after(() => backbone.release());

test('embedding real photos through it: the second pass reads every vector from disk, equal to the first', async () => {
  const dir = path.join(work, 'embed');
  const photos = classImages(groceryValDir, 'Oatly-Oat-Milk').slice(0, 3);
  const first = await embedImages(backbone, photos, { cache: new DiskFeatureCache(dir), fit: fitA });
  assert.equal(first.cacheHits, 0);
  const second = await embedImages(backbone, photos, { cache: new DiskFeatureCache(dir), fit: fitA });
  assert.equal(second.cacheHits, photos.length, 'a new process would find them all');
  second.results.forEach((r, i) => assert.deepEqual(r.features, first.results[i].features));
  const otherCrop = await embedImages(backbone, photos, { cache: new DiskFeatureCache(dir), fit: { ...fitA, crop: { fraction: 0.55 } } });
  assert.equal(otherCrop.cacheHits, 0, 'another crop is another key');
});
