/**
 * Teaching in the shipped demo, as `npm start` runs it (a real Node-RED process started by
 * the launcher, its embedded MQTT broker over TCP, the shared backbone): the first frames of
 * each flavour seed the dataset; after that frames arrive unlabelled, so a label given in the
 * console and an MQTT cmd/capture each add new examples under the label given, and nothing
 * else is stored. Run `npm run build` first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import mqtt from 'mqtt';
import { YOGHURT_FLAVOURS } from '../../src/lane-source/yoghurt-flavours.js';
import { demoOptionsFrom, laneTopicsOf, startDemo, type RunningDemo } from '../../scripts/start-demo.js';
import { modelDir } from '../support/shared.js';
import { freePort, repoRoot, tempDir } from './support.js';

/** What the example flow's "seed the dataset" function lets through with its label. */
const SEED_PER_FLAVOUR = 4;
const CONSOLE_NODE = 'yoghurt-lane.console';

interface ConsoleState {
  dataset: { counts: Record<string, number>; total: number };
  frames: { id: number; truth?: string; stored?: string }[];
  stats: { frames: number };
}

async function waitFor<T>(check: () => Promise<T | undefined>, what: string, demo: RunningDemo, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${demo.log.slice(-30).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('in the demo flow a console label and an MQTT cmd/capture each add examples under the label given; other frames are not stored', { timeout: 180_000 }, async () => {
  const httpPort = await freePort();
  let mqttPort = await freePort();
  while (mqttPort === httpPort) mqttPort = await freePort();
  const userDir = tempDir('lane-vision-demo-teach-');
  const options = {
    ...demoOptionsFrom({ PORT: String(httpPort), LANE_VISION_MQTT_PORT: String(mqttPort), LANE_VISION_DEMO_DIR: userDir, LANE_VISION_BACKBONE: modelDir('mobilenet-v2-0.35-features') }, [], repoRoot),
    output: 'pipe' as const,
    // No training during the test: it would only compete for the CPU.
    extraEnv: { LANE_VISION_TRAIN_DELAY: '3600' },
  };
  const demo = await startDemo(options);
  let client: mqtt.MqttClient | undefined;
  try {
    await demo.ready;
    const consoleUrl = `${demo.editorUrl}lane-vision/console`;
    const state = async (): Promise<ConsoleState> => (await (await fetch(`${consoleUrl}/api/state`)).json()) as ConsoleState;
    const gallery = async (label: string) =>
      ((await (await fetch(`${consoleUrl}/api/gallery`)).json()) as { labels: { label: string; images: { id: string; source?: string }[] }[] }).labels.find((l) => l.label === label)?.images ?? [];

    const seeded = await waitFor(
      async () => {
        const now = await state();
        return YOGHURT_FLAVOURS.every((flavour) => now.dataset.counts[flavour] === SEED_PER_FLAVOUR) ? now : undefined;
      },
      `${SEED_PER_FLAVOUR} seed frames of every flavour`,
      demo,
    );
    assert.equal(seeded.dataset.total, SEED_PER_FLAVOUR * YOGHURT_FLAVOURS.length);
    const lastSeedFrame = Math.max(...seeded.frames.map((f) => f.id));

    // The console: a frame that came after the seed is not in the dataset; labelling it adds it.
    const frame = await waitFor(async () => (await state()).frames.find((f) => f.id > lastSeedFrame && f.truth), 'a frame after the seed', demo);
    const label = frame.truth!;
    const reply = await fetch(`${demo.editorUrl}lane-vision/lane-console/${CONSOLE_NODE}/capture`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Lane-Vision': '1' },
      body: JSON.stringify({ label, frames: [frame.id] }),
    });
    assert.equal(reply.status, 200, await reply.clone().text());
    const taught = (await reply.json()) as { added: { frame: number; id: string }[]; duplicates: unknown[] };
    assert.deepEqual(taught.duplicates, [], 'not already stored under the source\'s label');
    assert.equal(taught.added.length, 1);
    const afterConsole = await state();
    assert.equal(afterConsole.dataset.counts[label], SEED_PER_FLAVOUR + 1, `one more "${label}" example`);
    assert.equal(afterConsole.frames.find((f) => f.id === frame.id)?.stored, label);
    const stored = (await gallery(label)).find((image) => image.id === taught.added[0].id);
    assert.equal(stored?.source, 'lane-console', 'stored by the console, under the label given');

    // MQTT: cmd/capture arms a label for the next frames, whatever they show.
    const topics = laneTopicsOf(demo.userDir.flowFile);
    assert.ok(topics);
    const armedLabel = YOGHURT_FLAVOURS.find((flavour) => flavour !== label)!;
    client = await mqtt.connectAsync(demo.mqttUrl, { reconnectPeriod: 250, connectTimeout: 5000 });
    await client.publishAsync(topics.commandFilter.replace(/\+$/, 'capture'), JSON.stringify({ label: armedLabel, count: 2 }), { qos: 1 });
    const afterMqtt = await waitFor(
      async () => {
        const now = await state();
        return now.dataset.counts[armedLabel] === SEED_PER_FLAVOUR + 2 ? now : undefined;
      },
      `two more "${armedLabel}" examples`,
      demo,
    );
    const captured = (await gallery(armedLabel)).filter((image) => image.source === 'node-red:capture');
    assert.equal(captured.length, SEED_PER_FLAVOUR + 2, 'stored by the capture node under the label given');

    // Frames keep coming; none is stored unasked.
    await waitFor(async () => ((await state()).stats.frames >= afterMqtt.stats.frames + 9 ? true : undefined), 'nine more frames', demo);
    const final = await state();
    assert.equal(final.dataset.total, SEED_PER_FLAVOUR * YOGHURT_FLAVOURS.length + 3);
    assert.equal(final.dataset.counts[label], SEED_PER_FLAVOUR + 1);
    assert.equal(final.dataset.counts[armedLabel], SEED_PER_FLAVOUR + 2);
  } catch (err) {
    if (err instanceof Error) err.message += `\nNode-RED output (last lines):\n${demo.log.slice(-40).join('\n')}`;
    throw err;
  } finally {
    await client?.endAsync();
    await demo.stop();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});
