/**
 * Linear heads fitted to convergence: multinomial logistic regression (L2, label
 * smoothing, class weights) and a linear SVM (multiclass squared hinge), both on
 * standardised features. An SVM's outputs are margins: softmax turns them into scores
 * that rank like probabilities, and the retrain pipeline calibrates every head's
 * sharpness on held-out frames (see src/pipeline). Measured on MobileNetV2 features of the grocery photos (photos of
 * another session): standardising each feature (z-score over the training frames) before
 * an L2-penalised fit gave 6 to 8 points over the Adam-trained softmax on unit vectors;
 * a fit run to convergence is the one whose result does not depend on a step size.
 *
 * The optimiser is L-BFGS, written here because tfjs has none (its optimisers are
 * first-order): it converges in about 40 iterations where Adam needs 300 steps for
 * the same solution. The loss and its gradient are closed-form products on tensors, kept
 * plain (no transposed operand, see dense.ts). The standardisation folds into the kernel
 * and bias afterwards, so the head is one dense softmax layer on unit vectors, like any
 * softmax head: prediction, storage and export do not change.
 */
import { tf } from '../engine/backend.js';
import type { TrainingControl } from './control.js';
import type { DenseLayerWeights, TrainingProgress } from './types.js';

export interface LinearTrainingInput {
  /** Row-major [count][featureSize], already normalised. */
  features: Float32Array;
  labels: Int32Array;
  featureSize: number;
  classCount: number;
  /** Per-example loss weight, summing to 1. */
  exampleWeights: Float32Array;
}

export interface LinearTrainingSettings {
  loss: 'logistic' | 'hinge';
  /** L2 penalty on the kernel, in standardised units. */
  weightDecay: number;
  /** logistic: share of each target spread over all classes. */
  labelSmoothing: number;
  /** L-BFGS iterations at most. */
  iterations: number;
  /**
   * A head of the same shape to start from (e.g. one fitted on most of the same frames).
   * The loss is strictly convex, so the fit converges to the same head from any start;
   * a near one only gets there in fewer iterations.
   */
  start?: DenseLayerWeights;
}

export interface LinearTrainingOutcome {
  layer: DenseLayerWeights;
  /** Penalised training loss at the end. */
  finalLoss: number;
  trainAccuracy: number;
  iterations: number;
}

/** Variance floor of a standardised feature: a constant feature stays (almost) zero, not a division by zero. */
const VARIANCE_FLOOR = 1e-6;
const HISTORY = 8;
/** Relative change of the loss below which the fit has converged. */
const TOLERANCE = 1e-5;

