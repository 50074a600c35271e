/**
 * embedImages / embedImagesSettled on real weights and photos: order kept, bad inputs in
 * place, the cache used, and a limited decode concurrency giving the same vectors.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadBackbone, type Backbone } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { FeatureCache, embedImages, embedImagesSettled } from '../../../src/features/index.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';

let backbone: Backbone;
const photos = classNames(groceryValDir).slice(0, 3).flatMap((name) => classImages(groceryValDir, name).slice(0, 2));

before(async () => {
  backbone = await loadBackbone(modelDir('mobilenet-v2-0.35-features'));
});
after(() => backbone.release());

test('settled: vectors in input order, a corrupt image gives its error in its place, the rest still embed', async () => {
  const corrupt = Buffer.from('not an image at all');
  const inputs = [photos[0], corrupt, photos[1]];
  const report = await embedImagesSettled(backbone, inputs, { cache: null, batchSize: 2 });
  assert.equal(report.results.length, 3);
  const [first, bad, third] = report.results;
  assert.ok('features' in first && first.features.length === backbone.featureSize);
  assert.ok('error' in bad && isLaneVisionError(bad.error), 'the corrupt image reports a typed error');
  assert.ok('features' in third);
  assert.notDeepEqual(first.features, third.features);
  await assert.rejects(embedImages(backbone, inputs, { cache: null }), (err: unknown) => isLaneVisionError(err));
});

test('a second pass is served from the cache with the same vectors', async () => {
  const cache = new FeatureCache();
  const cold = await embedImages(backbone, photos, { cache });
  const warm = await embedImages(backbone, photos, { cache });
  assert.equal(cold.cacheHits, 0);
  assert.equal(warm.cacheHits, photos.length);
  assert.ok(warm.results.every((r) => r.cached));
  warm.results.forEach((r, i) => assert.deepEqual(r.features, cold.results[i].features));
});

test('decoding one frame at a time gives the same vectors in the same order', async () => {
  const parallel = await embedImages(backbone, photos, { cache: null, batchSize: 4 });
  const serial = await embedImages(backbone, photos, { cache: null, batchSize: 4, decodeConcurrency: 1 });
  assert.equal(serial.results.length, photos.length);
  serial.results.forEach((r, i) => {
    assert.equal(r.hash, parallel.results[i].hash);
    assert.deepEqual(r.features, parallel.results[i].features);
  });
});
