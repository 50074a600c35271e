/**
 * backboneCompatibility against real loaded backbones: what it calls a fit must give the
 * head's features, and what it refuses at the same feature size must not.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  cacheFolderFor,
  findPreset,
  initBackend,
  loadBackbone,
  readModelFolder,
  resolveModelJsonUrl,
  tf,
  type Backbone,
  type BackboneSpec,
} from '../../../src/engine/index.js';
import { prepareImage } from '../../../src/image/index.js';
import {
  backboneCompatibility,
  importTeachableMachineExport,
  openModelStore,
  readTeachableMachineExport,
  type BackboneDescriptor,
  type LoadedBackboneIdentity,
} from '../../../src/model-store/index.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';
import { copyModel } from '../engine/copy-model.js';

let scratch: string;

before(async () => {
  await initBackend();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-compat-'));
});

after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * sha256 over the weight shards in manifest order, as BackboneDescriptor.weightsFingerprint
 * defines it. The engine does not report it yet; this reads the backbone's own folder
 * with the engine's reader.
 */
async function withWeightsFingerprint(backbone: Backbone): Promise<LoadedBackboneIdentity> {
  const files = await readModelFolder(backbone.location);
  const weightsFingerprint = createHash('sha256').update(new Uint8Array(files.weightData)).digest('hex');
  return { id: backbone.id, featureSize: backbone.featureSize, inputSize: backbone.inputSize, inputRange: backbone.inputRange, preset: backbone.preset, weightsFingerprint };
}

function maxAbsDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
  return worst;
}

test('a Teachable Machine head fits exactly the backbones that give its features', async () => {
  const exportDir = modelDir('teachable-machine-export');
  const imported = await readTeachableMachineExport(exportDir);
  const descriptor = imported.backbone;

  // The preset, loaded offline from a cache slot holding the backbone saved on its own (as
  // an air-gapped install gets it), and the export copied to a folder of another name.
  const cacheDir = path.join(scratch, 'cache');
  await copyModel('mobilenet-v2-0.35-features', cacheFolderFor(resolveModelJsonUrl(findPreset('mobilenet-v2-0.35')!.urls[0]), cacheDir));
  const renamedExport = await copyModel('teachable-machine-export', path.join(scratch, 'line-2-model'));

  const tensorsBefore = tf.memory().numTensors;
  const specs: Record<string, BackboneSpec | string> = {
    exportFolder: exportDir,
    renamedExport,
    ownFolder: modelDir('mobilenet-v2-0.35-features'),
    preset: 'mobilenet-v2-0.35',
    exportPreBatchNorm: { source: exportDir, featureLayer: 'Conv_1_bn' }, // 1280-d too, another layer
    v2Large: modelDir('mobilenet-v2-1.0-imagenet'), // 1280-d too, another network
    v1Small: modelDir('mobilenet-v1-0.25-imagenet'), // 256-d
    ownFolderUnitRange: { source: modelDir('mobilenet-v2-0.35-features'), inputRange: '[0,1]' },
  };
  const loaded: Record<string, Backbone> = {};
  try {
    for (const [name, spec] of Object.entries(specs)) loaded[name] = await loadBackbone(spec, { cacheDir, requestTimeoutMs: 1000 });
    const check = (name: string, identity: LoadedBackboneIdentity = loaded[name]) => backboneCompatibility(descriptor, identity);

    assert.deepEqual(check('exportFolder'), { fits: true, exact: true }, 'the recorded id is the one the engine gives the export folder');
    const renamed = check('renamedExport');
    assert.deepEqual([renamed.fits, renamed.exact], [true, false]);
    assert.match(renamed.reason!, /same model files/);
    const preset = check('preset');
    assert.equal(loaded.preset.preset, 'mobilenet-v2-0.35');
    assert.deepEqual([preset.fits, preset.exact], [true, false]);
    assert.match(preset.reason!, /preset mobilenet-v2-0\.35/);

    // The backbone saved on its own has another model.json, so only the weights fingerprint tells.
    const ownWithout = check('ownFolder');
    assert.equal(ownWithout.fits, false);
    assert.match(ownWithout.reason!, /no weights fingerprint/);
    const ownWith = check('ownFolder', await withWeightsFingerprint(loaded.ownFolder));
    assert.deepEqual([ownWith.fits, ownWith.exact], [true, false], ownWith.reason);

    const preBatchNorm = check('exportPreBatchNorm');
    assert.equal(preBatchNorm.fits, false);
    assert.match(preBatchNorm.reason!, /layer model2\/Conv_1_bn/);
    const large = check('v2Large', await withWeightsFingerprint(loaded.v2Large));
    assert.equal(loaded.v2Large.featureSize, 1280);
    assert.equal(large.fits, false);
    assert.match(large.reason!, /different networks/);
    const v1 = check('v1Small');
    assert.equal(v1.fits, false);
    assert.match(v1.reason!, /1280 features, the backbone gives 256/);
    const unitRange = check('ownFolderUnitRange', await withWeightsFingerprint(loaded.ownFolderUnitRange));
    assert.equal(unitRange.fits, false);
    assert.match(unitRange.reason!, /\[-1,1\].*\[0,1\]/);

    // Ground truth: every backbone called a fit gives the export's features; the refused
    // ones of the same size do not.
    const photos = classNames(groceryValDir)
      .slice(0, 2)
      .map((c) => classImages(groceryValDir, c)[0]);
    const frames = await Promise.all(photos.map((f) => prepareImage(f, { width: 224, height: 224, fit: { kind: 'cover' } })));
    const reference = await loaded.exportFolder.engine.features(frames);
    const differences: string[] = [];
    for (const name of ['renamedExport', 'preset', 'ownFolder']) {
      const difference = maxAbsDifference(reference, await loaded[name].engine.features(frames));
      differences.push(`${name} ${difference.toExponential(1)}`);
      assert.ok(difference < 1e-4, `${name} is called a fit but its features differ by ${difference}`);
    }
    for (const name of ['exportPreBatchNorm', 'v2Large', 'ownFolderUnitRange']) {
      const difference = maxAbsDifference(reference, await loaded[name].engine.features(frames));
      differences.push(`${name} ${difference.toFixed(2)}`);
      assert.ok(difference > 0.01, `${name} is refused although its features differ by only ${difference}`);
    }
    console.log(`max |features - export's| on ${frames.length} photos (${loaded.exportFolder.backend.name}): ${differences.join(', ')}`);

    // The descriptor survives the store: a loaded version still tells the fits apart.
    const store = await openModelStore(path.join(scratch, 'models'));
    await importTeachableMachineExport(store, exportDir);
    const stored = (await store.loadModel('active')).metadata.backbone;
    assert.deepEqual(backboneCompatibility(stored, loaded.exportFolder), { fits: true, exact: true });
    assert.equal(backboneCompatibility(stored, await withWeightsFingerprint(loaded.ownFolder)).fits, true);
    assert.equal(backboneCompatibility(stored, loaded.v2Large).fits, false);
  } finally {
    for (const backbone of Object.values(loaded)) backbone.release();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'released backbones leave no tensors');
});

