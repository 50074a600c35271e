/**
 * Runs a TopGraph with tf ops that have gradients on every tfjs backend (wasm has none for
 * conv2d / depthwiseConv2d): a 1x1 convolution is a matmul over the pixels, a 3x3 depthwise
 * convolution the sum of nine shifted slices of the padded input, each times its tap.
 */
import { tf } from '../engine/backend.js';
import type { Activation, TopGraph } from './top-graph.js';

/** The top's weights by manifest name: trainable variables, or fixed tensors to run with. */
export type TopParams = ReadonlyMap<string, tf.Tensor>;

function activate(x: tf.Tensor, activation: Activation): tf.Tensor {
  if (activation === 'relu') return tf.relu(x);
  if (activation === 'relu6') return tf.relu6(x);
  return x;
}

function pointwise(x: tf.Tensor4D, kernel: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const cout = kernel.shape[kernel.shape.length - 1];
  let y = tf.matMul(tf.reshape(x, [n * h * w, c]), tf.reshape(kernel, [c, cout]));
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, [n, h, w, cout]);
}

function depthwise3x3(x: tf.Tensor4D, kernel: tf.Tensor, bias: tf.Tensor | undefined): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const taps = tf.reshape(kernel, [9, c]);
  let sum: tf.Tensor | undefined;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const tap = tf.slice(taps, [i * 3 + j, 0], [1, c]);
      const term = tf.mul(tf.slice(padded, [0, i, j, 0], [n, h, w, c]), tap);
      sum = sum ? tf.add(sum, term) : term;
    }
  }
  return (bias ? tf.add(sum!, bias) : sum!) as tf.Tensor4D;
}

/**
 * The top's output (the feature vector, [batch, features]) for cut activations [batch, h, w, c].
 * `params` holds the trainable weights by manifest name; call inside tf.tidy / variableGrads.
 */
export function runTop(top: TopGraph, params: TopParams, cut: tf.Tensor4D): tf.Tensor2D {
  const values = new Map<string, tf.Tensor>([[top.cut, cut]]);
  let last: tf.Tensor = cut;
  const input = (name: string) => {
    const v = values.get(name);
    if (!v) throw new Error(`fine-tuning: ${name} is used before it is computed`);
    return v;
  };
  for (const op of top.ops) {
    let out: tf.Tensor;
    switch (op.kind) {
      case 'pointwise':
        out = activate(pointwise(input(op.inputs[0]) as tf.Tensor4D, params.get(op.kernel)!, op.bias ? params.get(op.bias) : undefined), op.activation);
        break;
      case 'depthwise':
        out = activate(depthwise3x3(input(op.inputs[0]) as tf.Tensor4D, params.get(op.kernel)!, op.bias ? params.get(op.bias) : undefined), op.activation);
        break;
      case 'batchnorm':
        out = tf.add(tf.mul(input(op.inputs[0]), tf.tensor1d(op.scale)), tf.tensor1d(op.shift));
        break;
      case 'activation':
        out = activate(input(op.inputs[0]), op.activation);
        break;
      case 'add':
        out = tf.addN(op.inputs.map(input));
        break;
      case 'pool':
        out = tf.mean(input(op.inputs[0]), [1, 2]);
        break;
      case 'identity':
        out = input(op.inputs[0]);
        break;
    }
    values.set(op.name, out);
    last = out;
  }
  return (last.rank === 4 ? tf.mean(last, [1, 2]) : tf.reshape(last, [last.shape[0], -1])) as tf.Tensor2D;
}

/** Trainable variables holding the top's current weights (pretrained at first). */
export function topVariables(top: TopGraph): Map<string, tf.Variable> {
  // tidy disposes the initial value tensors; variables outlive it.
  return new Map([...top.weights].map(([name, w]) => [name, tf.tidy(() => tf.variable(tf.tensor(w.values, w.shape), true, `finetune/${name}/${Math.random().toString(36).slice(2)}`))]));
}

/** The top's feature vectors for cut activations ([h, w, c] flattened each), with `weights` (by manifest name) in place of the pretrained ones. */
export async function topFeatures(top: TopGraph, weights: ReadonlyMap<string, Float32Array>, activations: readonly Float32Array[], batchSize = 64): Promise<Float32Array[]> {
  const [h, w, c] = top.cutShape;
  const params = new Map([...top.weights].map(([name, pretrained]) => [name, tf.tensor(weights.get(name) ?? pretrained.values, pretrained.shape)]));
  const out: Float32Array[] = [];
  try {
    for (let start = 0; start < activations.length; start += batchSize) {
      const batch = activations.slice(start, start + batchSize);
      const data = new Float32Array(batch.length * h * w * c);
      batch.forEach((a, i) => data.set(a, i * h * w * c));
      const values = tf.tidy(() => runTop(top, params, tf.tensor4d(data, [batch.length, h, w, c])).dataSync() as Float32Array);
      const size = values.length / batch.length;
      for (let i = 0; i < batch.length; i++) out.push(values.slice(i * size, (i + 1) * size));
      // Let cancellation and progress messages through between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    for (const t of params.values()) t.dispose();
  }
  return out;
}
