/**
 * Broker scenarios run against both aedes (embedded) and a real Mosquitto, so the
 * connection is checked on the broker a factory is likely to run, not only on ours.
 * A "sorter" written with plain mqtt.js plays the machine downstream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import Ajv2020 from 'ajv/dist/2020.js';
import { LaneVisionError, isLaneVisionError } from '../../../src/errors.js';
import {
  buildModelEvent,
  buildResultEvent,
  laneEventSchemas,
  LaneMqttConnection,
  type ConnectionStatus,
  type LaneCommand,
  type LaneMqttConnectionOptions,
  type PublishOutcome,
} from '../../../src/events/index.js';

export interface TestBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface BrokerKit {
  name: string;
  skip: string | false;
  start(options?: { users?: Record<string, string> }): Promise<TestBroker>;
}

const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
export const validateEvent = Object.fromEntries(Object.entries(laneEventSchemas).map(([k, s]) => [k, ajv.compile(s as object)])) as Record<
  keyof typeof laneEventSchemas,
  ReturnType<typeof ajv.compile>
>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface Received {
  topic: string;
  json: any;
  retain: boolean;
}

/** A plain mqtt.js subscriber that records what it gets. */
export async function startSorter(url: string, filters: string[], options: IClientOptions = {}): Promise<{ client: MqttClient; received: Received[]; waitFor: (pred: (r: Received[]) => boolean, ms?: number, what?: string) => Promise<void> }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, connectTimeout: 3000, ...options });
  const received: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      json = payload.toString('utf8');
    }
    received.push({ topic, json, retain: packet.retain });
  });
  if (filters.length > 0) await client.subscribeAsync(filters, { qos: 1 });
  const waitFor = async (pred: (r: Received[]) => boolean, ms = 5000, what = 'messages') => {
    const deadline = Date.now() + ms;
    while (!pred(received)) {
      if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}; got ${received.length} messages`);
      await sleep(10);
    }
  };
  return { client, received, waitFor };
}

/** TCP relay in front of a broker: cut() makes an outage for whoever connects through it. */
export async function startProxy(targetPort: number): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = async () => {
    const s = net.createServer((downstream) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      const drop = () => {
        downstream.destroy();
        upstream.destroy();
        sockets.delete(downstream);
        sockets.delete(upstream);
      };
      for (const socket of [downstream, upstream]) {
        sockets.add(socket);
        socket.on('error', drop).on('close', drop);
      }
      downstream.pipe(upstream).pipe(downstream);
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', resolve));
    port = (s.address() as net.AddressInfo).port;
    server = s;
  };
  const cut = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  return { url: `mqtt://127.0.0.1:${port}`, cut, restore: listen };
}

const gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