export async function trainLinearHead(input: LinearTrainingInput, settings: LinearTrainingSettings, control: TrainingControl): Promise<LinearTrainingOutcome> {
  const { featureSize, classCount, labels } = input;
  const count = labels.length;
  const kernelSize = featureSize * classCount;
  const size = kernelSize + classCount;
  const owned: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T): T => {
    owned.push(t);
    return t;
  };
  try {
    const raw = tf.tensor2d(input.features, [count, featureSize]);
    const { mean, variance } = tf.moments(raw, 0);
    const scale = keep(tf.tidy(() => tf.div(1, tf.sqrt(tf.add(variance, VARIANCE_FLOOR)))));
    keep(mean);
    const x = keep(tf.tidy(() => tf.mul(tf.sub(raw, mean), scale)));
    const xTransposed = keep(tf.transpose(x));
    tf.dispose([raw, variance]);
    const targets = keep(tf.tensor2d(smoothedTargets(labels, classCount, settings.loss === 'logistic' ? settings.labelSmoothing : 0), [count, classCount]));
    const oneHot = keep(tf.tensor2d(smoothedTargets(labels, classCount, 0), [count, classCount]));
    const rowWeights = keep(tf.tensor2d(input.exampleWeights, [count, 1]));
    const labelTensor = keep(tf.tensor1d(labels, 'int32'));

    /** Penalised loss and its gradient at `theta` = [kernel row-major, bias]. */
    const lossAndGradient = (theta: Float64Array): { loss: number; gradient: Float64Array; accuracy: number } => {
      const gradient = new Float64Array(size);
      let lossValue = 0;
      let accuracy = 0;
      // Results leave tidy through the closure (see tensorValues for why not as its return value).
      tf.tidy(() => {
        const kernel = tf.tensor2d(new Float32Array(theta.subarray(0, kernelSize)), [featureSize, classCount]);
        const bias = tf.tensor1d(new Float32Array(theta.subarray(kernelSize)));
        const logits = tf.add(tf.matMul(x, kernel), bias);
        let dataLoss: tf.Tensor;
        let gradLogits: tf.Tensor;
        if (settings.loss === 'logistic') {
          const logProbs = tf.logSoftmax(logits);
          dataLoss = tf.neg(tf.sum(tf.mul(tf.mul(targets, logProbs), rowWeights)));
          gradLogits = tf.mul(tf.sub(tf.exp(logProbs), targets), rowWeights);
        } else {
          // Squared hinge on every wrong class: max(0, 1 + s_c - s_y)^2 (Weston-Watkins form).
          const trueScore = tf.sum(tf.mul(logits, oneHot), 1, true);
          const margins = tf.relu(tf.sub(tf.add(logits, 1), tf.add(trueScore, oneHot)));
          dataLoss = tf.sum(tf.mul(tf.sum(tf.square(margins), 1, true), rowWeights));
          const wrong = tf.mul(tf.mul(margins, 2), rowWeights);
          gradLogits = tf.sub(wrong, tf.mul(oneHot, tf.sum(wrong, 1, true)));
        }
        const loss = tf.add(dataLoss, tf.mul(0.5 * settings.weightDecay, tf.sum(tf.square(kernel))));
        const gradKernel = tf.add(tf.matMul(xTransposed, gradLogits), tf.mul(kernel, settings.weightDecay));
        const right = tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labelTensor), 'float32'));
        lossValue = loss.dataSync()[0];
        accuracy = right.dataSync()[0];
        gradient.set(gradKernel.dataSync());
        gradient.set(tf.sum(gradLogits, 0).dataSync(), kernelSize);
      });
      return { loss: lossValue, gradient, accuracy };
    };

    const meanValues = mean.dataSync();
    const scaleValues = scale.dataSync();
    const start = new Float64Array(size);
    if (settings.start) {
      // Unfold a head on unit vectors into this fit's standardised units: w = w' / scale, b = b' + sum_i mean_i * w'_i.
      const { kernel, bias } = settings.start;
      for (let c = 0; c < classCount; c++) start[kernelSize + c] = bias[c];
      for (let i = 0; i < featureSize; i++) {
        for (let c = 0; c < classCount; c++) {
          start[i * classCount + c] = kernel[i * classCount + c] / scaleValues[i];
          start[kernelSize + c] += meanValues[i] * kernel[i * classCount + c];
        }
      }
    }
    const result = await minimiseLbfgs(start, lossAndGradient, settings.iterations, control);

    // Fold the standardisation in: w' = w * scale, b' = b - sum_i mean_i * scale_i * w_i.
    const kernel = new Float32Array(kernelSize);
    const bias = new Float64Array(classCount);
    for (let c = 0; c < classCount; c++) bias[c] = result.theta[kernelSize + c];
    for (let i = 0; i < featureSize; i++) {
      for (let c = 0; c < classCount; c++) {
        const w = result.theta[i * classCount + c] * scaleValues[i];
        kernel[i * classCount + c] = w;
        bias[c] -= meanValues[i] * w;
      }
    }
    return {
      layer: { inputSize: featureSize, outputSize: classCount, activation: 'softmax', kernel, bias: Float32Array.from(bias) },
      finalLoss: result.loss,
      trainAccuracy: result.accuracy,
      iterations: result.iterations,
    };
  } finally {
    tf.dispose(owned);
  }
}

function smoothedTargets(labels: Int32Array, classCount: number, smoothing: number): Float32Array {
  const out = new Float32Array(labels.length * classCount).fill(smoothing / classCount);
  labels.forEach((label, i) => (out[i * classCount + label] += 1 - smoothing));
  return out;
}

