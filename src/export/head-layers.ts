/**
 * A trained head as the few operations an exported graph needs after the backbone's
 * feature vector: an optional L2 normalisation, then dense layers (the last one softmax).
 * Every head kind predictHead runs is written this way except knn, whose stored examples
 * and vote are no fixed-size layer; the logistic / svm heads' standardisation is already
 * folded into their stored kernel and bias (see src/training/linear.ts).
 */
import { LaneVisionError } from '../errors.js';
import type { DenseLayerWeights, TrainedHead } from '../training/types.js';

export interface ExportHeadLayers {
  /** Divide the features by their L2 norm first (predictHead's `normalise`). */
  normalise: boolean;
  /** Row-major [inputSize][outputSize] kernels; the last layer ends in softmax. */
  layers: DenseLayerWeights[];
}

export function headLayers(head: TrainedHead): ExportHeadLayers {
  switch (head.kind) {
    case 'softmax':
    case 'mlp':
    case 'logistic':
    case 'svm': {
      const layers = head.layers ?? [];
      if (layers.length === 0 || layers[layers.length - 1].activation !== 'softmax') {
        throw new LaneVisionError('EXPORT_UNSUPPORTED', `This ${head.kind} head does not end in a softmax layer; it cannot be exported as probabilities`);
      }
      return { normalise: head.normalise, layers };
    }
    case 'prototype': {
      // softmax(x . p_c / T): one dense layer with the prototypes, transposed and scaled, as kernel.
      const { classCount: classes, featureSize: size } = head;
      const prototypes = head.prototypes as Float32Array;
      const temperature = head.temperature ?? 1;
      const kernel = new Float32Array(size * classes);
      for (let c = 0; c < classes; c++) for (let i = 0; i < size; i++) kernel[i * classes + c] = prototypes[c * size + i] / temperature;
      return { normalise: head.normalise, layers: [{ inputSize: size, outputSize: classes, kernel, bias: new Float32Array(classes), activation: 'softmax' }] };
    }
    case 'knn':
      throw new LaneVisionError(
        'EXPORT_UNSUPPORTED',
        'A knn head votes among its stored training frames, which no fixed graph layer expresses; retrain the version with a logistic, svm, softmax, mlp or prototype head to export it',
      );
    default:
      throw new LaneVisionError('EXPORT_UNSUPPORTED', `Unknown head kind "${String(head.kind)}"`);
  }
}
