/**
 * ONNX Runtime session settings chosen from the machine: half the cores run the model
 * (1 to 4), the rest decode; the environment variable and the option still win.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { ONNX_THREADS_ENV_VAR, onnxSessionOptions, onnxThreadsForMachine, resolveOnnxThreads } from '../../../src/engine/onnx/index.js';
import { isLaneVisionError } from '../../../src/errors.js';

test('intra-op threads are half the cores, at least 1 and at most 4', () => {
  const byCores = Object.fromEntries([1, 2, 3, 4, 6, 8, 16, 64].map((cores) => [cores, onnxThreadsForMachine(cores)]));
  assert.deepEqual(byCores, { 1: 1, 2: 1, 3: 1, 4: 2, 6: 3, 8: 4, 16: 4, 64: 4 });
  assert.equal(onnxThreadsForMachine(), onnxThreadsForMachine(os.availableParallelism()), 'the default reads this machine');
});

test('the option, then LANE_VISION_ONNX_THREADS, then the machine decide; bad counts are refused', (t) => {
  const saved = process.env[ONNX_THREADS_ENV_VAR];
  t.after(() => {
    if (saved === undefined) delete process.env[ONNX_THREADS_ENV_VAR];
    else process.env[ONNX_THREADS_ENV_VAR] = saved;
  });
  delete process.env[ONNX_THREADS_ENV_VAR];
  assert.equal(resolveOnnxThreads(), onnxThreadsForMachine());
  process.env[ONNX_THREADS_ENV_VAR] = '3';
  assert.equal(resolveOnnxThreads(), 3);
  assert.equal(resolveOnnxThreads(2), 2);
  process.env[ONNX_THREADS_ENV_VAR] = 'many';
  assert.throws(() => resolveOnnxThreads(), (err) => isLaneVisionError(err, 'ENGINE_THREADS_INVALID'));
});

test('sessions run sequentially on one inter-op thread with every graph optimisation', () => {
  assert.deepEqual(onnxSessionOptions(2), {
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
  });
});
