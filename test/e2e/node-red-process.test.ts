/**
 * The demo as `npm start` runs it: a real Node-RED process (node-red/red.js) started by the
 * launcher in scripts/start-demo.ts, on free ports, with a temp user dir and the shared
 * MobileNetV2 backbone. The yoghurt lane captures, trains and sorts, and the results arrive
 * over MQTT from the flow's embedded broker; then Node-RED is stopped and must be gone.
 * Run `npm run build` first (Node-RED loads the compiled nodes from dist/).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { YOGHURT_FLAVOURS } from '../../src/lane-source/yoghurt-flavours.js';
import { DEMO_DATA_FOLDER, demoOptionsFrom, laneTopicsOf, startDemo, type RunningDemo } from '../../scripts/start-demo.js';
import { modelDir } from '../support/shared.js';
import { freePort, isListening, repoRoot, tempDir } from './support.js';

const BACKBONE = modelDir('mobilenet-v2-0.35-features');
/** Seconds before the flow's first training: long enough for a few frames per flavour at 3 fps. */
const TRAIN_DELAY_SECONDS = '12';
const RESULTS_WANTED = 5;

interface ResultEvent {
  label: string;
  code: number;
  confidence: number;
  accepted: boolean;
  modelVersion: string;
  backend: string;
  topK: { label: string; confidence: number }[];
}

/** "v3" -> 3 (the events carry versions as text). */
function versionNumber(modelVersion: string): number {
  const match = /^v?(\d+)$/.exec(modelVersion);
  return match ? Number(match[1]) : NaN;
}

async function twoFreePorts(): Promise<[number, number]> {
  const first = await freePort();
  let second = await freePort();
  while (second === first) second = await freePort();
  return [first, second];
}

function logTail(demo: RunningDemo | undefined): string {
  return demo ? `\nNode-RED output (last lines):\n${demo.log.slice(-40).join('\n')}` : '';
}