function memoryInUse(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const ctx = { line: 'line-1', station: 'yoghurt-A' };
const topK = [
  { label: 'Valio-Vanilla-Yoghurt', code: 4, confidence: 0.8 },
  { label: 'Arla-Natural-Yoghurt', code: 3, confidence: 0.15 },
];

export function resultFor(seq: number) {
  return buildResultEvent(ctx, { topK, accepted: seq % 7 !== 0, modelVersion: 'v1', backend: 'cpu', frameId: `frame-${seq}`, timings: { totalMs: seq % 20 } });
}

export function connectionOptions(url: string, extra: Partial<LaneMqttConnectionOptions> = {}): LaneMqttConnectionOptions {
  return { url, ...ctx, reconnectPeriodMs: 200, connectTimeoutMs: 3000, backend: 'cpu', modelVersion: 'v1', ...extra };
}

export function defineBrokerScenarios(kit: BrokerKit): void {
  const skip = kit.skip;

  test(`${kit.name}: results round-trip at QoS 1 to a sorter subscriber, in order and schema-valid`, { skip }, async () => {
    const broker = await kit.start();
    const sorter = await startSorter(broker.url, ['lane-vision/+/+/result']);
    const conn = new LaneMqttConnection(connectionOptions(broker.url));
    try {
      conn.connect();
      await conn.whenConnected(3000);
      const sent = Array.from({ length: 100 }, (_, i) => resultFor(i));
      const outcomes = await Promise.all(sent.map((event) => conn.publishResult(event)));
      assert.deepEqual(new Set(outcomes), new Set<PublishOutcome>(['delivered']));
      await sorter.waitFor((r) => r.length >= sent.length, 5000, '100 results');
      assert.deepEqual(sorter.received.map((r) => r.json.eventId), sent.map((e) => e.eventId));
      for (const { json, topic } of sorter.received) {
        assert.equal(topic, 'lane-vision/line-1/yoghurt-A/result');
        assert.ok(validateEvent.result(json), ajv.errorsText(validateEvent.result.errors));
      }
      assert.equal(sorter.received.filter((r) => r.json.label === 'unknown').length, sent.filter((e) => !e.accepted).length);
      assert.deepEqual(conn.stats, { published: 100, delivered: 100, queued: 0, dropped: 0, failed: 0 });
    } finally {
      await conn.close();
      await sorter.client.endAsync();
      await broker.close();
    }
  });

  test(`${kit.name}: retained state and model reach a late subscriber; close() leaves a retained offline state`, { skip }, async () => {
    const broker = await kit.start();
    const conn = new LaneMqttConnection(connectionOptions(broker.url, { backend: 'wasm', modelVersion: 'v7' }));
    try {
      conn.connect();
      await conn.whenConnected(3000);
      const model = buildModelEvent(ctx, { modelVersion: 'v7', labels: [{ label: 'Arla-Natural-Yoghurt', code: 3 }, { label: 'Valio-Vanilla-Yoghurt', code: 4 }], metrics: { valAccuracy: 0.9 } });
      assert.equal(await conn.publishModel(model), 'delivered');
      assert.equal(await conn.updateState({ frames: { queued: 0, dropped: 2, processed: 50 } }), 'delivered');

      const late = await startSorter(broker.url, [conn.topics.state, conn.topics.model]);
      await late.waitFor((r) => r.length >= 2, 3000, 'retained state and model');
      const state = late.received.find((r) => r.topic === conn.topics.state)!;
      const retainedModel = late.received.find((r) => r.topic === conn.topics.model)!;
      assert.equal(state.retain, true);
      assert.equal(retainedModel.retain, true);
      assert.ok(validateEvent.state(state.json), ajv.errorsText(validateEvent.state.errors));
      assert.equal(state.json.status, 'online');
      assert.equal(state.json.reason, 'update');
      assert.deepEqual(state.json.frames, { queued: 0, dropped: 2, processed: 50 });
      assert.equal(state.json.backend, 'wasm');
      assert.deepEqual(retainedModel.json, JSON.parse(JSON.stringify(model)));
      await late.client.endAsync();

      await conn.close({ publishOffline: true });
      assert.equal(conn.status, 'disconnected');
      const later = await startSorter(broker.url, [conn.topics.state]);
      await later.waitFor((r) => r.length >= 1, 3000, 'retained offline state');
      assert.equal(later.received[0].json.status, 'offline');
      assert.equal(later.received[0].json.reason, 'closed');
      assert.equal(later.received[0].retain, true);
      await later.client.endAsync();
    } finally {
      await conn.close();
      await broker.close();
    }
  });

  test(`${kit.name}: last will publishes the retained offline state when the socket dies`, { skip }, async () => {
    const broker = await kit.start();
    const watcher = await startSorter(broker.url, ['lane-vision/+/+/state']);
    const conn = new LaneMqttConnection(connectionOptions(broker.url, { reconnectPeriodMs: 0 }));
    const statuses: ConnectionStatus[] = [];
    conn.on('status', (e) => statuses.push(e.status));
    try {
      conn.connect();
      await conn.whenConnected(3000);
      await watcher.waitFor((r) => r.some((m) => m.json.status === 'online'), 3000, 'birth');
      // An abrupt end: no DISCONNECT packet, as when the PC loses power or the cable is pulled.
      (conn as unknown as { client: MqttClient }).client.stream.destroy();
      await watcher.waitFor((r) => r.some((m) => m.json.status === 'offline'), 5000, 'last will');
      const will = watcher.received.find((m) => m.json.status === 'offline')!;
      assert.equal(will.json.reason, 'connection-lost');
      assert.equal(will.json.clientId, conn.clientId);
      assert.ok(validateEvent.state(will.json), ajv.errorsText(validateEvent.state.errors));
      const late = await startSorter(broker.url, [conn.topics.state]);
      await late.waitFor((r) => r.length >= 1, 3000, 'retained will');
      assert.equal(late.received[0].json.reason, 'connection-lost');
      assert.equal(late.received[0].retain, true);
      await late.client.endAsync();
      assert.equal(conn.status, 'disconnected');
      assert.deepEqual(statuses, ['connecting', 'connected', 'disconnected']);
    } finally {
      await conn.close();
      await watcher.client.endAsync();
      await broker.close();
    }
  });

  test(`${kit.name}: a retained command is not carried out at connect (answered with COMMAND_RETAINED) unless retained commands are accepted`, { skip }, async () => {
    const broker = await kit.start();
    const sender = await startSorter(broker.url, ['lane-vision/+/+/error']);
    const cautious = new LaneMqttConnection(connectionOptions(broker.url));
    const accepting = new LaneMqttConnection(connectionOptions(broker.url, { acceptRetainedCommands: true }));
    const trainTopic = cautious.topics.command('train');
    const handledBy = { cautious: [] as string[], accepting: [] as string[] };
    try {
      // Left on the broker by a dashboard that set the retain flag by mistake.
      await sender.client.publishAsync(trainTopic, '{"requestId":"stale-1"}', { qos: 1, retain: true });
      for (const [name, conn] of [['cautious', cautious], ['accepting', accepting]] as const) {
        conn.connect();
        await conn.whenConnected(3000);
        await conn.subscribeCommands((command) => void handledBy[name].push(`${command.name}:${command.requestId ?? ''}`));
      }
      await sender.waitFor((r) => r.length >= 1, 5000, 'the retained command answered');
      const [answer] = sender.received.map((r) => r.json);
      assert.ok(validateEvent.error(answer), ajv.errorsText(validateEvent.error.errors));
      assert.deepEqual([answer.code, answer.command, answer.source], ['COMMAND_RETAINED', 'train', 'command']);
      assert.match(answer.message, /retained command .* was ignored/);
      // A live command after it is carried out by both: the refusal is about the stored copy only.
      await sender.client.publishAsync(trainTopic, '{"requestId":"live-1"}', { qos: 1 });
      for (; handledBy.cautious.length < 1 || handledBy.accepting.length < 2; ) await sleep(10);
      assert.deepEqual(handledBy.cautious, ['train:live-1'], 'the retained one was not carried out');
      assert.deepEqual(handledBy.accepting, ['train:stale-1', 'train:live-1'], 'opted in: carried out');
      assert.equal(sender.received.length, 1, 'one answer, from the cautious connection only');
    } finally {
      await sender.client.publishAsync(trainTopic, '', { qos: 1, retain: true }).catch(() => undefined);
      await cautious.close();
      await accepting.close();
      await sender.client.endAsync();
      await broker.close();
    }
  });

  test(`${kit.name}: commands reach the handler; bad commands and handler failures are answered on the error topic`, { skip }, async () => {
    const broker = await kit.start();
    const conn = new LaneMqttConnection(connectionOptions(broker.url));
    const sender = await startSorter(broker.url, ['lane-vision/+/+/error']);
    const handled: LaneCommand[] = [];
    try {
      conn.connect();
      await conn.whenConnected(3000);
      await conn.subscribeCommands((command) => {
        handled.push(command);
        if (command.name === 'rollback') throw new LaneVisionError('MODEL_VERSION_UNKNOWN', `No model ${command.version} in the store.`);
        if (command.name === 'train') return Promise.reject(new LaneVisionError('TRAINING_BUSY', 'A training job is already running.'));
      });
      const c = (name: string) => conn.topics.commandFilter.replace(/\+$/, name);
      const sends: Array<[string, string]> = [
        [c('capture'), '{"label":"Valio-Vanilla-Yoghurt","count":3,"requestId":"ok-1"}'],
        [c('threshold'), '0.8'],
        [c('capture'), '{"label":"../etc","requestId":"bad-label"}'],
        [c('threshold'), '{"threshold": '],
        [c('explode'), '{}'],
        [c('capture'), JSON.stringify({ label: 'x', pad: 'y'.repeat(5000) })],
        [c('rollback'), '{"version":"v99","requestId":"rb-1"}'],
        [c('train'), ''],
      ];
      for (const [topic, payload] of sends) await sender.client.publishAsync(topic, payload, { qos: 1 });
      await sender.waitFor((r) => r.length >= 6, 5000, '6 error answers');
      await sleep(100); // nothing more should arrive
      const errors = sender.received.map((r) => r.json);
      for (const e of errors) assert.ok(validateEvent.error(e), ajv.errorsText(validateEvent.error.errors));
      assert.deepEqual(
        errors.map((e) => [e.code, e.command, e.requestId]).sort(),
        [
          ['COMMAND_INVALID_JSON', 'threshold', undefined],
          ['COMMAND_TOO_LARGE', 'capture', undefined],
          ['COMMAND_UNKNOWN', 'explode', undefined],
          ['LABEL_INVALID', 'capture', 'bad-label'],
          ['MODEL_VERSION_UNKNOWN', 'rollback', 'rb-1'],
          ['TRAINING_BUSY', 'train', undefined],
        ].sort(),
      );
      assert.ok(errors.every((e) => e.source === 'command' && e.line === 'line-1' && e.station === 'yoghurt-A'));
      assert.deepEqual(handled, [
        { name: 'capture', label: 'Valio-Vanilla-Yoghurt', count: 3, requestId: 'ok-1' },
        { name: 'threshold', threshold: 0.8 },
        { name: 'rollback', version: 'v99', requestId: 'rb-1' },
        { name: 'train' },
      ]);
      // The connection still works after all that.
      assert.equal(await conn.publishResult(resultFor(1)), 'delivered');
    } finally {
      await conn.close();
      await sender.client.endAsync();
      await broker.close();
    }
  });

  test(`${kit.name}: credentials are accepted, and a refusal is reported at once as a status error`, { skip }, async () => {
    const broker = await kit.start({ users: { lane: 's3cret-Ä' } });
    const good = new LaneMqttConnection(connectionOptions(broker.url, { username: 'lane', password: 's3cret-Ä' }));
    const wrong = new LaneMqttConnection(connectionOptions(broker.url, { username: 'lane', password: 'guess' }));
    const anonymous = new LaneMqttConnection(connectionOptions(broker.url));
    try {
      good.connect();
      await good.whenConnected(3000);
      assert.equal(await good.publishResult(resultFor(1)), 'delivered');
      for (const conn of [wrong, anonymous]) {
        const statuses: Array<{ status: ConnectionStatus; error?: string }> = [];
        conn.on('status', (e) => statuses.push({ status: e.status, error: e.error?.message }));
        conn.connect();
        // A refusal, not the timeout's error: it was reported without waiting for the timeout.
        await assert.rejects(conn.whenConnected(60_000), (err) => isLaneVisionError(err, 'MQTT_CONNECTION_REFUSED') && /refused/i.test((err as Error).message));
        assert.equal(conn.status, 'error');
        assert.ok(statuses.some((s) => s.status === 'error' && /not authorized|bad user/i.test(s.error ?? '')), JSON.stringify(statuses));
        // mqtt.js does not retry a refusal: the status must stay 'error', not flap.
        await sleep(500);
        assert.equal(conn.status, 'error');
      }
    } finally {
      for (const conn of [good, wrong, anonymous]) await conn.close();
      await broker.close();
    }
  });

  test(`${kit.name}: a long outage with a tiny offline queue drops the oldest, counts them, and memory stays bounded`, { skip }, async () => {
    const broker = await kit.start();
    const proxy = await startProxy(broker.port);
    const sorter = await startSorter(broker.url, ['lane-vision/+/+/result', 'lane-vision/+/+/state']);
    const cap = 25;
    const conn = new LaneMqttConnection(connectionOptions(proxy.url, { offlineQueueLimit: cap, reconnectPeriodMs: 100 }));
    const statuses: ConnectionStatus[] = [];
    conn.on('status', (e) => statuses.push(e.status));
    try {
      conn.connect();
      await conn.whenConnected(3000);
      for (let seq = 0; seq < 10; seq++) assert.equal(await conn.publish(conn.topics.result, { seq }), 'delivered');

      await proxy.cut();
      const deadline = Date.now() + 3000;
      while (conn.connected && Date.now() < deadline) await sleep(5);
      assert.equal(conn.connected, false, 'the outage was noticed');

      const outage = 4000;
      const padding = 'p'.repeat(16 * 1024); // 4000 x 16 KiB = 64 MiB if nothing were dropped
      const before = memoryInUse();
      const outcomes: Array<Promise<PublishOutcome>> = [];
      for (let seq = 10; seq < 10 + outage; seq++) outcomes.push(conn.publish(conn.topics.result, `{"seq":${seq},"pad":"${padding}"}`));
      const grown = memoryInUse() - before;
      assert.equal(conn.stats.queued, cap);
      assert.equal(conn.dropped, outage - cap);
      assert.ok(grown < 24 * 1024 * 1024, `memory grew by ${(grown / 1048576).toFixed(1)} MiB during the outage`);
      const early = await Promise.all(outcomes.slice(0, outage - cap));
      assert.ok(early.every((o) => o === 'dropped'));

      await proxy.restore();
      await conn.whenConnected(5000);
      const late = await Promise.all(outcomes.slice(outage - cap));
      assert.ok(late.every((o) => o === 'delivered'));
      const results = () => sorter.received.filter((r) => r.topic.endsWith('/result'));
      await sorter.waitFor(() => results().length >= 10 + cap, 5000, 'the queued results');
      const seqs = results().map((r) => r.json.seq as number);
      const expected = [...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: cap }, (_, i) => 10 + outage - cap + i)];
      assert.deepEqual(seqs, expected);
      // The birth after reconnecting tells the sorter what was lost.
      await sorter.waitFor((r) => r.some((m) => m.topic.endsWith('/state') && m.json.outbox?.dropped === outage - cap), 3000, 'state with dropped');
      assert.deepEqual(conn.stats, { published: 10 + outage, delivered: 10 + cap, queued: 0, dropped: outage - cap, failed: 0 });
      assert.deepEqual(statuses.slice(0, 3), ['connecting', 'connected', 'disconnected']);
      assert.ok(statuses.includes('reconnecting'));
      assert.equal(statuses.at(-1), 'connected');
      console.log(`${kit.name} cap test: cap ${cap}, published during outage ${outage}, dropped ${conn.dropped}, delivered after reconnect ${cap}, memory growth ${(grown / 1048576).toFixed(2)} MiB`);
    } finally {
      await conn.close();
      await proxy.cut();
      await sorter.client.endAsync();
      await broker.close();
    }
  });
}
