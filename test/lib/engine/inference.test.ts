import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  IMAGENET_CLASSES,
  acquireBackbone,
  imagenetTopK,
  initBackend,
  loadBackbone,
  sharedBackbones,
  tf,
} from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { type Photo, valPhotos } from './photos.js';

let photos: Photo[];

before(async () => {
  await initBackend();
  photos = await valPhotos({ width: 224, height: 224 }); // 20 classes x 5
});

test('ImageNet top-k from classification models gives real labels and probabilities, best first', async () => {
  for (const name of ['mobilenet-v2-1.0-imagenet', 'mobilenet-v1-0.25-imagenet', 'mobilenet-v1-0.25-imagenet-graph']) {
    const backbone = await loadBackbone(modelDir(name));
    try {
      const probabilities = await backbone.engine.predict(photos.slice(0, 10));
      for (const p of probabilities) {
        const top = imagenetTopK(p, 5);
        assert.equal(top.length, 5);
        for (let i = 0; i < top.length; i++) {
          assert.ok(Number.isInteger(top[i].classIndex) && top[i].classIndex >= 0 && top[i].classIndex < 1000);
          assert.equal(top[i].label, IMAGENET_CLASSES[top[i].classIndex]);
          assert.ok(top[i].probability > 0 && top[i].probability <= 1);
          if (i > 0) assert.ok(top[i].probability <= top[i - 1].probability);
        }
        const offset = p.length - 1000;
        assert.equal(top[0].probability, Math.max(...p.subarray(offset)), `${name}: top-1 is the largest class probability`);
      }
      // The background output of 1001-way models is never reported as a class.
      if (backbone.engine.outputSize === 1001) assert.equal(backbone.classLabels?.[0], 'background');
    } finally {
      backbone.release();
    }
  }
});

test('imagenetTopK maps 1001-way outputs (background first) back to ImageNet classes', () => {
  const p = new Float32Array(1001);
  p[0] = 0.5; // background
  p[1] = 0.3; // tench
  p[1000] = 0.2; // last class
  const top = imagenetTopK(p, 2);
  assert.deepEqual(
    top.map((t) => [t.classIndex, t.label]),
    [
      [0, IMAGENET_CLASSES[0]],
      [999, IMAGENET_CLASSES[999]],
    ],
  );
  assert.throws(() => imagenetTopK(new Float32Array(10)), (err) => isLaneVisionError(err, 'NOT_IMAGENET_OUTPUT'));
});

/**
 * The layers and graph MobileNet V1 0.25 come from different conversions (Keras, 1000
 * classes, [-1,1] vs TF-Slim via TF Hub, 1001 classes, [0,1]). On grocery packages, which
 * are not ImageNet classes, they agree only loosely; the check is that each model's input
 * scaling is right: agreement is far above chance and drops when the scaling is wrong.
 */
test('layers and graph MobileNet V1 0.25 agree far above chance, and only with the right input scaling', async () => {
  const layers = await loadBackbone(modelDir('mobilenet-v1-0.25-imagenet'));
  const graph = await loadBackbone(modelDir('mobilenet-v1-0.25-imagenet-graph'));
  const graphMisscaled = await loadBackbone({ source: modelDir('mobilenet-v1-0.25-imagenet-graph'), inputRange: '[-1,1]' });
  try {
    const [pl, pg, pw] = await Promise.all([layers, graph, graphMisscaled].map((b) => b.engine.predict(photos)));
    const agreement = (a: Float32Array[], b: Float32Array[]) =>
      a.filter((p, i) => imagenetTopK(b[i], 5).some((t) => t.classIndex === imagenetTopK(p, 1)[0].classIndex)).length / a.length;
    const right = agreement(pl, pg);
    const wrong = agreement(pl, pw);
    assert.ok(right >= 0.25, `layers top-1 within graph top-5 on ${(right * 100).toFixed(0)}% of photos (chance: 0.5%)`);
    assert.ok(right > wrong + 0.1, `right scaling ${right} vs wrong scaling ${wrong}`);
  } finally {
    for (const b of [layers, graph, graphMisscaled]) b.release();
  }
});

test('a batch gives the same features as one frame at a time, however it is split', async () => {
  const dir = modelDir('mobilenet-v2-0.35-features');
  const whole = await loadBackbone(dir);
  const split = await loadBackbone(dir, { maxBatch: 3 });
  try {
    const frames = photos.slice(0, 8);
    const batched = await whole.engine.features(frames);
    const chunked = await split.engine.features(frames);
    for (let i = 0; i < frames.length; i++) {
      const [single] = await whole.engine.features([frames[i]]);
      for (let j = 0; j < single.length; j++) {
        assert.ok(Math.abs(single[j] - batched[i][j]) < 1e-4);
        assert.ok(Math.abs(single[j] - chunked[i][j]) < 1e-4);
      }
    }
  } finally {
    whole.release();
    split.release();
  }
});

test('repeated features and predict calls keep tf.memory().numTensors flat', async () => {
  for (const name of ['mobilenet-v2-1.0-imagenet', 'mobilenet-v1-0.25-imagenet-graph', 'teachable-machine-export']) {
    const backbone = await loadBackbone(modelDir(name));
    try {
      await backbone.engine.features(photos.slice(0, 2));
      const tensors = tf.memory().numTensors;
      for (let round = 0; round < 5; round++) {
        await backbone.engine.features(photos.slice(round * 4, round * 4 + 4));
        await backbone.engine.predict(photos.slice(round, round + 2));
        await assert.rejects(backbone.engine.features([{ data: new Uint8Array(3) }]));
        assert.equal(tf.memory().numTensors, tensors, `${name} round ${round}`);
      }
    } finally {
      backbone.release();
    }
  }
});

test('acquireBackbone shares one copy per identity and disposes it after the last release', async () => {
  const dir = modelDir('mobilenet-v1-0.25-imagenet');
  const tensors = tf.memory().numTensors;
  // Concurrent first users, a different spelling of the same folder, and its model.json path.
  const [a, b, c, d] = await Promise.all([
    acquireBackbone(dir),
    acquireBackbone({ source: dir }),
    acquireBackbone(path.relative(process.cwd(), dir)),
    acquireBackbone(path.join(dir, 'model.json')),
  ]);
  assert.ok(a === b && b === c && c === d, 'one instance');
  assert.deepEqual(sharedBackbones().find((s) => s.id === a.id), { id: a.id, users: 4 });
  const other = await acquireBackbone({ source: dir, featureLayer: 'conv_pw_12_relu' });
  assert.notEqual(other, a);
  assert.notEqual(other.id, a.id);
  other.release();

  for (const user of [a, b, c]) user.release();
  const [stillThere] = await d.engine.features(photos.slice(0, 1));
  assert.equal(stillThere.length, 256);
  d.release();
  await assert.rejects(d.engine.features(photos.slice(0, 1)), (err) => isLaneVisionError(err, 'ENGINE_DISPOSED'));
  assert.equal(sharedBackbones().find((s) => s.id === a.id), undefined);
  assert.equal(tf.memory().numTensors, tensors, 'the last release frees the weights');

  const fresh = await acquireBackbone(dir);
  assert.notEqual(fresh, a, 'a new copy after disposal');
  assert.equal(fresh.id, a.id, 'with the same identity');
  fresh.release();
  await assert.rejects(acquireBackbone(path.join(dir, 'missing')), (err) => isLaneVisionError(err, 'MODEL_NOT_FOUND'));
});
