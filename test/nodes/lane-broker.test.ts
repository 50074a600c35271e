/**
 * lane-broker (config node) in a Node-RED runtime, with lane-events as its user: settings and
 * credentials, the editor's validation, the retained state, status fan-out across a broker
 * restart, embedded broker binding, TLS, and redeploys that must leave no connection behind.
 * Uses the compiled nodes from dist/ (run `npm run build` first).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as vm from 'node:vm';
import mqtt from 'mqtt';
import helper, { type TestFlowsItem } from 'node-red-node-test-helper';
import type { Node } from 'node-red';
import type { ClassificationResult } from '../../src/classify/types.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/events/index.js';
import type { LaneBrokerDef, LaneBrokerNode } from '../../nodes/lane-broker/types.js';
import { startSorter, validateEvent } from '../lib/events/scenarios.js';
import { makeTestCertificates, mosquittoSkipReason, opensslSkipReason, startMosquitto } from '../support/mosquitto.js';
import { YOGHURT_CLASSES } from '../support/shared.js';
import { waitFor } from './support/lane-flow.js';

const brokerNode = require('../../dist/nodes/lane-broker/lane-broker.js');
const eventsNode = require('../../dist/nodes/lane-events/lane-events.js');
const { stationOptionsFrom, usesEmbeddedBroker } = require('../../dist/nodes/lane-broker/settings.js') as typeof import('../../nodes/lane-broker/settings.js');

helper.init(require.resolve('node-red'));

/** A node of a test flow, with its type's own settings. */
type FlowItem = TestFlowsItem & Record<string, unknown>;

const PREFIX = 'lane-vision/line-1/yoghurt-A';
const CONNECTED = 'node-red:common.status.connected';
const nodes = [brokerNode, eventsNode];

function brokerConfig(extra: Record<string, unknown> = {}): FlowItem {
  return {
    id: 'b1',
    type: 'lane-broker',
    name: '',
    url: '',
    embedded: false,
    embeddedHost: '',
    embeddedPort: 0,
    clientId: '',
    keepalive: 30,
    cleanSession: true,
    tlsVerify: true,
    line: 'line-1',
    station: 'yoghurt-A',
    topicTemplate: 'lane-vision/{line}/{station}/{event}',
    offlineQueueLimit: 1000,
    ...extra,
  };
}

