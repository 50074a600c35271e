/**
 * The `lane-vision` command line end to end, run as a child process on real weights and
 * photos: predict, features, train -> eval on photos the model never saw -> classify,
 * Teachable Machine import, and how it fails (exit codes, one line on stderr).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IMAGENET_CLASSES } from '../../../src/engine/imagenet.js';
import { MANIFEST_FILE_NAME } from '../../../src/dataset/index.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';
import { startModelServer } from '../engine/model-server.js';
import { jsonLines, ownStderrLines, runLaneVision } from './support.js';

const TRAINED = ['Bravo-Orange-Juice', 'Oatly-Oat-Milk', 'Yoggi-Strawberry-Yoghurt'];
const BACKENDS = ['tensorflow', 'wasm', 'cpu'];
let work: string;
let env: Record<string, string>;
let trainedLabels: { label: string; code: number }[];

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-cli-'));
  // Anything the engine caches (e.g. converted models) stays in this test's folder.
  env = { LANE_VISION_CACHE: path.join(work, 'cache') };
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

test('predict --json gives one line per image with ranked ImageNet classes; human mode prints the backend on stderr', async () => {
  const photos = [classImages(groceryValDir, 'Oatly-Oat-Milk')[0], classImages(groceryValDir, 'Bravo-Orange-Juice')[0]];
  const run = await runLaneVision(['predict', '--model', modelDir('mobilenet-v1-0.25-imagenet'), ...photos, '--top', '3', '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  const lines = jsonLines(run);
  assert.deepEqual(lines.map((l) => l.image), photos);
  for (const line of lines) {
    assert.equal(line.top.length, 3);
    const probabilities = line.top.map((t: { probability: number }) => t.probability);
    assert.deepEqual([...probabilities].sort((a, b) => b - a), probabilities, 'best first');
    assert.ok(probabilities.every((p: number) => p >= 0 && p <= 1) && probabilities.reduce((a: number, b: number) => a + b) <= 1 + 1e-6);
    for (const t of line.top) assert.equal(t.label, IMAGENET_CLASSES[t.index]);
    assert.ok(BACKENDS.includes(line.backend), line.backend);
    assert.ok(line.timings.modelMs > 0);
  }
  assert.deepEqual(ownStderrLines(run), [], 'nothing but results with --json');

  const human = await runLaneVision(['predict', '--model', modelDir('mobilenet-v1-0.25-imagenet'), photos[0], '--top', '2'], env);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stderr, new RegExp(`^backend: ${lines[0].backend}\\b`, 'm'));
  assert.ok(human.stdout.includes(lines[0].top[0].label), 'the same best class as in JSON');
  assert.equal(human.stdout.trim().split('\n').length, 3, 'the image, then 2 classes');
});

test('predict refuses a features-only model; features reports the vector', async () => {
  const photo = classImages(groceryValDir, 'Oatly-Oat-Milk')[1];
  const model = modelDir('mobilenet-v2-0.35-features');
  const refused = await runLaneVision(['predict', '--model', model, photo], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^lane-vision predict: .*no classifier of its own.*\[MODEL_HAS_NO_CLASSIFIER\]$/m);

  const run = await runLaneVision(['features', '--model', model, photo, '--json', '--values'], env);
  assert.equal(run.code, 0, run.stderr);
  const [line] = jsonLines(run);
  assert.deepEqual(line.shape, [1280]);
  assert.equal(line.features.length, 1280);
  const norm = Math.sqrt(line.features.reduce((sum: number, v: number) => sum + v * v, 0));
  assert.ok(Math.abs(norm - line.norm) < 1e-3 * norm && norm > 0);
  assert.ok(line.timings.featuresMs > 0 && line.timings.decodeMs > 0);

  // --engine / --backend are obeyed, and the vector does not depend on what computes it.
  const wasm = await runLaneVision(['features', '--model', model, photo, '--json', '--values', '--engine', 'tfjs', '--backend', 'wasm'], env);
  assert.equal(wasm.code, 0, wasm.stderr);
  const [onWasm] = jsonLines(wasm);
  assert.equal(onWasm.engine, 'tfjs');
  assert.equal(onWasm.backend, 'wasm');
  const dot = onWasm.features.reduce((sum: number, v: number, i: number) => sum + v * line.features[i], 0);
  assert.ok(dot / (onWasm.norm * line.norm) > 0.999, `cosine ${dot / (onWasm.norm * line.norm)}`);
});

test('features from a URL downloads the model once and says so on stderr, with its size, not per chunk', async () => {
  const server = await startModelServer();
  try {
    const photo = classImages(groceryValDir, 'Oatly-Oat-Milk')[0];
    const url = `${server.origin}/ok/mobilenet-v2-0.35-features/model.json`;
    const downloadEnv = { ...env, LANE_VISION_CACHE: path.join(work, 'download-cache') };
    const first = await runLaneVision(['features', '--model', url, photo], downloadEnv);
    assert.equal(first.code, 0, first.stderr);
    const lines = first.stderr.split('\n').filter((line) => line.startsWith('downloaded'));
    assert.equal(lines.length, 1, first.stderr);
    assert.match(lines[0], new RegExp(`^downloaded ${url.replace(/[.?]/g, '\\$&')} \\((\\d+\\.\\d)/\\1 MB\\)$`));
    assert.doesNotMatch(first.stderr, /downloading/, 'no in-place progress when stderr is not a terminal');
    const again = await runLaneVision(['features', '--model', url, photo], downloadEnv);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /^downloaded/m, 'cached: nothing to download');
  } finally {
    await server.close();
  }
});

test('features --int8 <folder> runs the backbone in int8 calibrated on that folder: its own model id, a vector close to float', async () => {
  const photo = classImages(groceryValDir, 'Oatly-Oat-Milk')[1];
  const model = modelDir('mobilenet-v2-0.35-features');
  const [float, int8] = await Promise.all([
    runLaneVision(['features', '--model', model, photo, '--json', '--values'], env),
    runLaneVision(['features', '--model', model, photo, '--json', '--values', '--int8', groceryTrainDir], env),
  ]);
  assert.equal(float.code, 0, float.stderr);
  assert.equal(int8.code, 0, int8.stderr);
  const [[a], [b]] = [jsonLines(float), jsonLines(int8)];
  assert.equal(a.precision, 'float32');
  assert.equal(b.precision, 'int8');
  assert.equal(b.engine, 'onnxruntime');
  assert.notEqual(b.model, a.model);
  assert.match(b.model, /\+int8:/);
  const dot = b.features.reduce((sum: number, v: number, i: number) => sum + v * a.features[i], 0);
  assert.ok(dot / (a.norm * b.norm) > 0.95, `cosine ${dot / (a.norm * b.norm)}`);

  const refused = await runLaneVision(['features', '--model', model, photo, '--int8', path.join(work, 'no-such-folder')], env);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^lane-vision features: .*Cannot calibrate the int8 backbone on .*no-such-folder.*\[BACKBONE_CALIBRATION_INVALID\]$/m);
});

test('train on three labels of train/, then eval on val/ scores only those labels', async () => {
  const store = path.join(work, 'store');
  const train = await runLaneVision(
    ['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', groceryTrainDir, '--store', store, '--labels', TRAINED.join(','), '--json'],
    env,
  );
  assert.equal(train.code, 0, train.stderr);
  const [result] = jsonLines(train);
  assert.equal(result.version, 1);
  assert.equal(result.activated, true);
  assert.deepEqual(result.labels.map((l: { label: string }) => l.label), TRAINED);
  assert.ok(result.labels.every((l: { code: number }) => l.code >= 1));
  trainedLabels = result.labels;
  const imageCount = TRAINED.reduce((sum, label) => sum + classImages(groceryTrainDir, label).length, 0);
  const m = result.metrics;
  assert.equal(m.trainCount, imageCount);
  assert.equal(m.holdoutCount, imageCount, 'grouped cross-validation scores every image once, by a head that did not see it');
  assert.equal(m.holdout.count, m.holdoutCount);
  assert.equal(m.validation.kind, 'grouped-cross-validation');
  assert.equal(m.validation.optimistic, true);
  assert.equal(m.pipeline.strategy, 'auto');
  assert.ok(m.pipeline.candidates.some((c: { chosen: boolean }) => c.chosen));
  assert.ok(['small', 'large'].includes(m.advice.dataSize));
  const metadata = JSON.parse(fs.readFileSync(path.join(store, 'v0001', 'metadata.json'), 'utf8'));
  assert.deepEqual(metadata.backbone.fit.crop ?? null, m.pipeline.spec.crop, 'the chosen crop is stored as the model\'s preprocessing');
  assert.equal(m.holdout.confusion.flat().reduce((a: number, b: number) => a + b), m.holdoutCount);
  assert.equal(m.holdout.perClass.length, 3);
  assert.ok(m.timings.featuresMs > 0 && m.timings.totalMs >= m.timings.featuresMs);
  assert.ok(BACKENDS.includes(result.backend));
  assert.ok(typeof m.threshold.reached === 'boolean');
  assert.ok(fs.existsSync(path.join(store, 'v0001', 'metadata.json')));
  assert.ok(!fs.existsSync(path.join(groceryTrainDir, MANIFEST_FILE_NAME)), 'the shared dataset is opened read-only');

  const evaluated = await runLaneVision(['eval', '--store', store, '--data', groceryValDir, '--json'], env);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const [report] = jsonLines(evaluated);
  assert.equal(report.version, 1);
  assert.equal(report.metrics.count, TRAINED.reduce((sum, label) => sum + classImages(groceryValDir, label).length, 0));
  report.metrics.confusion.forEach((row: number[], i: number) =>
    assert.equal(row.reduce((a, b) => a + b), classImages(groceryValDir, TRAINED[i]).length),
  );
  const others = classNames(groceryValDir).filter((c) => !TRAINED.includes(c));
  assert.deepEqual(report.skippedLabels, Object.fromEntries(others.map((c) => [c, classImages(groceryValDir, c).length])));
  // Measured 11/15 (chance 5/15); shelf photos are harder than a fixed lane camera.
  assert.ok(report.metrics.accuracy >= 0.5, `accuracy ${report.metrics.accuracy}`);
  assert.ok(report.threshold.acceptedShare >= 0 && report.threshold.acceptedShare <= 1);
});

test('train --strategy fine-tune stores a tuned backbone that eval then serves; --blocks needs fine-tune', async () => {
  const store = path.join(work, 'store-fine-tune');
  const labels = TRAINED.slice(1).join(',');
  const args = ['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', groceryTrainDir, '--store', store, '--labels', labels];
  const train = await runLaneVision([...args, '--strategy', 'fine-tune', '--blocks', '1', '--epochs', '2', '--views', '0', '--final-training', '--json'], env, 300_000);
  assert.equal(train.code, 0, train.stderr);
  const [result] = jsonLines(train);
  const f = result.metrics.fineTune;
  assert.equal(f.blocks, 1);
  assert.deepEqual(f.history.map((e: { epoch: number }) => e.epoch), [1, 2]);
  assert.ok(f.heldOutFrames > 0 && f.validationAccuracy >= 0 && f.validationAccuracy <= 1);
  // The blocks train again on every frame for the chosen epoch count, unless no epoch beat the pretrained ones.
  if (f.bestEpoch === 0) assert.equal(f.finalTraining, undefined);
  else assert.deepEqual([f.finalTraining.epochs, f.finalTraining.frames], [f.bestEpoch, TRAINED.slice(1).reduce((sum, label) => sum + classImages(groceryTrainDir, label).length, 0)]);
  assert.equal(result.metrics.pipeline.strategy, 'fine-tune');
  const metadata = JSON.parse(fs.readFileSync(path.join(store, 'v0001', 'metadata.json'), 'utf8'));
  assert.equal(metadata.backbone.tuned.from, result.backbone.id, 'tuned from the backbone given on the command line');
  assert.ok(fs.existsSync(path.join(store, 'v0001', metadata.backbone.tuned.folder, 'model.json')));

  const evaluated = await runLaneVision(['eval', '--store', store, '--data', groceryValDir, '--json'], env);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const [report] = jsonLines(evaluated);
  assert.equal(report.backbone.id, metadata.backbone.id, 'eval runs the version\'s tuned backbone');

  const misuse = await runLaneVision([...args, '--blocks', '2'], env);
  assert.equal(misuse.code, 2);
  assert.match(misuse.stderr, /--blocks needs --strategy fine-tune/);
  const misplaced = await runLaneVision([...args, '--final-training'], env);
  assert.equal(misplaced.code, 2);
  assert.match(misplaced.stderr, /--final-training needs --strategy fine-tune/);
});

test('classify decides each image with the stored model and goes on after an unreadable one', async () => {
  assert.ok(trainedLabels, 'needs the model trained above');
  const store = path.join(work, 'store');
  const photos = TRAINED.map((label) => classImages(groceryValDir, label)[2]);
  const missing = path.join(work, 'no-such-photo.jpg');
  const run = await runLaneVision(['classify', '--store', store, photos[0], missing, photos[1], photos[2], '--threshold', '0.5', '--json'], env);
  assert.equal(run.code, 1, 'one image failed');
  const lines = jsonLines(run);
  assert.deepEqual(lines.map((l) => l.image), [photos[0], missing, photos[1], photos[2]]);
  assert.equal(lines[1].error.code, 'IMAGE_NOT_FOUND');
  assert.match(run.stderr, new RegExp(`^lane-vision classify: ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `, 'm'));
  const codes = Object.fromEntries(trainedLabels.map((l) => [l.label, l.code]));
  for (const line of [lines[0], lines[2], lines[3]]) {
    assert.equal(line.modelVersion, 1);
    assert.equal(line.threshold, 0.5);
    assert.equal(line.accepted, line.confidence >= 0.5);
    assert.equal(line.code, line.accepted ? codes[line.label] : 0);
    assert.deepEqual(line.topK.map((t: { label: string }) => t.label).sort(), [...TRAINED].sort());
  }

  const human = await runLaneVision(['classify', '--store', store, photos[0]], env);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stderr, /^backend: /m);
  assert.ok(human.stdout.startsWith(photos[0]));
});

test('import-tm turns a Teachable Machine export into a version that classifies', async () => {
  const store = path.join(work, 'tm-store');
  const run = await runLaneVision(['import-tm', '--store', store, modelDir('teachable-machine-export'), '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  const [imported] = jsonLines(run);
  assert.equal(imported.version, 1);
  assert.deepEqual(imported.labels.map((l: { label: string }) => l.label), ['twin1', 'twin2']);
  assert.equal(imported.backbone.featureSize, 1280);

  const classified = await runLaneVision(['classify', '--store', store, classImages(groceryValDir, 'Oatly-Oat-Milk')[0], '--json'], env);
  assert.equal(classified.code, 0, classified.stderr);
  const [line] = jsonLines(classified);
  assert.ok(['twin1', 'twin2', 'unknown'].includes(line.label));
  assert.equal(line.topK.length, 2);
  assert.ok(Math.abs(line.topK[0].confidence + line.topK[1].confidence - 1) < 1e-5);
  assert.match(line.backboneId, /^folder:teachable-machine-export\|/);
});

test('import-tm takes the export\'s URL too: downloaded once into the cache, its labels in the new version', async () => {
  const server = await startModelServer();
  try {
    const url = `${server.origin}/ok/teachable-machine-export/`;
    const run = await runLaneVision(['import-tm', '--store', path.join(work, 'tm-url-store'), url, '--json'], { ...env, LANE_VISION_CACHE: path.join(work, 'tm-url-cache') });
    assert.equal(run.code, 0, run.stderr);
    const [imported] = jsonLines(run);
    assert.deepEqual(imported.labels.map((l: { label: string }) => l.label), ['twin1', 'twin2']);
    assert.equal(imported.activated, true);
    const missing = await runLaneVision(['import-tm', '--store', path.join(work, 'tm-url-store'), `${server.origin}/ok/nothing-here/`], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^lane-vision import-tm: No model at .*nothing-here\/model\.json \(HTTP 404\): check the URL/m);
  } finally {
    await server.close();
  }
});

test('a wrong command line exits 2 with one line on stderr', async () => {
  for (const args of [
    ['predict', '--model', 'x', 'a.jpg', '--top', '0'],
    ['train', '--data', groceryTrainDir, '--store', work, '--backbone', 'x', '--frobnicate'],
    ['classify', 'a.jpg'],
    ['nonsense'],
  ]) {
    const run = await runLaneVision(args, env);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0], /^lane-vision( \w+)?: .+ \(see "lane-vision( [\w-]+)? --help"\)$/);
  }
  // A negative number is a value out of range, not a missing value.
  for (const [args, message] of [
    [['classify', '--store', work, '--threshold', '-1', 'a.jpg'], /--threshold must be a number from 0 to 1, got "-1"/],
    [['predict', '--model', 'x', '--top', '-3', 'a.jpg'], /--top must be a whole number from 1 to \d+, got "-3"/],
    [['train', '--data', groceryTrainDir, '--store', work, '--backbone', 'x', '--epochs', '-5'], /--epochs must be a whole number from 1 to 100000, got "-5"/],
  ] as const) {
    const run = await runLaneVision(args, env);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.doesNotMatch(run.stderr, /needs a value/);
  }
  const negativeVersion = await runLaneVision(['classify', '--store', path.join(work, 'no-store'), '--version', '-1', 'a.jpg'], env);
  assert.equal(negativeVersion.code, 1, negativeVersion.stderr);
  assert.match(negativeVersion.stderr, /"-1" is not a model version/);
  const version = await runLaneVision(['--version']);
  assert.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version);
  const help = await runLaneVision(['--help']);
  assert.equal(help.code, 0);
  for (const command of ['predict', 'features', 'train', 'eval', 'classify', 'import-tm', 'grab']) assert.match(help.stdout, new RegExp(`^  ${command} `, 'm'));
});

test('a missing model folder exits 1 naming the folder', async () => {
  const folder = path.join(work, 'no-such-model');
  const run = await runLaneVision(['predict', '--model', folder, classImages(groceryValDir, 'Oatly-Oat-Milk')[0], '--json'], env);
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  const lines = ownStderrLines(run);
  assert.equal(lines.length, 1, run.stderr);
  assert.ok(lines[0].includes(folder), lines[0]);
  assert.match(lines[0], /\[MODEL_NOT_FOUND\]$/);
});

/** A small folder dataset: `perLabel` grocery photos under each of `labels`, plus what `extra` adds. */
function smallDataset(name: string, labels: string[], perLabel: number, extra: (root: string) => void = () => {}): string {
  const root = path.join(work, name);
  for (const [i, label] of labels.entries()) {
    fs.mkdirSync(path.join(root, label), { recursive: true });
    for (const photo of classImages(groceryTrainDir, TRAINED[i % TRAINED.length]).slice(0, perLabel)) {
      fs.copyFileSync(photo, path.join(root, label, path.basename(photo)));
    }
  }
  extra(root);
  return root;
}