test('a head trained on a loaded backbone keeps to its weights and layer', async () => {
  const base: BackboneDescriptor = {
    id: 'preset:mobilenet-v2-0.35|out_relu|224x224|[-1,1]|0123456789abcdef',
    source: 'mobilenet-v2-0.35',
    preset: 'mobilenet-v2-0.35',
    featureLayer: 'out_relu',
    featureSize: 1280,
    inputSize: { width: 224, height: 224 },
    inputRange: '[-1,1]',
    fit: { kind: 'cover' },
  };
  const loaded = (id: string, extra: Partial<LoadedBackboneIdentity> = {}): LoadedBackboneIdentity => ({
    id,
    featureSize: 1280,
    inputSize: { width: 224, height: 224 },
    inputRange: '[-1,1]',
    ...extra,
  });
  // The preset's files changed since training: not the same network, preset name or not.
  const changed = backboneCompatibility(base, loaded('preset:mobilenet-v2-0.35|out_relu|224x224|[-1,1]|fedcba9876543210', { preset: 'mobilenet-v2-0.35' }));
  assert.equal(changed.fits, false);
  assert.match(changed.reason!, /files of preset:mobilenet-v2-0\.35 differ/);
  // The same download found through its URL instead of the preset name.
  const viaUrl = 'https://host/a|b/model.json|out_relu|224x224|[-1,1]|0123456789abcdef'; // "|" in a URL origin
  assert.deepEqual(
    [backboneCompatibility(base, loaded(viaUrl)).fits, backboneCompatibility(base, loaded(viaUrl)).exact],
    [true, false],
  );
  // Same files, features from another layer of the same size.
  assert.equal(backboneCompatibility(base, loaded('preset:mobilenet-v2-0.35|Conv_1|224x224|[-1,1]|0123456789abcdef')).fits, false);
  // Never across feature sizes, even under the same id.
  const smaller = backboneCompatibility(base, loaded(base.id, { featureSize: 1024 }));
  assert.deepEqual([smaller.fits, smaller.exact], [false, false]);
  // Ids the engine did not make match only themselves.
  const custom = { ...base, id: 'test-backbone', preset: undefined };
  assert.deepEqual(backboneCompatibility(custom, loaded('test-backbone')), { fits: true, exact: true });
  assert.equal(backboneCompatibility(custom, loaded('other-backbone')).fits, false);
});