interface Minimum {
  theta: Float64Array;
  loss: number;
  accuracy: number;
  iterations: number;
}

/** The last steps and gradient changes, for the two-loop recursion. */
interface LbfgsHistory {
  steps: Float64Array[];
  changes: Float64Array[];
  inverseCurvatures: number[];
}

/**
 * L-BFGS (two-loop recursion) with a backtracking Armijo line search. The vector work is
 * in small synchronous functions: V8 optimises those, not loops inside an async function.
 */
async function minimiseLbfgs(
  start: Float64Array,
  evaluate: (theta: Float64Array) => { loss: number; gradient: Float64Array; accuracy: number },
  maxIterations: number,
  control: TrainingControl,
): Promise<Minimum> {
  let theta = start;
  let current = evaluate(theta);
  const history: LbfgsHistory = { steps: [], changes: [], inverseCurvatures: [] };
  let iterations = 0;
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    iterations = iteration;
    const direction = searchDirection(current.gradient, history);
    const slope = -dot(current.gradient, direction);
    if (!(slope < 0)) break; // not a descent direction: at the minimum, to float precision
    let stepSize = 1;
    let candidate = stepped(theta, direction, stepSize);
    let next = evaluate(candidate);
    while (next.loss > current.loss + 1e-4 * stepSize * slope && stepSize >= 1e-10) {
      stepSize /= 2;
      candidate = stepped(theta, direction, stepSize);
      next = evaluate(candidate);
    }
    remember(history, difference(candidate, theta), difference(next.gradient, current.gradient));
    // Relative: a hinge loss ends far below 1.
    const converged = Math.abs(current.loss - next.loss) <= TOLERANCE * Math.abs(current.loss);
    theta = candidate;
    current = next;
    if (control.progressDue(iteration, maxIterations) || converged) {
      control.emitProgress({ epoch: iteration, epochs: maxIterations, loss: current.loss, accuracy: current.accuracy } satisfies TrainingProgress);
    }
    await control.breathe();
    if (converged) break;
  }
  return { theta, loss: current.loss, accuracy: current.accuracy, iterations };
}

/** H * gradient, H the inverse-Hessian estimate of the history (descend along minus it). */
function searchDirection(gradient: Float64Array, history: LbfgsHistory): Float64Array {
  const { steps, changes, inverseCurvatures } = history;
  const direction = gradient.slice();
  const alphas = new Float64Array(steps.length);
  for (let k = steps.length - 1; k >= 0; k--) {
    alphas[k] = inverseCurvatures[k] * dot(steps[k], direction);
    axpy(-alphas[k], changes[k], direction);
  }
  const last = steps.length - 1;
  const gamma = last >= 0 ? dot(steps[last], changes[last]) / dot(changes[last], changes[last]) : 1 / Math.sqrt(dot(gradient, gradient) || 1);
  scaleInPlace(direction, gamma);
  for (let k = 0; k < steps.length; k++) axpy(alphas[k] - inverseCurvatures[k] * dot(changes[k], direction), steps[k], direction);
  return direction;
}

function remember(history: LbfgsHistory, step: Float64Array, change: Float64Array): void {
  const curvature = dot(step, change);
  if (!(curvature > 1e-12)) return; // keeps the estimate positive definite
  history.steps.push(step);
  history.changes.push(change);
  history.inverseCurvatures.push(1 / curvature);
  if (history.steps.length > HISTORY) {
    history.steps.shift();
    history.changes.shift();
    history.inverseCurvatures.shift();
  }
}

/** theta - size * direction */
function stepped(theta: Float64Array, direction: Float64Array, size: number): Float64Array {
  const out = theta.slice();
  axpy(-size, direction, out);
  return out;
}

function difference(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] - b[i];
  return out;
}

function scaleInPlace(values: Float64Array, factor: number): void {
  for (let i = 0; i < values.length; i++) values[i] *= factor;
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** y += a * x */
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}
