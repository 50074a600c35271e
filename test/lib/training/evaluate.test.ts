import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initBackend } from '../../../src/engine/backend.js';
import { isLaneVisionError } from '../../../src/errors.js';
import {
  createRandom,
  crossValidateHead,
  evaluateHead,
  metricsFromPredictions,
  shuffleInPlace,
  stratifiedFolds,
  stratifiedSplit,
  thresholdForPrecision,
  type TrainedHead,
} from '../../../src/training/index.js';
import { makeCentres, sampleClusters } from './synthetic.js';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);

describe('random', () => {
  it('repeats per seed, stays in [0, 1), and shuffles into a permutation', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    const c = createRandom(43);
    const seqA = Array.from({ length: 1000 }, () => a());
    assert.deepEqual(seqA, Array.from({ length: 1000 }, () => b()));
    assert.notDeepEqual(seqA, Array.from({ length: 1000 }, () => c()));
    assert.ok(seqA.every((v) => v >= 0 && v < 1));
    const mean = seqA.reduce((s, v) => s + v, 0) / seqA.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);

    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = shuffleInPlace([...items], createRandom(1));
    assert.notDeepEqual(shuffled, items);
    assert.deepEqual([...shuffled].sort((x, y) => x - y), items);
    assert.deepEqual(shuffleInPlace([...items], createRandom(1)), shuffled);
  });
});

describe('metrics', () => {
  // Hand-checked case (rows = true class, columns = predicted):
  //   true 0: [3, 1, 0]  support 4
  //   true 1: [0, 2, 0]  support 2
  //   true 2: [2, 0, 3]  support 5
  const labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2];
  const predicted = [0, 0, 0, 1, 1, 1, 2, 2, 0, 0, 2];
  const names = ['Arla', 'Valio', 'Yoggi'];
  const expected = {
    accuracy: 8 / 11,
    confusion: [
      [3, 1, 0],
      [0, 2, 0],
      [2, 0, 3],
    ],
    perClass: [
      { label: 'Arla', precision: 3 / 5, recall: 3 / 4, f1: (2 * (3 / 5) * (3 / 4)) / (3 / 5 + 3 / 4), support: 4 },
      { label: 'Valio', precision: 2 / 3, recall: 1, f1: (2 * (2 / 3)) / (2 / 3 + 1), support: 2 },
      { label: 'Yoggi', precision: 1, recall: 3 / 5, f1: (2 * (3 / 5)) / (1 + 3 / 5), support: 5 },
    ],
  };

  const check = (metrics: ReturnType<typeof metricsFromPredictions>) => {
    close(metrics.accuracy, expected.accuracy, 'accuracy');
    assert.deepEqual(metrics.confusion, expected.confusion);
    assert.equal(metrics.count, 11);
    metrics.perClass.forEach((m, c) => {
      const e = expected.perClass[c];
      assert.equal(m.label, e.label);
      assert.equal(m.support, e.support);
      close(m.precision, e.precision, `${e.label} precision`);
      close(m.recall, e.recall, `${e.label} recall`);
      close(m.f1, e.f1, `${e.label} f1`);
    });
    close(metrics.macroF1, expected.perClass.reduce((s, m) => s + m.f1, 0) / 3, 'macro F1');
  };

  it('computes accuracy, per-class precision/recall/F1 and the confusion matrix', () => {
    check(metricsFromPredictions(predicted, labels, names));
  });

  it('evaluateHead runs the head and gives the same metrics', () => {
    // Prototypes on the axes: a feature on axis p is predicted as class p.
    const head: TrainedHead = {
      kind: 'prototype',
      featureSize: 3,
      classCount: 3,
      normalise: true,
      prototypes: Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]),
      temperature: 0.1,
    };
    const features = predicted.map((p) => Float32Array.from([0, 1, 2], (axis) => (axis === p ? 2 : 0.1)));
    check(evaluateHead(head, features, labels, names));
    assert.throws(() => evaluateHead(head, features, labels, ['a', 'b']), (e) => isLaneVisionError(e, 'EVALUATION_INPUT_INVALID'));
  });

  it('gives a class missing from the evaluated set zeros and leaves it out of macro F1', () => {
    const metrics = metricsFromPredictions([0, 1, 1], [0, 1, 0], ['a', 'b', 'absent']);
    assert.deepEqual(metrics.perClass[2], { label: 'absent', precision: 0, recall: 0, f1: 0, support: 0 });
    close(metrics.macroF1, (2 / 3 + 2 / 3) / 2, 'macro F1'); // a: P 1 R .5; b: P .5 R 1
    assert.throws(() => metricsFromPredictions([0, 3], [0, 1], ['a', 'b']), (e) => isLaneVisionError(e, 'EVALUATION_INPUT_INVALID'));
  });
});

