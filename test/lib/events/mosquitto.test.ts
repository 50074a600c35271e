import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { isLaneVisionError } from '../../../src/errors.js';
import { LaneMqttConnection, type LaneMqttConnectionOptions } from '../../../src/events/index.js';
import { makeTestCertificates, mosquittoSkipReason, opensslSkipReason, startMosquitto } from '../../support/mosquitto.js';
import { connectionOptions, defineBrokerScenarios, resultFor, sleep, startSorter } from './scenarios.js';

if (mosquittoSkipReason) console.log(mosquittoSkipReason);

defineBrokerScenarios({
  name: 'mosquitto',
  skip: mosquittoSkipReason,
  async start(options = {}) {
    const broker = await startMosquitto({ users: options.users });
    return { url: broker.url, port: broker.port, close: () => broker.close() };
  },
});

test('mosquitto: nothing is lost when the broker is killed and restarted mid-stream (QoS 1, persistent sorter session)', { skip: mosquittoSkipReason }, async () => {
  const broker = await startMosquitto();
  // The sorter keeps a persistent session and comes back later than the publisher, so what
  // the publisher flushes after the restart must be queued by the broker for the sorter.
  const sorter = await startSorter(broker.url, ['lane-vision/+/+/result'], { clientId: 'sorter-nothing-lost', clean: false, reconnectPeriod: 2500 });
  const sessionPresent: boolean[] = [];
  let receivedBeforeReconnect = 0;
  sorter.client.on('connect', (connack) => {
    sessionPresent.push(connack.sessionPresent);
    receivedBeforeReconnect = sorter.received.length;
  });
  await broker.waitForSave(Date.now()); // the sorter's session is on disk before the crash
  const conn = new LaneMqttConnection(connectionOptions(broker.url, { reconnectPeriodMs: 200, offlineQueueLimit: 10_000 }));
  const statuses: string[] = [];
  conn.on('status', (e) => statuses.push(e.status));
  try {
    conn.connect();
    await conn.whenConnected(3000);
    type Phase = 'before' | 'outage' | 'after';
    const sent: Array<{ eventId: string; phase: Phase }> = [];
    let phase: Phase = 'before';
    let running = true;
    const publisher = (async () => {
      for (let seq = 0; running; seq++) {
        const event = resultFor(seq);
        sent.push({ eventId: event.eventId, phase });
        void conn.publishResult(event);
        await sleep(4);
      }
    })();
    await sleep(500);
    await broker.kill();
    phase = 'outage';
    await sleep(1200);
    phase = 'after';
    await broker.start();
    await sleep(500);
    running = false;
    await publisher;
    const publishedAt = Date.now();

    const unique = () => new Set(sorter.received.map((r) => r.json.eventId as string));
    await sorter.waitFor(() => sent.every((s) => unique().has(s.eventId)), 15_000, 'every event');
    const drainMs = Date.now() - publishedAt;
    const queuedForSorter = sent.length - receivedBeforeReconnect;
    await sleep(200); // let late duplicates arrive so they are counted
    const received = sorter.received.length;
    const got = unique();
    const count = (p: Phase) => sent.filter((s) => s.phase === p).length;
    const duringOutage = sent.filter((s) => s.phase === 'outage');
    assert.ok(duringOutage.length > 100, `only ${duringOutage.length} events were published during the outage`);
    assert.ok(duringOutage.every((s) => got.has(s.eventId)), 'an event published during the outage was lost');
    assert.equal(got.size, sent.length, 'received distinct events = sent');
    assert.ok([...got].every((id) => sent.some((s) => s.eventId === id)), 'nothing unexpected received');
    assert.equal(conn.dropped, 0);
    assert.ok(statuses.includes('reconnecting') && statuses.at(-1) === 'connected', statuses.join(' > '));
    assert.equal(sessionPresent.at(-1), true, 'the restarted broker kept the sorter session');
    assert.ok(queuedForSorter >= duringOutage.length, 'the outage events waited in the broker for the sorter, not delivered live');
    console.log(
      `mosquitto nothing-lost: sent ${sent.length} (before ${count('before')}, during outage ${count('outage')}, after ${count('after')}); ` +
        `received ${received} messages = ${got.size} distinct + ${received - got.size} duplicates; dropped ${conn.dropped}; ` +
        `${queuedForSorter} waited in the broker for the sorter's session, drained ${drainMs} ms after the last publish; ` +
        `publisher stats ${JSON.stringify(conn.stats)}`,
    );
  } finally {
    await conn.close();
    await sorter.client.endAsync();
    await broker.close();
  }
});

test('mosquitto: mqtts with CA and client certificate buffers; a missing client certificate or CA is reported', { skip: mosquittoSkipReason || opensslSkipReason }, async () => {
  const certs = makeTestCertificates();
  const broker = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  const conns: LaneMqttConnection[] = [];
  const open = (tls: LaneMqttConnectionOptions['tls']) => {
    const conn = new LaneMqttConnection(connectionOptions(broker.url, { tls, reconnectPeriodMs: 300 }));
    conns.push(conn);
    return conn.connect();
  };
  try {
    assert.match(broker.url, /^mqtts:/);
    const good = open({ ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    await good.whenConnected(3000);
    assert.equal(await good.publishResult(resultFor(1)), 'delivered');
    // Without our CA the broker certificate is not trusted; without a client certificate the broker hangs up.
    for (const [tls, why] of [[{ cert: certs.clientCert, key: certs.clientKey }, /certificate/i], [{ ca: certs.ca }, /./]] as const) {
      const conn = open(tls);
      await assert.rejects(conn.whenConnected(1000), (err) => isLaneVisionError(err, 'MQTT_CONNECT_TIMEOUT') && why.test((err as Error).message));
      assert.equal(conn.connected, false);
    }
  } finally {
    for (const conn of conns) await conn.close();
    await broker.close();
    fs.rmSync(certs.dir, { recursive: true, force: true });
  }
});
