import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND_ORDER, initBackend, parseBackendPreference, tf } from '../../../src/engine/backend.js';
import { isLaneVisionError } from '../../../src/errors.js';

test('auto picks the first backend that starts and says why the others were skipped', async () => {
  const info = await initBackend('auto');
  assert.equal(tf.getBackend(), info.name);
  const position = BACKEND_ORDER.indexOf(info.name);
  assert.deepEqual(
    info.skipped.map((s) => s.name),
    BACKEND_ORDER.slice(0, position),
  );
  for (const skipped of info.skipped) assert.ok(skipped.reason.length > 10, skipped.reason);
  // Without tfjs-node installed (as on CI) the WebAssembly backend must be chosen, not cpu.
  let tfjsNodeInstalled = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    tfjsNodeInstalled = false;
  }
  if (!tfjsNodeInstalled) {
    assert.equal(info.name, 'wasm');
    assert.match(info.skipped[0].reason, /not installed/);
  }
});

test('a named backend is used, and auto then keeps it', async () => {
  const cpu = await initBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
  assert.equal((await initBackend('auto')).name, 'cpu');
  const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync());
  assert.deepEqual(Array.from(sum), [4, 6]);
  const wasm = await initBackend('wasm');
  assert.equal(wasm.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
});

test('strict refuses a backend that cannot start instead of falling back', async (t) => {
  try {
    require.resolve('@tensorflow/tfjs-node');
    t.skip('tfjs-node is installed here');
    return;
  } catch {
    // expected on machines where its install script failed
  }
  await assert.rejects(initBackend('tensorflow', { strict: true }), (err) => isLaneVisionError(err, 'BACKEND_UNAVAILABLE'));
  const fallback = await initBackend('tensorflow');
  assert.equal(fallback.name, 'wasm');
  assert.equal(fallback.preference, 'tensorflow');
});

test('preferences parse from settings and env-like strings', () => {
  assert.equal(parseBackendPreference(undefined), 'auto');
  assert.equal(parseBackendPreference(' WASM '), 'wasm');
  assert.equal(parseBackendPreference('tfjs-node'), 'tensorflow');
  assert.throws(() => parseBackendPreference('gpu'), (err) => isLaneVisionError(err, 'BACKEND_UNKNOWN'));
});

test('concurrent initialisation settles on one backend', async () => {
  const results = await Promise.all([initBackend('wasm'), initBackend('auto'), initBackend('auto')]);
  assert.ok(results.every((r) => r.name === 'wasm'));
});
