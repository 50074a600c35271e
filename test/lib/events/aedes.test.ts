import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { isLaneVisionError } from '../../../src/errors.js';
import { buildModelEvent, LaneMqttConnection, startEmbeddedBroker } from '../../../src/events/index.js';
import { connectionOptions, defineBrokerScenarios, resultFor, sleep, startSorter } from './scenarios.js';

defineBrokerScenarios({
  name: 'aedes',
  skip: false,
  async start(options = {}) {
    const users = Object.entries(options.users ?? {});
    assert.ok(users.length <= 1, 'the embedded broker takes one user');
    const broker = await startEmbeddedBroker(users.length ? { credentials: { username: users[0][0], password: users[0][1] } } : {});
    return { url: broker.url, port: broker.port, close: () => broker.close() };
  },
});

test('the embedded broker binds 127.0.0.1 on a free port, and a taken port is a clear error', async () => {
  const broker = await startEmbeddedBroker();
  try {
    assert.equal(broker.host, '127.0.0.1');
    assert.ok(broker.port > 0);
    assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
    await assert.rejects(startEmbeddedBroker({ port: broker.port }), (err) => isLaneVisionError(err, 'BROKER_LISTEN_FAILED') && /EADDRINUSE/.test((err as Error).message));
    await assert.rejects(startEmbeddedBroker({ port: 70000 }), (err) => isLaneVisionError(err, 'BROKER_CONFIG_INVALID'));
  } finally {
    await broker.close();
  }
  // Closed means closed: nothing listens any more.
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(broker.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  assert.ok(refused);
});

test('connection options an engineer would not mean are refused up front', () => {
  const bad: Array<[Partial<Parameters<typeof connectionOptions>[1]> & { url?: string }, string]> = [
    [{ url: 'http://broker:1883' }, 'MQTT_URL_INVALID'],
    [{ url: 'not a url' }, 'MQTT_URL_INVALID'],
    [{ url: 'mqtt://user:pw@broker:1883' }, 'MQTT_CONFIG_INVALID'],
    [{ tls: { rejectUnauthorized: false } }, 'MQTT_CONFIG_INVALID'],
    [{ password: 'x' }, 'MQTT_CONFIG_INVALID'],
    [{ cleanSession: false }, 'MQTT_CONFIG_INVALID'],
    [{ qos: 3 as 1 }, 'MQTT_CONFIG_INVALID'],
    [{ offlineQueueLimit: 1e6 }, 'MQTT_CONFIG_INVALID'],
    [{ keepaliveSeconds: -1 }, 'MQTT_CONFIG_INVALID'],
    [{ station: 'a/b' }, 'TOPIC_VARIABLE_INVALID'],
    [{ topicTemplate: 'x/{station}' }, 'TOPIC_TEMPLATE_INVALID'],
  ];
  for (const [extra, code] of bad) {
    const { url = 'mqtt://127.0.0.1:1883', ...rest } = extra;
    assert.throws(() => new LaneMqttConnection(connectionOptions(url, rest)), (err) => isLaneVisionError(err, code), JSON.stringify(extra));
  }
  // mqtts with TLS material and a persistent session with a fixed client id are fine.
  const tls = new LaneMqttConnection(connectionOptions('mqtts://127.0.0.1:8883', { tls: { ca: Buffer.from('x'), rejectUnauthorized: true }, clientId: 'lane-1', cleanSession: false }));
  assert.equal(tls.clientId, 'lane-1');
  assert.throws(() => tls.publish('a/+/b', 'x'), (err) => isLaneVisionError(err, 'TOPIC_INVALID'));
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.throws(() => tls.publish(tls.topics.result, circular), (err) => isLaneVisionError(err, 'PAYLOAD_INVALID'));
});

test('before connecting, publishes wait in the offline queue; close() drops and counts them; later publishes fail', async () => {
  const conn = new LaneMqttConnection(connectionOptions('mqtt://127.0.0.1:1', { offlineQueueLimit: 2 }));
  const outcomes = [1, 2, 3].map((n) => conn.publish(conn.topics.result, { n }));
  assert.equal(await outcomes[0], 'dropped'); // the oldest made room for the third
  assert.deepEqual(conn.stats, { published: 3, delivered: 0, queued: 2, dropped: 1, failed: 0 });
  await conn.close();
  assert.deepEqual(await Promise.all(outcomes), ['dropped', 'dropped', 'dropped']);
  assert.deepEqual(conn.stats, { published: 3, delivered: 0, queued: 0, dropped: 3, failed: 0 });
  assert.equal(await conn.publish(conn.topics.result, { late: true }), 'failed');
  assert.equal(conn.stats.published, 3);
  assert.throws(() => conn.connect(), (err) => isLaneVisionError(err, 'MQTT_CLOSED'));
});

test('after a broker restart that lost its retained messages, the reconnect restores the online state and the model', async () => {
  const first = await startEmbeddedBroker();
  const conn = new LaneMqttConnection(connectionOptions(first.url, { reconnectPeriodMs: 100 }));
  const statuses: string[] = [];
  conn.on('status', (e) => statuses.push(e.status));
  let second: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
  try {
    conn.connect();
    await conn.whenConnected(3000);
    const model = buildModelEvent({ line: 'line-1', station: 'yoghurt-A' }, { modelVersion: 'v3', labels: [{ label: 'Arla-Natural-Yoghurt', code: 3 }] });
    assert.equal(await conn.publishModel(model), 'delivered');
    await first.close(); // aedes keeps retained messages in memory only
    for (const deadline = Date.now() + 3000; conn.connected && Date.now() < deadline; ) await sleep(5);
    assert.equal(conn.connected, false);
    second = await startEmbeddedBroker({ port: first.port });
    await conn.whenConnected(3000);
    const late = await startSorter(second.url, [conn.topics.state, conn.topics.model]);
    await late.waitFor((r) => r.length >= 2, 3000, 'retained state and model after the restart');
    assert.equal(late.received.find((r) => r.topic === conn.topics.state)?.json.status, 'online');
    assert.equal(late.received.find((r) => r.topic === conn.topics.model)?.json.eventId, model.eventId);
    assert.ok(late.received.every((r) => r.retain));
    await late.client.endAsync();
    assert.deepEqual(statuses.slice(0, 3), ['connecting', 'connected', 'disconnected']);
    assert.equal(statuses.at(-1), 'connected');
  } finally {
    await conn.close();
    await second?.close();
  }
});

test('a broker down at deploy: no subscribe warning, one steady "reconnecting" across retries, commands arrive once it is up', { timeout: 20_000 }, async () => {
  // A stand-in that accepts and drops every connection, so each retry is seen (and counted) here.
  let attempts = 0;
  let nextAttempt: () => void = () => {};
  const refuser = net.createServer((socket) => {
    attempts++;
    nextAttempt();
    socket.destroy();
  });
  await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
  const port = (refuser.address() as net.AddressInfo).port;
  const { LaneStation } = await import('../../../src/events/index.js');
  const station = new LaneStation({ ...connectionOptions(`mqtt://127.0.0.1:${port}`), reconnectPeriodMs: 20 });
  const statuses: string[] = [];
  const warnings: string[] = [];
  const commands: string[] = [];
  station.on('status', (e) => {
    if (statuses[statuses.length - 1] !== e.status) statuses.push(e.status);
  });
  station.on('warning', (err) => warnings.push(err.message));
  station.on('command', (c) => commands.push(c.name));
  station.listenForCommands();
  let broker: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
  try {
    await station.start();
    await new Promise<void>((resolve) => {
      nextAttempt = () => attempts >= 4 && resolve();
      nextAttempt();
    });
    await new Promise<void>((resolve) => refuser.close(() => resolve()));
    broker = await startEmbeddedBroker({ port });
    for (; !station.listening; ) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(warnings, [], 'the subscription waited for the broker instead of warning');
    assert.deepEqual(statuses, ['connecting', 'disconnected', 'reconnecting', 'connected'], `one reconnecting for ${attempts} attempts`);
    const sorter = await startSorter(broker.url, []);
    try {
      await sorter.client.publishAsync('lane-vision/line-1/yoghurt-A/cmd/train', '{}', { qos: 1 });
      for (; commands.length === 0; ) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(commands, ['train']);
    } finally {
      await sorter.client.endAsync();
    }
  } finally {
    await station.stop();
    await broker?.close();
    refuser.close();
  }
});

test('with an outbox file, events queued when the process stopped are published by the next run with their eventIds, once', { timeout: 30_000 }, async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { DiskOutbox } = await import('../../../src/events/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'lane-outbox-'));
  const outboxFile = join(dir, 'station.jsonl');
  const events = [1, 2, 3].map((seq) => resultFor(seq));
  let broker: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
  try {
    // First run: the broker is away; three results at QoS 1 and one at QoS 0 wait, then Node-RED stops.
    const first = new LaneMqttConnection(connectionOptions('mqtt://127.0.0.1:1', { outboxFile, birthAndWill: false }));
    const outcomes = events.map((event) => first.publishResult(event));
    const atQos0 = first.publish(first.topics.result, resultFor(4), { qos: 0 });
    await first.close();
    assert.deepEqual(await Promise.all([...outcomes, atQos0]), ['dropped', 'dropped', 'dropped', 'dropped'], 'not sent by the first run');

    // Second run, broker back: the three go out first, as they were.
    broker = await startEmbeddedBroker();
    const sorter = await startSorter(broker.url, ['lane-vision/+/+/result']);
    const second = new LaneMqttConnection(connectionOptions(broker.url, { outboxFile, birthAndWill: false }));
    try {
      second.connect();
      await second.whenConnected(5000);
      await sorter.waitFor((r) => r.length >= 3, 5000, 'the three events of the first run');
      assert.deepEqual(sorter.received.map((r) => r.json.eventId), events.map((e) => e.eventId), 'original eventIds, in order; the QoS 0 one was not kept');
      assert.deepEqual(sorter.received.map((r) => r.json), JSON.parse(JSON.stringify(events)));
      assert.equal(second.stats.delivered, 3);
    } finally {
      await second.close();
      await sorter.client.endAsync();
    }
    // Delivered: nothing left for a third run.
    const third = DiskOutbox.open(outboxFile);
    assert.deepEqual(third.pending, []);
    third.outbox.close();
  } finally {
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the outbox journal skips a line torn by a crash and stays bounded by compaction', async () => {
  const { mkdtempSync, rmSync, appendFileSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { DiskOutbox } = await import('../../../src/events/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'lane-outbox-'));
  const file = join(dir, 'o.jsonl');
  try {
    const { outbox } = DiskOutbox.open(file);
    const kept = outbox.add('t/result', Buffer.from('{"n":1}'), 1);
    for (let i = 0; i < 3000; i++) outbox.done(outbox.add('t/result', Buffer.from(`{"n":${i}}`), 1));
    outbox.close();
    assert.ok(readFileSync(file, 'utf8').split('\n').length < 2100, 'compacted while running');
    appendFileSync(file, '{"add":99999,"topic":"t/res'); // the process died mid-write
    const reopened = DiskOutbox.open(file);
    assert.deepEqual(reopened.pending.map((e) => [e.id, e.payload.toString()]), [[kept, '{"n":1}']]);
    const next = reopened.outbox.add('t/result', Buffer.from('{"n":2}'), 1);
    assert.ok(next > kept, 'ids keep growing across runs');
    reopened.outbox.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