test('train on a folder holding an "unknown" label exits 1 naming the folder', async () => {
  const data = smallDataset('with-unknown', ['Oatly', 'unknown'], 2);
  const run = await runLaneVision(['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', data, '--store', path.join(work, 'never'), '--json'], env);
  assert.equal(run.code, 1, run.stderr);
  const lines = ownStderrLines(run);
  assert.equal(lines.length, 1, run.stderr);
  assert.ok(lines[0].includes(path.join(fs.realpathSync(data), 'unknown')), lines[0]);
  assert.match(lines[0], /reserved.*\[LABEL_INVALID\]$/);
  assert.ok(!fs.existsSync(path.join(work, 'never', 'v0001')), 'nothing trained');
});

test('train warns about every folder and file it skips, and lists them in --json', async () => {
  const data = smallDataset('with-skipped', ['Bravo', 'Oatly'], 3, (root) => {
    fs.mkdirSync(path.join(root, 'con'));
    fs.mkdirSync(path.join(root, '.hidden'));
    fs.writeFileSync(path.join(root, 'Oatly', 'readme.txt'), 'notes');
  });
  const args = ['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', data, '--store', path.join(work, 'skipped-store'), '--strategy', 'fixed', '--head', 'prototype'];
  const run = await runLaneVision([...args, '--json'], env);
  assert.equal(run.code, 0, run.stderr);
  const warnings = ownStderrLines(run).filter((line) => line.includes('warning: skipped'));
  assert.equal(warnings.length, 3, run.stderr);
  for (const [name, reason] of [['con', /reserved device name/], ['.hidden', /starts with a dot/], [path.join('Oatly', 'readme.txt'), /not a \.jpg/]] as const) {
    const line = warnings.find((w) => w.includes(path.join(data, name)));
    assert.ok(line, `no warning for ${name}: ${run.stderr}`);
    assert.match(line, reason);
  }
  const [result] = jsonLines(run);
  assert.deepEqual(result.skipped.map((s: { path: string }) => path.relative(data, s.path)).sort(), ['.hidden', 'Oatly/readme.txt', 'con'].sort());
});
