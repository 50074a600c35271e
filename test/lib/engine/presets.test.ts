import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BACKBONE_PRESETS,
  cacheFolderFor,
  findPreset,
  initBackend,
  loadBackbone,
  normaliseBackboneSpec,
  resolveModelJsonUrl,
} from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { copyModel } from './copy-model.js';
import { valPhotos } from './photos.js';

let scratch: string;

before(async () => {
  await initBackend();
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-presets-'));
});

after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

test('the preset table is complete and well-formed', () => {
  const names = BACKBONE_PRESETS.map((p) => p.name);
  assert.equal(new Set(names).size, names.length, 'unique names');
  for (const expected of [
    'mobilenet-v1-0.25',
    'mobilenet-v1-0.50',
    'mobilenet-v1-0.75',
    'mobilenet-v1-1.00',
    'mobilenet-v2-0.35',
    'mobilenet-v2-0.50',
    'mobilenet-v2-0.75',
    'mobilenet-v2-1.00',
    'mobilenet-v3-small',
    'mobilenet-v3-large',
    'inception-v3',
  ]) {
    assert.ok(names.includes(expected), expected);
  }
  for (const preset of BACKBONE_PRESETS) {
    assert.ok(preset.urls.length > 0);
    for (const url of preset.urls) {
      assert.equal(new URL(url).protocol, 'https:', url);
      assert.match(resolveModelJsonUrl(url), /\/model\.json(\?tfjs-format=file)?$/);
    }
    assert.ok(preset.featureSize > 0 && preset.inputSize.width > 0);
    assert.ok(['[-1,1]', '[0,1]'].includes(preset.inputRange));
  }
  // Teachable Machine's own backbone URLs, alpha with two decimals.
  assert.equal(
    findPreset('mobilenet-v2-0.35')!.urls[0],
    'https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top/model.json',
  );
  assert.equal(findPreset('MobileNet-V1-1.0')!.urls[0], 'https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_1.0_224/model.json');
  assert.deepEqual(findPreset('inception-v3')!.inputSize, { width: 299, height: 299 });
  assert.equal(findPreset('no-such-preset'), undefined);
});

test('a preset loads with no network from a cache folder copied in (air-gapped install)', async () => {
  // Stand-in for the download of Teachable Machine's MobileNetV2-0.35: the shared folder is
  // that backbone's weights saved unchanged (see the shared models README).
  const preset = findPreset('mobilenet-v2-0.35')!;
  const cacheDir = path.join(scratch, 'cache');
  const slot = cacheFolderFor(resolveModelJsonUrl(preset.urls[0]), cacheDir);
  await copyModel('mobilenet-v2-0.35-features', slot);

  const photos = (await valPhotos({ width: 224, height: 224 }, 1)).slice(0, 2);
  const fromPreset = await loadBackbone('mobilenet-v2-0.35', { cacheDir, requestTimeoutMs: 1000 });
  const fromFolder = await loadBackbone(modelDir('mobilenet-v2-0.35-features'));
  try {
    assert.equal(fromPreset.preset, 'mobilenet-v2-0.35');
    assert.equal(fromPreset.location, slot);
    assert.match(fromPreset.id, /^preset:mobilenet-v2-0\.35\|/);
    assert.match(fromPreset.featureLayer, /out_relu$/);
    assert.equal(fromPreset.featureSize, preset.featureSize);
    assert.equal(fromPreset.inputRange, preset.inputRange);
    const [a, b] = await Promise.all([fromPreset.engine.features(photos), fromFolder.engine.features(photos)]);
    for (let i = 0; i < photos.length; i++) {
      for (let j = 0; j < a[i].length; j++) assert.ok(Math.abs(a[i][j] - b[i][j]) < 1e-5);
    }
  } finally {
    fromPreset.release();
    fromFolder.release();
  }
});

test('backbone settings are checked', () => {
  assert.deepEqual(normaliseBackboneSpec(' mobilenet-v2-0.35 '), { source: 'mobilenet-v2-0.35' });
  assert.deepEqual(normaliseBackboneSpec({ source: 'x', featureLayer: '', inputSize: { width: 160, height: 160 } }), {
    source: 'x',
    inputSize: { width: 160, height: 160 },
  });
  const invalid = [
    {},
    { source: 42 },
    { source: 'x', inputSize: { width: 0, height: 224 } },
    { source: 'x', inputSize: { width: 224.5, height: 224 } },
    { source: 'x', inputRange: '0..1' },
    { source: 'x', classifierOutput: 'maybe' },
    { source: 'x', labels: 'a,b' },
    { source: 'x', featureLayer: 7 },
  ];
  for (const spec of invalid) {
    assert.throws(() => normaliseBackboneSpec(spec as never), (err) => isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'), JSON.stringify(spec));
  }
});
