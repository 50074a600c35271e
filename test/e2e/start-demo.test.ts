/**
 * The `npm start` launcher's checks, without starting Node-RED: options, backbone and frame
 * choice, the user directory, taken ports. (node-red-process.test.ts runs the real process.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { isLaneVisionError } from '../../src/errors.js';
import { cacheFolderFor, findPreset } from '../../src/engine/index.js';
import { resolveModelJsonUrl } from '../../src/engine/model-source.js';
import {
  DEFAULT_BACKBONE_PRESET,
  DEMO_DATA_FOLDER,
  assertPortFree,
  consolePathsOf,
  demoOptionsFrom,
  laneTopicsOf,
  prepareBackbone,
  prepareFrames,
  prepareUserDir,
  startDemo,
} from '../../scripts/start-demo.js';
import { groceryTrainDir, modelDir } from '../support/shared.js';
import { freePort, repoRoot, tempDir } from './support.js';

test('options come from the environment, with the documented defaults', () => {
  const defaults = demoOptionsFrom({}, [], repoRoot);
  assert.equal(defaults.httpPort, 1880);
  assert.equal(defaults.mqttPort, 1884);
  assert.equal(defaults.userDir, path.join(repoRoot, '.node-red-data'));
  assert.equal(defaults.reset, false);
  assert.equal(defaults.backbone, undefined);
  assert.equal(defaults.frames, undefined);
  assert.equal(defaults.flowTemplate, path.join(repoRoot, 'examples', 'yoghurt-lane.json'));

  const set = demoOptionsFrom(
    { PORT: '18080', LANE_VISION_MQTT_PORT: '18883', LANE_VISION_DEMO_DIR: 'some/dir', LANE_VISION_BACKBONE: ' x ', LANE_VISION_FRAMES: '' },
    ['--reset'],
    repoRoot,
  );
  assert.equal(set.httpPort, 18080);
  assert.equal(set.mqttPort, 18883);
  assert.equal(set.userDir, path.resolve('some/dir'));
  assert.equal(set.reset, true);
  assert.equal(set.backbone, 'x');
  assert.equal(set.frames, undefined, 'an empty LANE_VISION_FRAMES means the synthetic lane');

  for (const port of ['0', '65536', 'http', '80.5']) {
    assert.throws(() => demoOptionsFrom({ PORT: port }, [], repoRoot), (err) => isLaneVisionError(err, 'DEMO_CONFIG_INVALID') && /PORT=/.test((err as Error).message));
  }
  assert.throws(() => demoOptionsFrom({}, ['--rest'], repoRoot), (err) => isLaneVisionError(err, 'DEMO_CONFIG_INVALID') && /--rest/.test((err as Error).message));
});

test('the backbone: LANE_VISION_BACKBONE, else the shared folder, else the cached default preset', async () => {
  const shared = modelDir('mobilenet-v2-0.35-features');
  const fromEnv = await prepareBackbone({ repoRoot, backbone: path.relative(process.cwd(), shared) });
  assert.equal(fromEnv.source, shared, 'a relative folder is made absolute for Node-RED, whose working dir differs');
  assert.equal(fromEnv.origin, 'LANE_VISION_BACKBONE');

  // This repo sits next to ../shared, so without the variable the shared folder is used.
  const fromShared = await prepareBackbone({ repoRoot });
  assert.equal(fromShared.source, path.resolve(repoRoot, '..', 'shared', 'models', 'mobilenet-v2-0.35-features'));

  // Elsewhere, the default preset comes from the model cache (filled here by hand: no network in tests).
  // A repo folder inside a fresh temp dir: nothing named shared sits next to it, whatever /tmp holds.
  const elsewhere = path.join(tempDir('lane-vision-demo-root-'), 'repo');
  fs.mkdirSync(elsewhere);
  const cache = tempDir('lane-vision-demo-cache-');
  const saved = process.env.LANE_VISION_CACHE;
  process.env.LANE_VISION_CACHE = cache;
  try {
    const preset = findPreset(DEFAULT_BACKBONE_PRESET);
    assert.ok(preset);
    const cached = cacheFolderFor(resolveModelJsonUrl(preset.urls[0]), cache);
    fs.mkdirSync(cached, { recursive: true });
    fs.copyFileSync(path.join(shared, 'model.json'), path.join(cached, 'model.json'));
    const fromCache = await prepareBackbone({ repoRoot: elsewhere });
    assert.equal(fromCache.source, DEFAULT_BACKBONE_PRESET);
    assert.match(fromCache.origin, /default preset/);
  } finally {
    if (saved === undefined) delete process.env.LANE_VISION_CACHE;
    else process.env.LANE_VISION_CACHE = saved;
    fs.rmSync(elsewhere, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('a backbone that cannot be had is a clear error telling how to supply one', async () => {
  const empty = tempDir('lane-vision-demo-empty-');
  try {
    await assert.rejects(prepareBackbone({ repoRoot, backbone: empty }), (err) => {
      assert.ok(isLaneVisionError(err, 'DEMO_BACKBONE_MISSING'));
      assert.match(err.message, /no model\.json/);
      assert.match(err.message, /LANE_VISION_BACKBONE=\/path\/to\/model-folder/);
      return true;
    });
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
  // A URL nobody answers (a closed local port: refused at once, no internet involved).
  const closed = await freePort();
  const cache = tempDir('lane-vision-demo-cache-');
  const saved = process.env.LANE_VISION_CACHE;
  process.env.LANE_VISION_CACHE = cache;
  try {
    await assert.rejects(prepareBackbone({ repoRoot, backbone: `http://127.0.0.1:${closed}/model.json` }), (err) => {
      assert.ok(isLaneVisionError(err, 'DEMO_BACKBONE_MISSING'));
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
      assert.match(err.message, /Give the demo a backbone/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.LANE_VISION_CACHE;
    else process.env.LANE_VISION_CACHE = saved;
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('frames: synthetic by default, a folder per class when LANE_VISION_FRAMES is set', async () => {
  assert.equal((await prepareFrames(undefined)).folder, undefined);
  const grocery = await prepareFrames(groceryTrainDir);
  assert.equal(grocery.folder, groceryTrainDir);
  const classes = fs.readdirSync(groceryTrainDir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).length;
  assert.match(grocery.description, new RegExp(`of ${classes} classes`));
  const empty = tempDir('lane-vision-demo-frames-');
  try {
    await assert.rejects(prepareFrames(empty), (err) => isLaneVisionError(err, 'DEMO_FRAMES_INVALID') && /one sub-folder of images per class/.test((err as Error).message));
    await assert.rejects(prepareFrames(path.join(empty, 'missing')), (err) => isLaneVisionError(err, 'DEMO_FRAMES_INVALID'));
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('the user dir: settings regenerated, the example flow copied once, --reset restores it and clears the demo data', () => {
  const userDir = tempDir('lane-vision-demo-userdir-');
  const flowTemplate = path.join(userDir, 'template.json');
  fs.writeFileSync(flowTemplate, JSON.stringify([{ id: 'tab', type: 'tab', label: 'template' }]));
  const options = { repoRoot, httpPort: 18999, userDir, reset: false, flowTemplate };
  try {
    const first = prepareUserDir(options);
    assert.equal(first.flowInstalled, true);
    assert.deepEqual(JSON.parse(fs.readFileSync(first.flowFile, 'utf8')), JSON.parse(fs.readFileSync(flowTemplate, 'utf8')));
    // The settings file is a module Node-RED can load, local-only and without login.
    const settings = require(first.settingsFile) as Record<string, unknown>;
    assert.equal(settings.uiHost, '127.0.0.1');
    assert.equal(settings.uiPort, 18999);
    assert.equal(settings.flowFile, 'flows.json');
    assert.deepEqual(settings.nodesDir, [repoRoot]);
    assert.equal(typeof settings.credentialSecret, 'string');
    assert.equal(settings.adminAuth, undefined);

    // The engineer's edits survive a restart...
    fs.writeFileSync(first.flowFile, JSON.stringify([{ id: 'tab', type: 'tab', label: 'edited' }]));
    fs.mkdirSync(path.join(userDir, DEMO_DATA_FOLDER, 'dataset'), { recursive: true });
    const second = prepareUserDir(options);
    assert.equal(second.flowInstalled, false);
    assert.match(fs.readFileSync(second.flowFile, 'utf8'), /edited/);
    assert.deepEqual(second.cleared, []);

    // ...and --reset puts the example back and clears only the demo's own data.
    fs.writeFileSync(path.join(userDir, 'keep.txt'), 'not ours');
    const reset = prepareUserDir({ ...options, reset: true });
    assert.equal(reset.flowInstalled, true);
    assert.match(fs.readFileSync(reset.flowFile, 'utf8'), /template/);
    assert.deepEqual(reset.cleared, [path.join(userDir, DEMO_DATA_FOLDER)]);
    assert.equal(fs.existsSync(path.join(userDir, DEMO_DATA_FOLDER)), false);
    assert.equal(fs.existsSync(path.join(userDir, 'keep.txt')), true);

    fs.writeFileSync(flowTemplate, '{"not":"a flow"}');
    assert.throws(() => prepareUserDir({ ...options, reset: true }), (err) => isLaneVisionError(err, 'DEMO_FLOW_INVALID'));
  } finally {
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});

test('a taken port stops the start before Node-RED is spawned, naming the variable to change', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as net.AddressInfo).port;
  const userDir = tempDir('lane-vision-demo-userdir-');
  try {
    await assert.rejects(assertPortFree(taken, 'The editor', 'PORT'), (err) => isLaneVisionError(err, 'DEMO_PORT_IN_USE') && /PORT=<port>/.test((err as Error).message));
    const options = { ...demoOptionsFrom({ LANE_VISION_DEMO_DIR: userDir, PORT: String(await freePort()) }, [], repoRoot), mqttPort: taken };
    await assert.rejects(startDemo(options), (err) => isLaneVisionError(err, 'DEMO_PORT_IN_USE') && /LANE_VISION_MQTT_PORT/.test((err as Error).message));
    assert.deepEqual(fs.readdirSync(userDir), [], 'nothing was prepared or started');
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});

test('the start-up message reads the station topics and console pages from the deployed flow', () => {
  const dir = tempDir('lane-vision-demo-flow-');
  try {
    const topics = laneTopicsOf(path.join(repoRoot, 'examples', 'yoghurt-lane.json'));
    assert.equal(topics?.result, 'lane-vision/demo-line/yoghurt-sorter/result');
    assert.equal(topics?.commandFilter, 'lane-vision/demo-line/yoghurt-sorter/cmd/+');
    const flowFile = path.join(dir, 'flows.json');
    fs.writeFileSync(flowFile, JSON.stringify([{ id: 'c', type: 'lane-console', path: 'lane-vision/console' }, { id: 'e', type: 'lane-console', path: '${PAGE}' }]));
    assert.deepEqual(consolePathsOf(flowFile), ['/lane-vision/console']);
    assert.equal(laneTopicsOf(flowFile), undefined, 'no broker, no topics');
    fs.writeFileSync(flowFile, 'not json');
    assert.deepEqual(consolePathsOf(flowFile), [], 'a broken flow file does not stop the start');
    assert.equal(laneTopicsOf(flowFile), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
