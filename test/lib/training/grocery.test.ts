/**
 * Real data: MobileNetV2-0.35 features of the shared grocery photos, heads trained on
 * train/ and scored on val/ (photos they never saw). Floors sit a few points below a
 * measured run, so a regression in features, preparation or training shows up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { acquireBackbone, type Backbone, tf } from '../../../src/engine/index.js';
import { prepareImage } from '../../../src/image/index.js';
import {
  evaluateHead,
  predictHeadBatch,
  thresholdForPrecision,
  trainHead,
  type HeadKind,
} from '../../../src/training/index.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, modelDir, YOGHURT_CLASSES } from '../../support/shared.js';

interface Example {
  className: string;
  feature: Float32Array;
}

const BATCH = 16;

async function extract(backbone: Backbone, splitDir: string, classes: readonly string[]): Promise<Example[]> {
  const files = classes.flatMap((className) => classImages(splitDir, className).map((file) => ({ file, className })));
  const examples: Example[] = [];
  for (let start = 0; start < files.length; start += BATCH) {
    const batch = files.slice(start, start + BATCH);
    const frames = await Promise.all(
      batch.map(({ file }) => prepareImage(file, { ...backbone.inputSize, fit: backbone.fit })),
    );
    const features = await backbone.engine.features(frames);
    batch.forEach(({ className }, i) => examples.push({ className, feature: features[i] }));
  }
  return examples;
}

function asData(examples: readonly Example[], classes: readonly string[]) {
  const kept = examples.filter((e) => classes.includes(e.className));
  return {
    features: kept.map((e) => e.feature),
    labels: kept.map((e) => classes.indexOf(e.className)),
    classCount: classes.length,
    labelNames: classes,
  };
}

describe('heads on real grocery photos (mobilenet-v2-0.35-features)', () => {
  const valClasses = classNames(groceryValDir); // the 20 classes val/ has
  let backbone: Backbone;
  let train: Example[];
  let val: Example[];

  before(async () => {
    backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
    const trainClasses = [...new Set([...valClasses, ...YOGHURT_CLASSES])];
    const started = performance.now();
    train = await extract(backbone, groceryTrainDir, trainClasses);
    val = await extract(backbone, groceryValDir, valClasses);
    console.log(
      `features: ${train.length} train + ${val.length} val photos on ${backbone.backend.name} in ${(performance.now() - started).toFixed(0)} ms`,
    );
  });

  after(() => backbone?.release());

  const cases: { name: string; classes: () => readonly string[]; floors: Record<'softmax' | 'prototype', number> }[] = [
    { name: 'the 20 classes in val/', classes: () => valClasses, floors: { softmax: 0.5, prototype: 0.36 } },
    { name: 'the 6 yoghurt kinds', classes: () => YOGHURT_CLASSES, floors: { softmax: 0.35, prototype: 0.3 } },
  ];

  for (const { name, classes, floors } of cases) {
    for (const kind of ['softmax', 'prototype'] as const satisfies readonly HeadKind[]) {
      it(`${kind} head on ${name} scores at least ${floors[kind]} on val/`, async () => {
        const names = classes();
        const trainData = asData(train, names);
        const valData = asData(val, names);
        assert.ok(valData.features.length >= 20, `${valData.features.length} val photos`);
        const tensorsBefore = tf.memory().numTensors;
        const result = await trainHead(trainData, { kind, seed: 1 });
        assert.equal(tf.memory().numTensors, tensorsBefore);
        const metrics = evaluateHead(result.head, valData.features, valData.labels, names);
        const threshold = thresholdForPrecision(predictHeadBatch(result.head, valData.features), valData.labels, 0.9);
        console.log(
          `${kind} on ${name}: ${trainData.features.length} train photos, trained in ${result.ms.toFixed(0)} ms ` +
            `(train accuracy ${result.trainAccuracy.toFixed(3)}); val accuracy ${metrics.accuracy.toFixed(3)} ` +
            `(${metrics.count} photos), macro F1 ${metrics.macroF1.toFixed(3)}; ` +
            `90% precision: threshold ${threshold.threshold?.toFixed(3) ?? 'unreachable'}, rejects ${(threshold.rejectedShare * 100).toFixed(0)}%`,
        );
        assert.ok(metrics.accuracy >= floors[kind], `val accuracy ${metrics.accuracy} below floor ${floors[kind]}`);
      });
    }
  }
});
