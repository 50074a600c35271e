import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend } from '../../../src/engine/backend.js';
import { isLaneVisionError } from '../../../src/errors.js';
import {
  deserialiseHead,
  HEAD_KINDS,
  predictHead,
  predictHeadBatch,
  serialiseHead,
  trainHead,
  type HeadJson,
  type TrainedHead,
} from '../../../src/training/index.js';
import { makeCentres, sampleClusters } from './synthetic.js';

const headInvalid = (err: unknown) => isLaneVisionError(err, 'HEAD_INVALID');

describe('predictHead', () => {
  before(async () => {
    await initBackend();
  });

  it('matches a softmax computed independently, and sums to 1', () => {
    // 3 inputs -> 2 classes, numbers small enough to check by hand.
    const head: TrainedHead = {
      kind: 'softmax',
      featureSize: 3,
      classCount: 2,
      normalise: true,
      layers: [
        {
          inputSize: 3,
          outputSize: 2,
          activation: 'softmax',
          kernel: Float32Array.from([1, -1, 2, 0, 0, 3]), // rows: input 0, 1, 2
          bias: Float32Array.from([0.5, -0.5]),
        },
      ],
    };
    const feature = Float32Array.from([3, 0, 4]); // length 5 -> [0.6, 0, 0.8]
    const logits = [0.5 + 0.6 * 1 + 0.8 * 0, -0.5 + 0.6 * -1 + 0.8 * 3];
    const expected = logits.map((z) => Math.exp(z) / (Math.exp(logits[0]) + Math.exp(logits[1])));
    const p = predictHead(head, feature);
    assert.equal(p.length, 2);
    p.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${v} vs ${expected[i]}`));
    assert.ok(Math.abs(p[0] + p[1] - 1) < 1e-6);
  });

  it('runs an MLP with ReLU like an independent computation', () => {
    const head: TrainedHead = {
      kind: 'mlp',
      featureSize: 2,
      classCount: 2,
      normalise: false,
      layers: [
        { inputSize: 2, outputSize: 2, activation: 'relu', kernel: Float32Array.from([1, -1, 1, -1]), bias: Float32Array.from([0, 0]) },
        { inputSize: 2, outputSize: 2, activation: 'softmax', kernel: Float32Array.from([1, 0, 0, 1]), bias: Float32Array.from([0, 0]) },
      ],
    };
    // hidden = relu([1+2, -1-2]) = [3, 0]; logits = [3, 0]
    const p = predictHead(head, Float32Array.from([1, 2]));
    const e = Math.exp(3);
    assert.ok(Math.abs(p[0] - e / (e + 1)) < 1e-6);
  });

  it('gives probabilities summing to 1 for every head kind, and the batch variant agrees', async () => {
    const centres = makeCentres(3, 16, 2);
    const data = sampleClusters(centres, 12, 1, 3);
    for (const kind of HEAD_KINDS) {
      const { head } = await trainHead(data, { kind });
      const batch = predictHeadBatch(head, data.features.slice(0, 5));
      batch.forEach((p, i) => {
        assert.equal(p.length, 3);
        const sum = p.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `${kind}: sum ${sum}`);
        assert.ok(p.every((v) => v >= 0 && v <= 1));
        assert.deepEqual(p, predictHead(head, data.features[i]));
      });
    }
  });

  it('rejects a feature vector of the wrong size or with NaN', async () => {
    const data = sampleClusters(makeCentres(2, 8, 1), 5, 0.5, 1);
    const { head } = await trainHead(data, { kind: 'softmax', epochs: 5 });
    assert.throws(() => predictHead(head, new Float32Array(7)), (err) => isLaneVisionError(err, 'FEATURE_SIZE_MISMATCH'));
    assert.throws(() => predictHead(head, new Float32Array(8).fill(NaN)), (err) => isLaneVisionError(err, 'FEATURE_INVALID'));
  });
});

describe('serialiseHead / deserialiseHead', () => {
  const data = sampleClusters(makeCentres(3, 16, 4), 10, 1, 5);
  const heads = new Map<string, TrainedHead>();
  before(async () => {
    await initBackend();
    for (const kind of HEAD_KINDS) heads.set(kind, (await trainHead(data, { kind })).head);
  });

  it('round-trips every head kind exactly, through JSON text too', () => {
    for (const [kind, head] of heads) {
      const { json, weights } = serialiseHead(head);
      assert.ok(Buffer.isBuffer(weights));
      assert.equal(json.byteLength, weights.length);
      const copy = deserialiseHead(JSON.stringify(json), Buffer.from(weights));
      assert.deepEqual(copy, head, kind);
      assert.deepEqual(predictHead(copy, data.features[0]), predictHead(head, data.features[0]));
    }
  });

  it('stores little-endian float32', () => {
    const head = heads.get('softmax')!;
    const { weights } = serialiseHead(head);
    assert.equal(weights.readFloatLE(0), head.layers![0].kernel[0]);
    assert.equal(weights.length, 4 * (16 * 3 + 3));
  });

  it('rejects corrupt or inconsistent input with HEAD_INVALID', () => {
    const { json, weights } = serialiseHead(heads.get('mlp')!);
    const withJson = (change: (j: HeadJson) => void) => {
      const copy = structuredClone(json) as HeadJson;
      change(copy);
      return copy;
    };
    const nan = Buffer.from(weights);
    nan.writeFloatLE(NaN, 8);
    const cases: [string, () => unknown][] = [
      ['truncated weights', () => deserialiseHead(json, weights.subarray(0, weights.length - 4))],
      ['extra bytes', () => deserialiseHead(withJson((j) => (j.byteLength += 4)), Buffer.concat([weights, Buffer.alloc(4)]))],
      ['NaN weight', () => deserialiseHead(json, nan)],
      ['not JSON', () => deserialiseHead('{"format": "lane-vis', weights)],
      ['wrong format', () => deserialiseHead(withJson((j) => ((j as { format: string }).format = 'keras')), weights)],
      ['newer version', () => deserialiseHead(withJson((j) => (j.version = 2)), weights)],
      ['shape disagrees with layer', () => deserialiseHead(withJson((j) => (j.layers![0].outputSize += 1)), weights)],
      ['unknown kind', () => deserialiseHead(withJson((j) => ((j as { kind: string }).kind = 'tree')), weights)],
      ['bad activation', () => deserialiseHead(withJson((j) => ((j.layers![0] as { activation: string }).activation = 'gelu')), weights)],
      ['missing array', () => deserialiseHead(withJson((j) => (j.tensors[1].name = 'other')), weights)],
      ['weights not binary', () => deserialiseHead(json, 'AAAA' as unknown as Buffer)],
    ];
    for (const [name, run] of cases) assert.throws(run, headInvalid, name);

    const knn = serialiseHead(heads.get('knn')!);
    const labelsAt = knn.json.tensors.slice(0, -1).reduce((sum, t) => sum + 4 * t.shape.reduce((a, b) => a * b, 1), 0);
    const badLabel = Buffer.from(knn.weights);
    badLabel.writeFloatLE(7, labelsAt); // class 7 of 3
    assert.throws(() => deserialiseHead(knn.json, badLabel), headInvalid);
    badLabel.writeFloatLE(0.5, labelsAt);
    assert.throws(() => deserialiseHead(knn.json, badLabel), headInvalid);
  });

  it('refuses to serialise an inconsistent head', () => {
    const head = heads.get('prototype')!;
    assert.throws(() => serialiseHead({ ...head, prototypes: head.prototypes!.subarray(1) }), headInvalid);
    assert.throws(() => serialiseHead({ ...head, classCount: 1 }), headInvalid);
  });
});
