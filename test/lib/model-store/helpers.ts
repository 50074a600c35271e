import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRandom, randomNormal } from '../../../src/random.js';
import type { HeadKind, TrainedHead } from '../../../src/training/types.js';
import type { BackboneDescriptor } from '../../../src/model-store/index.js';

export const FEATURE_SIZE = 16;

export const backbone: BackboneDescriptor = {
  id: 'test-backbone-16',
  source: '/nowhere/model.json',
  featureLayer: 'pool',
  featureSize: FEATURE_SIZE,
  inputSize: { width: 224, height: 224 },
  inputRange: '[-1,1]',
  fit: { kind: 'cover' },
};

export function tempStoreDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'models');
}

function randomArray(count: number, seed: number): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from({ length: count }, () => randomNormal(random));
}

/** A head of each kind with seeded random numbers (the store never looks at their meaning). */
export function makeHead(kind: HeadKind, classCount: number, seed = 1): TrainedHead {
  const base = { kind, featureSize: FEATURE_SIZE, classCount, normalise: kind !== 'mlp' };
  switch (kind) {
    case 'softmax':
      return {
        ...base,
        layers: [{ inputSize: FEATURE_SIZE, outputSize: classCount, kernel: randomArray(FEATURE_SIZE * classCount, seed), bias: randomArray(classCount, seed + 1), activation: 'softmax' }],
      };
    case 'mlp':
      return {
        ...base,
        layers: [
          { inputSize: FEATURE_SIZE, outputSize: 8, kernel: randomArray(FEATURE_SIZE * 8, seed), bias: randomArray(8, seed + 1), activation: 'relu' },
          { inputSize: 8, outputSize: classCount, kernel: randomArray(8 * classCount, seed + 2), bias: randomArray(classCount, seed + 3), activation: 'softmax' },
        ],
      };
    case 'prototype':
      return { ...base, temperature: 0.1, prototypes: randomArray(FEATURE_SIZE * classCount, seed) };
    case 'knn': {
      const count = classCount * 3;
      return {
        ...base,
        temperature: 0.05,
        examples: { features: randomArray(count * FEATURE_SIZE, seed), labels: Int32Array.from({ length: count }, (_, i) => i % classCount), k: 3 },
      };
    }
  }
}

/** A one-layer softmax head of `kind` for `featureSize` features (e.g. a real backbone's 1280), seeded random weights. */
export function makeHeadOfSize(kind: 'softmax' | 'logistic' | 'svm', classCount: number, featureSize: number, seed = 1): TrainedHead {
  return {
    kind,
    featureSize,
    classCount,
    normalise: true,
    layers: [{ inputSize: featureSize, outputSize: classCount, kernel: randomArray(featureSize * classCount, seed), bias: randomArray(classCount, seed + 1), activation: 'softmax' }],
  };
}