test('the launcher runs the yoghurt lane in a real Node-RED process: editor, admin API, MQTT results, clean stop', { timeout: 150_000 }, async () => {
  const [httpPort, mqttPort] = await twoFreePorts();
  const userDir = tempDir('lane-vision-e2e-');
  const options = {
    ...demoOptionsFrom({ PORT: String(httpPort), LANE_VISION_MQTT_PORT: String(mqttPort), LANE_VISION_DEMO_DIR: userDir, LANE_VISION_BACKBONE: BACKBONE }, [], repoRoot),
    output: 'pipe' as const,
    extraEnv: { LANE_VISION_TRAIN_DELAY: TRAIN_DELAY_SECONDS },
  };
  let demo: RunningDemo | undefined;
  let client: mqtt.MqttClient | undefined;
  try {
    demo = await startDemo(options);
    assert.equal(demo.backbone.source, BACKBONE);
    assert.equal(demo.userDir.flowInstalled, true);
    await demo.ready;

    // The admin API answers with the deployed example flow, and the editor page loads.
    const flowsResponse = await fetch(`${demo.editorUrl}flows`);
    assert.equal(flowsResponse.status, 200);
    const deployed = (await flowsResponse.json()) as { type: string }[];
    const example = JSON.parse(fs.readFileSync(options.flowTemplate, 'utf8')) as { type: string }[];
    assert.equal(deployed.length, example.length);
    for (const type of ['lane-source', 'lane-capture', 'lane-train', 'lane-classify', 'lane-events']) {
      assert.ok(deployed.some((node) => node.type === type), `${type} deployed`);
    }
    const editor = await fetch(demo.editorUrl);
    assert.equal(editor.status, 200);
    assert.match(await editor.text(), /<title>Node-RED<\/title>/);
    // The palette lists the package's nodes (loaded through nodesDir, from dist/).
    const palette = (await (await fetch(`${demo.editorUrl}nodes`, { headers: { Accept: 'application/json' } })).json()) as { module: string; types: string[]; enabled: boolean }[];
    const ours = palette.filter((set) => set.module === 'node-red-contrib-lane-vision');
    assert.ok(ours.length >= 8 && ours.every((set) => set.enabled), `lane node sets in the palette: ${ours.map((set) => set.types).join(', ')}`);

    // Without adminAuth, a page of another site still cannot stop the camera or start a
    // training: Node-RED's admin API answers CORS for any origin, so the plugin's own guard refuses.
    const nodeOf = (type: string) => (deployed as { id: string; type: string }[]).find((node) => node.type === type)!.id;
    for (const route of [`lane-source/${nodeOf('lane-source')}/toggle`, `lane-train/${nodeOf('lane-train')}/train`]) {
      const url = `${demo.editorUrl}lane-vision/${route}`;
      const asForm = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/plain', Origin: 'http://evil.example' }, body: '{}' });
      assert.equal(asForm.status, 403, `${route}: a cross-site form post`);
      const withHeader = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Lane-Vision': '1', Origin: 'http://evil.example' }, body: '{}' });
      assert.equal(withHeader.status, 403, `${route}: a cross-site fetch after a preflight`);
      assert.equal(((await withHeader.json()) as { code: string }).code, 'REQUEST_CROSS_SITE');
      const malformed = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Lane-Vision': '1' }, body: '{"oops' });
      assert.equal(malformed.status, 400, `${route}: malformed JSON`);
      assert.deepEqual(await malformed.json(), { error: 'The request body is not valid JSON.', code: 'REQUEST_INVALID_JSON' });
    }

    // Import ▸ Examples offers the package's example flows.
    const listed = (await (await fetch(`${demo.editorUrl}library/examples/flows/node-red-contrib-lane-vision`)).json()) as { fn: string }[];
    assert.deepEqual(listed.map((entry) => entry.fn).sort(), ['camera-sorter', 'imagenet-as-is', 'yoghurt-lane']);

    // Results of the trained model arrive over MQTT from the flow's embedded broker.
    const topics = laneTopicsOf(demo.userDir.flowFile);
    assert.ok(topics, 'the flow has a lane-broker');
    client = await mqtt.connectAsync(demo.mqttUrl, { reconnectPeriod: 250, connectTimeout: 5000 });
    const results: ResultEvent[] = [];
    const models: { modelVersion: string; labels: { label: string }[] }[] = [];
    const enough = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${results.length} results of a trained model within 90 s`)), 90_000);
      client!.on('message', (topic, payload) => {
        const event = JSON.parse(payload.toString('utf8'));
        if (topic === topics.model) models.push(event);
        if (topic !== topics.result) return;
        if (versionNumber((event as ResultEvent).modelVersion) >= 1) results.push(event);
        if (results.length >= RESULTS_WANTED) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await client.subscribeAsync([topics.result, topics.model], { qos: 1 });
    await enough;

    const allowed = new Set<string>([...YOGHURT_FLAVOURS, 'unknown']);
    for (const result of results) {
      assert.ok(allowed.has(result.label), `label ${result.label}`);
      assert.ok(versionNumber(result.modelVersion) >= 1, `model version ${result.modelVersion}`);
      assert.ok(typeof result.backend === 'string' && result.backend.length > 0, 'backend named');
      assert.ok(result.confidence >= 0 && result.confidence <= 1);
      assert.equal(result.accepted, result.label !== 'unknown');
      assert.ok(result.topK.length >= 1 && result.topK.every((ranked) => (YOGHURT_FLAVOURS as readonly string[]).includes(ranked.label)));
    }
    assert.ok(models.length >= 1, 'the model event (retained) arrived');
    assert.ok(models[0].labels.length >= 2 && models[0].labels.every((entry) => (YOGHURT_FLAVOURS as readonly string[]).includes(entry.label)));

    // The dataset and models live in the user dir (the flow's relative folders).
    const data = path.join(userDir, DEMO_DATA_FOLDER);
    assert.ok(fs.existsSync(path.join(data, 'dataset')), `${data}/dataset exists`);
    assert.ok(fs.readdirSync(path.join(data, 'models')).length > 0, 'a model version was saved');
  } catch (err) {
    if (err instanceof Error) err.message += logTail(demo);
    throw err;
  } finally {
    await client?.endAsync();
    const code = await demo?.stop();
    fs.rmSync(userDir, { recursive: true, force: true });
    if (demo) {
      assert.equal(code, 0, `Node-RED exit code${logTail(demo)}`);
      assert.notEqual(demo.child.exitCode, null, 'the process has exited');
      assert.ok(demo.log.some((line) => /Stopped flows/.test(line)), 'Node-RED stopped its flows before exiting');
    }
  }
  assert.equal(await isListening(httpPort), false, 'the editor port is free again');
  assert.equal(await isListening(mqttPort), false, 'the MQTT port is free again');
});

test('`node dist/scripts/start-demo.js` prints where to look and stops Node-RED on Ctrl-C', { timeout: 60_000 }, async () => {
  const script = path.join(repoRoot, 'dist', 'scripts', 'start-demo.js');
  assert.ok(fs.existsSync(script), `${script} is missing: run npm run build first`);
  const [httpPort, mqttPort] = await twoFreePorts();
  const userDir = tempDir('lane-vision-e2e-cli-');
  const launcher = spawn(process.execPath, [script], {
    env: { ...process.env, PORT: String(httpPort), LANE_VISION_MQTT_PORT: String(mqttPort), LANE_VISION_DEMO_DIR: userDir, LANE_VISION_BACKBONE: BACKBONE, LANE_VISION_FRAMES: '', LANE_VISION_TRAIN_DELAY: '600' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  launcher.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  launcher.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
  try {
    const deadline = Date.now() + 45_000;
    while (!output.includes('Ctrl-C stops Node-RED')) {
      assert.ok(Date.now() < deadline, `no start-up message within 45 s:\n${output}`);
      assert.equal(launcher.exitCode, null, `the launcher exited:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(output.includes(`http://127.0.0.1:${httpPort}/`), 'editor URL');
    assert.ok(output.includes(`mqtt://127.0.0.1:${mqttPort}`), 'MQTT URL');
    assert.ok(output.includes('lane-vision/demo-line/yoghurt-sorter/result'), 'result topic');
    assert.match(output, /no login/);
    assert.match(output, /Debug sidebar/);
    assert.ok(output.includes(BACKBONE), 'backbone named');
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/flows`)).status, 200);

    // Ctrl-C reaches the launcher (a terminal sends it to Node-RED too; red.js ignores the second signal).
    launcher.kill('SIGINT');
    assert.equal(await exited, 0, output);
    assert.match(output, /Node-RED stopped/);
    assert.equal(await isListening(httpPort), false, 'Node-RED is gone');
    assert.equal(await isListening(mqttPort), false, 'its broker is gone');
  } finally {
    if (launcher.exitCode === null) {
      // A failed assertion above: stop it the normal way, and make sure Node-RED does not outlive the test.
      launcher.kill('SIGINT');
      const stopped = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 20_000))]);
      if (stopped === 'timeout') launcher.kill('SIGKILL');
      const pid = /Node-RED pid (\d+)/.exec(output)?.[1];
      if (pid) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});
