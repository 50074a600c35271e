import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheFolderFor, defaultCacheDir, initBackend, loadBackbone, resolveModelJsonUrl } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { type ModelServer, startModelServer } from './model-server.js';
import { type Photo, valPhotos } from './photos.js';

let server: ModelServer;
let scratch: string;
let photos: Photo[];

before(async () => {
  await initBackend();
  server = await startModelServer();
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-url-'));
  photos = (await valPhotos({ width: 224, height: 224 }, 1)).slice(0, 2);
});

after(async () => {
  await server.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

let cacheCount = 0;
async function freshCache(): Promise<string> {
  const dir = path.join(scratch, `cache-${++cacheCount}`);
  await fs.mkdir(dir);
  return dir;
}

async function featuresOf(source: string, cacheDir?: string): Promise<{ id: string; features: Float32Array[]; location: string }> {
  const backbone = await loadBackbone(source, { cacheDir });
  try {
    return { id: backbone.id, features: await backbone.engine.features(photos), location: backbone.location };
  } finally {
    backbone.release();
  }
}

/** Everything in a cache folder, ignoring nothing: a failed download must leave no trace. */
async function listCache(dir: string): Promise<string[]> {
  return (await fs.readdir(dir, { recursive: true })).map(String).sort();
}

for (const model of ['mobilenet-v1-0.25-imagenet', 'mobilenet-v1-1.0-features', 'mobilenet-v1-0.25-imagenet-graph']) {
  test(`${model} from a URL gives the folder's features, then loads from the cache with the server gone`, async () => {
    const cacheDir = await freshCache();
    const url = `${server.origin}/ok/${model}/model.json`;
    const fromFolder = await featuresOf(modelDir(model));
    const fromUrl = await featuresOf(url, cacheDir);
    assert.deepEqual(fromUrl.features, fromFolder.features);
    assert.equal(fromUrl.location, cacheFolderFor(url, cacheDir));
    const cached = await listCache(fromUrl.location);
    for (const file of await fs.readdir(modelDir(model))) assert.ok(cached.includes(file), `${file} cached`);
    assert.ok(cached.includes('lane-vision-source.json'));

    // Second load: no request reaches the network at all.
    const requestsBefore = server.requests.length;
    const again = await featuresOf(url, cacheDir);
    assert.equal(server.requests.length, requestsBefore);
    assert.equal(again.id, fromUrl.id);
    assert.deepEqual(again.features, fromUrl.features);

    // An air-gapped machine: the cache folder copied into its own cache; still no request.
    const otherMachine = await freshCache();
    await fs.cp(fromUrl.location, path.join(otherMachine, path.basename(fromUrl.location)), { recursive: true });
    const offline = await featuresOf(url, otherMachine);
    assert.equal(server.requests.length, requestsBefore);
    assert.deepEqual(offline.features, fromUrl.features);
  });
}

test('the cache survives the server going away', async () => {
  const local = await startModelServer();
  const cacheDir = await freshCache();
  const url = `${local.origin}/ok/mobilenet-v2-0.35-features/`; // a folder URL
  const online = await featuresOf(url, cacheDir);
  await local.close();
  const offline = await featuresOf(url, cacheDir);
  assert.deepEqual(offline.features, online.features);
  // ...while a fresh cache cannot reach it: MODEL_OFFLINE says what to do.
  await assert.rejects(loadBackbone(url, { cacheDir: await freshCache() }), (err) => {
    assert.ok(isLaneVisionError(err, 'MODEL_OFFLINE'), String(err));
    assert.match(err.message, /copy the model folder/i);
    return true;
  });
});

test('a damaged cached copy is reported with the folder to delete', async () => {
  const cacheDir = await freshCache();
  const url = `${server.origin}/ok/mobilenet-v1-1.0-features/model.json`;
  const { location } = await featuresOf(url, cacheDir);
  const shard = path.join(location, 'group1-shard1of1.bin');
  await fs.truncate(shard, 1000);
  await assert.rejects(loadBackbone(url, { cacheDir }), (err) => {
    assert.ok(isLaneVisionError(err, 'MODEL_TRUNCATED'), String(err));
    assert.ok(err.message.includes(location) && /delete that folder/.test(err.message), err.message);
    return true;
  });
});

test('TF Hub style URLs keep ?tfjs-format=file on every file', async () => {
  const cacheDir = await freshCache();
  const url = `${server.origin}/hub/mobilenet-v1-0.25-imagenet-graph/model.json?tfjs-format=file`;
  const hub = await featuresOf(url, cacheDir);
  const folder = await featuresOf(modelDir('mobilenet-v1-0.25-imagenet-graph'));
  assert.deepEqual(hub.features, folder.features);
  assert.ok(server.requests.includes('/hub/mobilenet-v1-0.25-imagenet-graph/group1-shard1of1.bin?tfjs-format=file'));
  // How tfjs's loadGraphModel(url, {fromTFHub: true}) resolves model URLs.
  const tfhub = 'https://tfhub.dev/google/tfjs-model/imagenet/mobilenet_v3_small_100_224/feature_vector/5/default/1';
  assert.equal(resolveModelJsonUrl(tfhub), `${tfhub}/model.json?tfjs-format=file`);
  assert.equal(resolveModelJsonUrl(`${tfhub}/`), `${tfhub}/model.json?tfjs-format=file`);
  const kaggle = 'https://www.kaggle.com/models/google/mobilenet-v3/TfJs/small-100-224-feature-vector/1';
  assert.equal(resolveModelJsonUrl(kaggle), `${kaggle}/model.json?tfjs-format=file`);
  assert.equal(resolveModelJsonUrl('https://example.com/models/x/'), 'https://example.com/models/x/model.json');
  assert.equal(resolveModelJsonUrl('https://example.com/x/my-model.json'), 'https://example.com/x/my-model.json');
});

test('a Teachable Machine export from a URL brings its labels (metadata.json)', async () => {
  const backbone = await loadBackbone(`${server.origin}/ok/teachable-machine-export/model.json`, { cacheDir: await freshCache() });
  try {
    assert.deepEqual(backbone.classLabels, ['twin1', 'twin2']);
    assert.equal(backbone.featureSize, 1280);
  } finally {
    backbone.release();
  }
});

test('servers that fail give clear errors and leave nothing in the cache', async () => {
  const cases: { url: string; code: string; timeoutMs?: number }[] = [
    { url: `${server.origin}/fail500/mobilenet-v1-1.0-features/model.json`, code: 'MODEL_DOWNLOAD_FAILED' },
    { url: `${server.origin}/ok/no-such-model/model.json`, code: 'MODEL_NOT_FOUND' },
    { url: `${server.origin}/garbage/mobilenet-v1-1.0-features/model.json`, code: 'MODEL_INVALID' },
    { url: `${server.origin}/stall/mobilenet-v1-1.0-features/model.json`, code: 'MODEL_TIMEOUT', timeoutMs: 300 },
    { url: `${server.origin}/stallbin/mobilenet-v1-1.0-features/model.json`, code: 'MODEL_TIMEOUT', timeoutMs: 300 },
    { url: `${server.origin}/short/mobilenet-v1-1.0-features/model.json`, code: 'MODEL_TRUNCATED' },
    { url: `${server.origin}/short/mobilenet-v1-0.25-imagenet/model.json`, code: 'MODEL_TRUNCATED' },
    { url: `${server.origin}/cut/mobilenet-v2-1.0-imagenet/model.json`, code: 'MODEL_TRUNCATED' },
  ];
  for (const { url, code, timeoutMs } of cases) {
    const cacheDir = await freshCache();
    await assert.rejects(loadBackbone(url, { cacheDir, requestTimeoutMs: timeoutMs ?? 10_000 }), (err) => {
      assert.ok(isLaneVisionError(err, code), `${url}: expected ${code}, got ${String(err)}`);
      return true;
    });
    assert.deepEqual(await listCache(cacheDir), [], `${url} left files behind`);
  }
});

test('a model larger than the download limit is refused', async () => {
  const cacheDir = await freshCache();
  await assert.rejects(
    loadBackbone(`${server.origin}/ok/mobilenet-v2-1.0-imagenet/model.json`, { cacheDir, maxDownloadBytes: 1_000_000 }),
    (err) => isLaneVisionError(err, 'MODEL_TOO_LARGE'),
  );
  assert.deepEqual(await listCache(cacheDir), []);
});

test('the cache folder defaults to LANE_VISION_CACHE, else ~/.cache/lane-vision/models', () => {
  const saved = process.env.LANE_VISION_CACHE;
  try {
    process.env.LANE_VISION_CACHE = path.join(scratch, 'from-env');
    assert.equal(defaultCacheDir(), path.join(scratch, 'from-env'));
    delete process.env.LANE_VISION_CACHE;
    assert.equal(defaultCacheDir(), path.join(os.homedir(), '.cache', 'lane-vision', 'models'));
  } finally {
    if (saved === undefined) delete process.env.LANE_VISION_CACHE;
    else process.env.LANE_VISION_CACHE = saved;
  }
  const a = cacheFolderFor('https://example.com/a/model.json', '/cache');
  assert.equal(a, cacheFolderFor('https://example.com/a/model.json', '/cache'), 'stable');
  assert.notEqual(a, cacheFolderFor('https://example.com/b/model.json', '/cache'));
  assert.equal(path.dirname(a), path.resolve('/cache'));
});