describe('thresholdForPrecision', () => {
  /** Three-class probabilities whose top class has `confidence` and is right or wrong. */
  const frames = (spec: [number, boolean][]) => {
    const labels = spec.map((_, i) => i % 3);
    const probabilities = spec.map(([confidence, correct], i) => {
      const top = correct ? labels[i] : (labels[i] + 1) % 3;
      return Float32Array.from([0, 1, 2], (c) => (c === top ? confidence : (1 - confidence) / 2));
    });
    return { probabilities, labels };
  };
  // Precision of the k most confident: 1, 1, 2/3, 3/4, 4/5, 4/6, 4/7, 5/8.
  const { probabilities, labels } = frames([
    [0.95, true],
    [0.9, true],
    [0.85, false],
    [0.8, true],
    [0.7, true],
    [0.6, false],
    [0.5, false],
    [0.4, true],
  ]);

  it('finds the lowest threshold reaching the target and what it rejects', () => {
    const at80 = thresholdForPrecision(probabilities, labels, 0.8);
    assert.equal(at80.reached, true);
    close(at80.threshold!, Math.fround(0.7), 'threshold');
    close(at80.rejectedShare, 3 / 8, 'rejected');
    close(at80.precision!, 4 / 5, 'precision');
    assert.equal(at80.acceptedCount, 5);
    assert.equal(at80.count, 8);

    // 3/4 is reached at 0.8 already, but 0.7 reaches it too and rejects less.
    close(thresholdForPrecision(probabilities, labels, 0.75).threshold!, Math.fround(0.7), 'threshold at 75%');
    const at90 = thresholdForPrecision(probabilities, labels, 0.9);
    close(at90.threshold!, Math.fround(0.9), 'threshold at 90%');
    close(at90.rejectedShare, 6 / 8, 'rejected at 90%');
    assert.equal(thresholdForPrecision(probabilities, labels, 1).acceptedCount, 2);

    const acceptAll = thresholdForPrecision(probabilities, labels, 0.6);
    assert.equal(acceptAll.threshold, 0);
    assert.equal(acceptAll.rejectedShare, 0);
    close(acceptAll.precision!, 5 / 8, 'precision of all');
  });

  it('keeps equal confidences together and says when the target is out of reach', () => {
    const tied = frames([
      [0.9, true],
      [0.8, true],
      [0.8, false],
      [0.4, false],
    ]);
    const perfect = thresholdForPrecision(tied.probabilities, tied.labels, 1);
    close(perfect.threshold!, Math.fround(0.9), 'tie excluded');
    assert.equal(perfect.acceptedCount, 1);
    assert.equal(thresholdForPrecision(tied.probabilities, tied.labels, 0.66).acceptedCount, 3);

    const hopeless = frames([
      [0.9, false],
      [0.5, true],
    ]);
    const result = thresholdForPrecision(hopeless.probabilities, hopeless.labels, 0.6);
    assert.equal(result.reached, false);
    assert.equal(result.threshold, null);
    assert.equal(result.rejectedShare, 1);
    for (const bad of [0, 1.5, NaN]) {
      assert.throws(() => thresholdForPrecision(probabilities, labels, bad), (e) => isLaneVisionError(e, 'EVALUATION_INPUT_INVALID'));
    }
  });
});

describe('stratified splits', () => {
  const labels = [...Array(10).fill(0), ...Array(5).fill(1), ...Array(2).fill(2), 3];
  const countOf = (indices: number[], cls: number) => indices.filter((i) => labels[i] === cls).length;

  it('hold-out keeps class proportions, covers every example once, and repeats per seed', () => {
    const split = stratifiedSplit(labels, { testFraction: 0.2, seed: 3 });
    assert.deepEqual([...split.train, ...split.test].sort((a, b) => a - b), labels.map((_, i) => i));
    assert.deepEqual([0, 1, 2, 3].map((c) => countOf(split.test, c)), [2, 1, 1, 0]);
    assert.deepEqual(stratifiedSplit(labels, { testFraction: 0.2, seed: 3 }), split);
    const others = [4, 5, 6, 7].map((seed) => stratifiedSplit(labels, { testFraction: 0.2, seed }).test.join());
    assert.ok(others.some((t) => t !== split.test.join()), 'another seed picks other examples');
    assert.throws(() => stratifiedSplit(labels, { testFraction: 1 }), (e) => isLaneVisionError(e, 'EVALUATION_INPUT_INVALID'));
  });

  it('k-fold puts every example in exactly one test fold with balanced classes', () => {
    const folds = stratifiedFolds(labels, { folds: 5, seed: 9 });
    assert.equal(folds.length, 5);
    const seen = folds.flatMap((f) => f.test).sort((a, b) => a - b);
    assert.deepEqual(seen, labels.map((_, i) => i));
    for (const fold of folds) {
      assert.deepEqual([...fold.train, ...fold.test].sort((a, b) => a - b), labels.map((_, i) => i));
      assert.equal(countOf(fold.test, 0), 2);
      assert.equal(countOf(fold.test, 1), 1);
    }
    const sizes = folds.map((f) => f.test.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fold sizes ${sizes}`);
    assert.deepEqual(stratifiedFolds(labels, { folds: 5, seed: 9 }), folds);
    assert.throws(() => stratifiedFolds(labels, { folds: 1 }), (e) => isLaneVisionError(e, 'EVALUATION_INPUT_INVALID'));
  });

  it('cross-validates a head on examples each fold did not train on', async () => {
    await initBackend();
    const data = sampleClusters(makeCentres(3, 16, 8), 10, 0.3, 8);
    const result = await crossValidateHead({ ...data, labelNames: ['a', 'b', 'c'] }, { kind: 'softmax' }, { folds: 5 });
    assert.equal(result.folds, 5);
    assert.equal(result.probabilities.length, 30);
    assert.ok(result.metrics.accuracy >= 0.95, `accuracy ${result.metrics.accuracy}`);
    assert.deepEqual(result.metrics.perClass.map((m) => m.support), [10, 10, 10]);
    const lonely = { features: data.features.slice(0, 21), labels: data.labels.slice(0, 21), classCount: 3 };
    await assert.rejects(crossValidateHead(lonely, { kind: 'softmax' }), (e) => isLaneVisionError(e, 'TRAINING_DATA_INVALID'));
  });
});