function flowWith(extra: Record<string, unknown>, eventsName = ''): FlowItem[] {
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    brokerConfig(extra),
    { id: 'e1', z: 'f1', type: 'lane-events', name: eventsName, broker: 'b1', qos: '1', commands: true, outputs: 1, wires: [[]] },
    { id: 'c1', z: 'f1', type: 'catch', scope: ['e1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
}

function brokerOf(): LaneBrokerNode {
  return helper.getNode('b1') as unknown as LaneBrokerNode;
}


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const waitUntil = async (predicate: () => boolean, what: string, ms = 5000): Promise<void> => {
  await waitFor(predicate, what, ms);
};

function statusesOf(id: string): Array<{ fill?: string; text?: string }> {
  const seen: Array<{ fill?: string; text?: string }> = [];
  (helper.getNode(id) as unknown as NodeJS.EventEmitter).on('call:status', (call: { args: [{ fill?: string; text?: string }] }) => seen.push(call.args[0]));
  return seen;
}

function collect(id: string): any[] {
  const messages: any[] = [];
  helper.getNode(id).on('input', (msg: unknown) => messages.push(msg));
  return messages;
}

function classification(): ClassificationResult {
  return {
    label: YOGHURT_CLASSES[3],
    code: 4,
    confidence: 0.9,
    accepted: true,
    threshold: 0.6,
    topK: [{ label: YOGHURT_CLASSES[3], code: 4, confidence: 0.9 }],
    modelVersion: 2,
    backboneId: 'tm-mobilenet-v2-0.35',
    engine: 'tfjs',
    backend: 'wasm',
    frameHash: 'f'.repeat(64),
    timings: { queueMs: 0, decodeMs: 2, featuresMs: 20, headMs: 1, totalMs: 23 },
  };
}

/** TCP sockets and servers this process holds: what a leaked connection or broker would add to. */
function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

/** Runs the editor's registerType script with a stand-in RED, returning the node definitions it registers. */
function editorDefinitions(type: string): Record<string, any> {
  const html = fs.readFileSync(path.join(__dirname, '..', '..', 'dist', 'nodes', type, `${type}.html`), 'utf8');
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(script, `${type}.html has no editor script`);
  const definitions: Record<string, any> = {};
  const RED = {
    nodes: {
      registerType: (name: string, def: unknown) => {
        definitions[name] = def;
      },
      getType: (name: string) => definitions[name],
      node: () => null,
    },
  };
  // Outside an open dialog jQuery finds no inputs, so validators read the node's own properties.
  const $ = () => ({ length: 0 });
  vm.runInNewContext(script[1], { RED, $ });
  return definitions[type];
}

/** Plain data of an object made in another realm (the vm), for deepEqual. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

before(() => helper.startServer());
after(() => helper.stopServer());
afterEach(() => helper.unload());

describe('settings and credentials', () => {
  test('credentials are declared on both sides, kept out of the flow, and the embedded broker asks for them', async () => {
    const editor = editorDefinitions('lane-broker');
    await helper.load(nodes, flowWith({ embedded: true, embeddedPort: 0 }), { b1: { user: 'lane', password: 's3cret' } });
    const runtime = (helper as any).credentials.getDefinition('lane-broker');
    assert.deepEqual(runtime, {
      user: { type: 'text' },
      password: { type: 'password' },
      ca: { type: 'text' },
      cert: { type: 'text' },
      key: { type: 'password' },
      passphrase: { type: 'password' },
    });
    assert.deepEqual(plain(editor.credentials), runtime);
    for (const key of Object.keys(runtime)) assert.ok(!(key in editor.defaults), `${key} must not be a default (it would be exported with the flow)`);

    const b1 = brokerOf();
    assert.deepEqual([b1.credentials.user, b1.credentials.password], ['lane', 's3cret']);
    const deployed = JSON.stringify((helper as any)._redNodes.getFlows().flows);
    assert.ok(!deployed.includes('s3cret'), 'the password is not in the flow');

    await waitUntil(() => b1.station?.status === 'connected', 'the station logged in to its own broker');
    const url = b1.station!.embeddedBroker!.url;
    await assert.rejects(mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 2000 }), /Bad username or password|Not authorized/i);
    await assert.rejects(mqtt.connectAsync(url, { username: 'lane', password: 'wrong', reconnectPeriod: 0, connectTimeout: 2000 }), /Bad username or password|Not authorized/i);
    const client = await mqtt.connectAsync(url, { username: 'lane', password: 's3cret', reconnectPeriod: 0 });
    await client.endAsync();
  });

  test('the editor validates URL, ports, keepalive, queue, QoS, client id and the topic template', () => {
    const broker = editorDefinitions('lane-broker').defaults;
    const check = (field: string, value: unknown, node: Record<string, unknown> = {}) => broker[field].validate.call(node, value) === true;
    for (const url of ['mqtt://broker:1883', 'mqtts://broker.factory.local:8883', 'ws://10.0.0.5/mqtt', 'wss://[::1]:443/mqtt', 'mqtt://broker']) {
      assert.ok(check('url', url, { embedded: false }), url);
    }
    for (const url of ['', 'http://broker:1883', 'broker:1883', 'mqtt://user:pw@broker:1883', 'mqtt://broker:70000', 'mqtt://bro ker:1883']) {
      assert.ok(!check('url', url, { embedded: false }), url);
    }
    assert.ok(check('url', '', { embedded: true }), 'no URL needed with the embedded broker');
    assert.ok(check('embeddedPort', '0', { embedded: true }) && check('embeddedPort', 65535, { embedded: true }));
    assert.ok(!check('embeddedPort', '65536', { embedded: true }) && !check('embeddedPort', '-1', { embedded: true }) && !check('embeddedPort', '18x', { embedded: true }));
    assert.ok(check('embeddedPort', 'x', { embedded: false }), 'the port of an unused embedded broker is not checked');
    assert.ok(check('keepalive', '30') && !check('keepalive', '-5') && !check('keepalive', '1.5'));
    assert.ok(check('offlineQueueLimit', 0) && check('offlineQueueLimit', '50000') && !check('offlineQueueLimit', 50001));
    assert.ok(check('clientId', '', { cleanSession: true }) && !check('clientId', '', { cleanSession: false }) && check('clientId', 'lane-a', { cleanSession: false }));
    assert.ok(check('topicTemplate', 'lane-vision/{line}/{station}/{event}') && check('topicTemplate', 'plant/{station}/{event}'));
    for (const template of ['lane-vision/{line}/{station}', '{event}/x', 'a/+/{event}', 'a//{event}', '$SYS/{event}', 'a/x{event}']) {
      assert.ok(!check('topicTemplate', template), template);
    }
    assert.ok(check('line', 'line-1') && !check('line', 'line/1') && !check('station', 'a+b') && !check('station', ''));
    const events = editorDefinitions('lane-events').defaults;
    assert.deepEqual(['0', '1', '2', 1, '3', 'x'].map((q) => events.qos.validate.call({}, q) === true), [true, true, true, true, false, false]);
    assert.equal(events.qos.value, '1', 'QoS 1 by default');
    assert.equal(events.broker.type, 'lane-broker');
  });

  test('settings map onto the station: embedded only when asked (or with no URL), numbers from text, TLS only for a secure external broker', () => {
    const base = brokerConfig() as unknown as LaneBrokerDef;
    assert.equal(usesEmbeddedBroker({ url: '', embedded: undefined }), true);
    assert.equal(usesEmbeddedBroker({ url: 'mqtt://broker:1883', embedded: undefined }), false);
    assert.equal(usesEmbeddedBroker({ url: 'mqtt://broker:1883', embedded: true }), true);

    const external = stationOptionsFrom({ ...base, url: ' mqtts://broker:8883 ', keepalive: '45', offlineQueueLimit: '', clientId: 'lane-a', cleanSession: false }, { user: 'lane', password: 'pw', ca: 'CA', cert: 'CERT', key: 'KEY' });
    assert.equal(external.url, 'mqtts://broker:8883');
    assert.equal(external.embedded, undefined);
    assert.deepEqual([external.keepaliveSeconds, external.offlineQueueLimit, external.clientId, external.cleanSession], [45, undefined, 'lane-a', false]);
    assert.deepEqual([external.username, external.password], ['lane', 'pw']);
    assert.deepEqual(external.tls, { ca: 'CA', cert: 'CERT', key: 'KEY', rejectUnauthorized: true });
    assert.deepEqual(stationOptionsFrom({ ...base, url: 'wss://b/mqtt', tlsVerify: false }).tls, { rejectUnauthorized: false });
    assert.equal(stationOptionsFrom({ ...base, url: 'mqtt://b:1883', tlsVerify: false }).tls, undefined);

    const embedded = stationOptionsFrom({ ...base, embedded: true, embeddedPort: '1884', url: 'mqtts://ignored:8883' }, { user: 'lane', password: 'pw', ca: 'CA' });
    assert.deepEqual(embedded.embedded, { host: '127.0.0.1', port: 1884, credentials: { username: 'lane', password: 'pw' } });
    assert.equal(embedded.url, undefined);
    assert.equal(embedded.tls, undefined, 'TLS material is for an external broker');
    assert.equal(stationOptionsFrom({ ...base, embedded: true, embeddedHost: '0.0.0.0', embeddedPort: '' }).embedded!.port, 1884);
    // Retained commands are carried out only when asked for.
    assert.equal(stationOptionsFrom(base).acceptRetainedCommands, undefined);
    assert.equal(stationOptionsFrom({ ...base, acceptRetainedCommands: true }).acceptRetainedCommands, true);
    // Events on disk only when asked, in the user directory.
    assert.equal(stationOptionsFrom(base, {}, '/srv/node-red').outboxFile, undefined);
    assert.equal(stationOptionsFrom({ ...base, id: 'b1', durableOutbox: true }, {}, '/srv/node-red').outboxFile, path.join('/srv/node-red', 'lane-vision', 'outbox', 'b1.jsonl'));
  });

  test('unusable settings put an error status on every user and fail each message clearly', async () => {
    await helper.load(nodes, flowWith({ url: 'mqtt://127.0.0.1:1883', topicTemplate: 'lane-vision/{station}' }));
    const statuses = statusesOf('e1');
    const caught = collect('caught');
    assert.equal(brokerOf().station, undefined);
    assert.match(brokerOf().problem!.message, /\{event\}/);
    (helper.getNode('e1') as Node).receive({ classification: classification() });
    await waitUntil(() => caught.length === 1, 'caught error');
    assert.match(caught[0].error.message, /lane-events\.errors\.broker-invalid/);
    // The status was set at registration (before we listened): ask for it again.
    brokerOf().refreshStatus();
    await waitUntil(() => statuses.length > 0, 'status');
    assert.equal(statuses.at(-1)!.fill, 'red');
    assert.match(statuses.at(-1)!.text!, /node-red:common\.status\.error: .*\{event\}/);
  });
});

describe('embedded broker', () => {
  test('binds 127.0.0.1 by default, the given host otherwise, and a taken port is an error status, not a crash', async () => {
    await helper.load(nodes, flowWith({ embedded: true, embeddedPort: 0 }));
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
    assert.equal(brokerOf().station!.embeddedBroker!.host, '127.0.0.1');
    await helper.unload();

    await helper.load(nodes, flowWith({ embedded: true, embeddedPort: 0, embeddedHost: '0.0.0.0' }));
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected through loopback');
    assert.equal(brokerOf().station!.embeddedBroker!.host, '0.0.0.0');
    await helper.unload();

    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const takenPort = (squatter.address() as net.AddressInfo).port;
    try {
      await helper.load(nodes, flowWith({ embedded: true, embeddedPort: takenPort }));
      const statuses = statusesOf('e1');
      const caught = collect('caught');
      await waitUntil(() => brokerOf().station?.status === 'error', 'error status');
      await waitUntil(() => statuses.some((s) => /EADDRINUSE/.test(s.text ?? '')), 'EADDRINUSE on the user');
      assert.equal(statuses.at(-1)!.fill, 'red');
      // A lane sends results several times a second: one error for the fault, the rest counted on the status.
      for (let i = 0; i < 5; i++) (helper.getNode('e1') as Node).receive({ classification: classification() });
      // (the helper's RED._ gives the catalog key: one status update per event counted)
      await waitUntil(() => statuses.filter((s) => /status\.unsent/.test(s.text ?? '')).length === 4, 'the unsent events counted on the status');
      assert.equal(caught.length, 1, 'one error (one log line) for the busy port, not one per event');
      assert.match(caught[0].error.message, /not running: .*EADDRINUSE/);
    } finally {
      await helper.unload();
      squatter.close();
    }
  });
});

test('a full redeploy with the same settings keeps the embedded broker: clients stay connected, retained messages stay; deleting the node stops it', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const config = { embedded: true, embeddedPort: port };
  await helper.load(nodes, flowWith(config));
  await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
  const firstAedes = brokerOf().station!.embeddedBroker!.aedes;
  const sorter = await startSorter(`mqtt://127.0.0.1:${port}`, [], { reconnectPeriod: 0 });
  let sorterClosed = false;
  sorter.client.on('close', () => (sorterClosed = true));
  await sorter.client.publishAsync(`${PREFIX}/note`, 'kept', { qos: 1, retain: true });
  try {
    // Every node restarts: the broker node too, with the same settings.
    await helper.setFlows(flowWith(config, 'renamed'), 'full');
    assert.equal((helper.getNode('e1') as Node).name, 'renamed', 'the flow was redeployed');
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected after the redeploy');
    assert.equal(brokerOf().station!.embeddedBroker!.aedes, firstAedes, 'the same broker took the new station');
    assert.equal(sorterClosed, false, 'the sorter stayed connected through the deploy');
    const late = await startSorter(`mqtt://127.0.0.1:${port}`, [`${PREFIX}/note`]);
    try {
      await late.waitFor((r) => r.length === 1, 3000, 'the retained note');
      assert.deepEqual([late.received[0].json, late.received[0].retain], ['kept', true]);
    } finally {
      await late.client.endAsync();
    }
    // Deleting the broker node and its user stops the broker at once.
    await helper.setFlows(flowWith(config).filter((n) => n.id !== 'b1' && n.id !== 'e1'), 'full');
    await waitUntil(() => sorterClosed, 'the sorter disconnected by the stopped broker');
  } finally {
    await sorter.client.endAsync(true);
  }
});

interface Target {
  config: Record<string, unknown>;
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
  clients?: () => number;
  close(): Promise<void>;
}

const externalKits: Array<{ name: string; skip: string | false; start(): Promise<Target> }> = [
  {
    name: 'aedes',
    skip: false,
    async start() {
      let broker: EmbeddedBroker | undefined = await startEmbeddedBroker();
      const port = broker.port;
      return {
        config: { url: broker.url },
        url: broker.url,
        stop: async () => {
          await broker?.close();
          broker = undefined;
        },
        async restart() {
          await broker?.close();
          broker = await startEmbeddedBroker({ port });
        },
        clients: () => broker?.aedes.connectedClients ?? 0,
        close: async () => broker?.close(),
      };
    },
  },
  {
    name: 'mosquitto',
    skip: mosquittoSkipReason,
    async start() {
      const mosquitto = await startMosquitto();
      return {
        config: { url: mosquitto.url },
        url: mosquitto.url,
        stop: () => mosquitto.stop(),
        async restart() {
          await mosquitto.stop();
          await mosquitto.start();
        },
        close: () => mosquitto.close(),
      };
    },
  },
];

for (const kit of externalKits) {
  describe(`external ${kit.name}`, { skip: kit.skip }, () => {
    test('the retained state says online while deployed and offline (closed) after; status follows a broker restart', async () => {
      const target = await kit.start();
      try {
        await helper.load(nodes, flowWith(target.config));
        const statuses = statusesOf('e1');
        await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
        const watcher = await startSorter(target.url, [`${PREFIX}/state`]);
        try {
          await watcher.waitFor((r) => r.length >= 1, 3000, 'retained state');
          const first = watcher.received[0];
          assert.equal(first.retain, true);
          validateEvent.state(first.json);
          assert.deepEqual([first.json.status, first.json.reason], ['online', 'connected']);

          // Restart the broker under the running flow: every user sees the connection go and come back.
          const before = statuses.length;
          await target.restart();
          await waitUntil(() => statuses.slice(before).some((s) => s.text === CONNECTED), 'connected again', 8000);
          const seen = statuses.slice(before).map((s) => s.text ?? '');
          const lost = seen.findIndex((t) => /disconnected|reconnecting/.test(t));
          assert.ok(lost >= 0 && lost < seen.indexOf(CONNECTED), `statuses after the restart: ${JSON.stringify(seen)}`);
          assert.equal(statuses.at(-1)!.fill, 'green');

          // The watcher reconnects too; then the close must reach it as retained "offline".
          await watcher.waitFor((r) => r.some((m) => m.json.status === 'online' && m !== first), 8000, 'online after the restart');
          await helper.unload();
          await watcher.waitFor((r) => r.some((m) => m.json.status === 'offline'), 3000, 'offline state');
        } finally {
          await watcher.client.endAsync();
        }
        const late = await startSorter(target.url, [`${PREFIX}/state`]);
        try {
          await late.waitFor((r) => r.length >= 1, 3000, 'retained offline state');
          validateEvent.state(late.received[0].json);
          assert.deepEqual([late.received[0].json.status, late.received[0].json.reason, late.received[0].retain], ['offline', 'closed', true]);
        } finally {
          await late.client.endAsync();
        }
      } finally {
        await target.close();
      }
    });

    test('ten deploys leave no connection open; a node-only redeploy keeps the connection; removing the last user closes it', async () => {
      const target = await kit.start();
      try {
        const baseline = openSockets();
        for (let i = 0; i < 10; i++) {
          await helper.load(nodes, flowWith(target.config));
          await waitUntil(() => brokerOf().station?.status === 'connected', `connected (deploy ${i + 1})`);
          if (target.clients) assert.equal(target.clients(), 1, 'one connection per station');
          await helper.unload();
          if (target.clients) await waitUntil(() => target.clients!() === 0, `no client after unload ${i + 1}`, 2000);
        }
        // At most the baseline: sockets of earlier tests may still be closing when it was taken.
        await waitUntil(() => openSockets() <= baseline, `open sockets back to ${baseline} (now ${openSockets()})`, 3000);

        // Redeploying only the changed lane-events node keeps the shared connection (no offline flap).
        await helper.load(nodes, flowWith(target.config));
        await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
        const clientId = brokerOf().station!.clientId;
        const watcher = await startSorter(target.url, [`${PREFIX}/state`]);
        try {
          await watcher.waitFor((r) => r.length === 1, 3000, 'retained state');
          await helper.setFlows(flowWith(target.config, 'renamed'), 'nodes');
          assert.equal((helper.getNode('e1') as Node).name, 'renamed');
          await sleep(200);
          assert.equal(brokerOf().station!.clientId, clientId, 'same connection');
          assert.equal(brokerOf().station!.status, 'connected');
          assert.ok(watcher.received.every((m) => m.json.status === 'online'), 'no offline state on a node-only redeploy');
          if (target.clients) assert.equal(target.clients(), 2, 'the station and the watcher');

          // Deleting the last user disconnects, publishing offline.
          const withoutUser = flowWith(target.config, 'renamed').filter((n) => n.id !== 'e1');
          await helper.setFlows(withoutUser, 'nodes');
          await watcher.waitFor((r) => r.some((m) => m.json.status === 'offline'), 3000, 'offline after the last user left');
          assert.equal(brokerOf().station!.running, false);
          if (target.clients) await waitUntil(() => target.clients!() === 1, 'only the watcher left', 2000);
        } finally {
          await watcher.client.endAsync();
        }
      } finally {
        await helper.unload();
        await target.close();
      }
    });
  });
}

test('ten deploys with the embedded broker free its port and sockets each time', async () => {
  const baseline = openSockets();
  const ports: number[] = [];
  for (let i = 0; i < 10; i++) {
    await helper.load(nodes, flowWith({ embedded: true, embeddedPort: 0 }));
    await waitUntil(() => brokerOf().station?.status === 'connected', `connected (deploy ${i + 1})`);
    const broker = brokerOf().station!.embeddedBroker!;
    assert.equal(broker.aedes.connectedClients, 1);
    ports.push(broker.port);
    await helper.unload();
  }
  for (const port of ports) assert.ok(await refusesConnections(port), `port ${port} still open`);
  await waitUntil(() => openSockets() <= baseline, `open sockets back to ${baseline} (now ${openSockets()})`, 3000);
});

test('TLS: the CA, client certificate and key given as credentials text reach a Mosquitto that requires them', { skip: mosquittoSkipReason || opensslSkipReason }, async () => {
  const certs = makeTestCertificates();
  const mosquitto = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  try {
    const credentials = { ca: certs.ca.toString('utf8'), cert: certs.clientCert.toString('utf8'), key: certs.clientKey.toString('utf8') };
    await helper.load(nodes, flowWith({ url: mosquitto.url }), { b1: credentials });
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected over TLS');
    const watcher = await startSorter(mosquitto.url, [`${PREFIX}/result`], { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    try {
      (helper.getNode('e1') as Node).receive({ classification: classification() });
      await watcher.waitFor((r) => r.length === 1, 3000, 'result over TLS');
      validateEvent.result(watcher.received[0].json);
      assert.equal(watcher.received[0].json.backend, 'wasm');
    } finally {
      await watcher.client.endAsync();
    }
    await helper.unload();

    // Without the CA the broker's certificate cannot be trusted: the status says so.
    await helper.load(nodes, flowWith({ url: mosquitto.url }), { b1: { cert: credentials.cert, key: credentials.key } });
    const statuses = statusesOf('e1');
    await waitUntil(() => statuses.some((s) => /certificate/i.test(s.text ?? '')), 'a TLS reason on the status', 5000);
    assert.equal(statuses.at(-1)!.fill === 'green', false);
  } finally {
    await helper.unload();
    await mosquitto.close();
    fs.rmSync(certs.dir, { recursive: true, force: true });
  }
});

test("a core mqtt-broker config node (with its tls-config) is the site's broker: lane events reach it over TLS with its settings", { skip: mosquittoSkipReason || opensslSkipReason }, async () => {
  const certs = makeTestCertificates();
  const certDir = path.dirname(certs.caFile);
  const mosquitto = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile } });
  const coreNodes = [require(require.resolve('@node-red/nodes/core/network/05-tls.js')), require(require.resolve('@node-red/nodes/core/network/10-mqtt.js'))];
  const port = Number(new URL(mosquitto.url).port);
  try {
    await helper.load([...coreNodes, ...nodes], [
      ...flowWith({ mqttBroker: 'site', url: '', embedded: true }),
      { id: 'tls', type: 'tls-config', name: '', cert: path.join(certDir, 'client.crt'), key: path.join(certDir, 'client.key'), ca: certs.caFile, certname: '', keyname: '', caname: '', servername: '', verifyservercert: true },
      { id: 'site', type: 'mqtt-broker', name: 'site broker', broker: '127.0.0.1', port: String(port), tls: 'tls', usetls: true, clientid: 'plant-flows', protocolVersion: '4', keepalive: '60', cleansession: true, autoConnect: true },
    ]);
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected over the core broker node\'s TLS');
    assert.equal(brokerOf().station!.embeddedBroker, undefined, 'the embedded broker stays off when a site broker is chosen');
    const watcher = await startSorter(mosquitto.url, [`${PREFIX}/result`], { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    try {
      (helper.getNode('e1') as Node).receive({ classification: classification() });
      await watcher.waitFor((r) => r.length === 1, 3000, 'result on the site broker');
      validateEvent.result(watcher.received[0].json);
    } finally {
      await watcher.client.endAsync();
    }
    await helper.unload();

    // A missing core broker node: one error, on the status of every user.
    await helper.load(nodes, flowWith({ mqttBroker: 'gone' }));
    const statuses = statusesOf('e1');
    await waitUntil(() => statuses.some((s) => /no-core-broker/.test(s.text ?? '')), 'the reason on the status');
    assert.equal(statuses.at(-1)!.fill, 'red');
  } finally {
    await helper.unload();
    await mosquitto.close();
    fs.rmSync(certs.dir, { recursive: true, force: true });
  }
});
