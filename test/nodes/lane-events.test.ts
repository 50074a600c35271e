/**
 * lane-events in a Node-RED runtime (node-red-node-test-helper, compiled nodes from dist/),
 * against the embedded aedes broker and a real Mosquitto; a plain mqtt.js client plays the
 * sorter/HMI on the other side. Run `npm run build` first.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import helper, { type TestFlowsItem } from 'node-red-node-test-helper';
import type { Node, NodeMessage } from 'node-red';
import type { ClassificationResult } from '../../src/classify/types.js';
import type { LaneBrokerNode } from '../../nodes/lane-broker/types.js';
import { startSorter, validateEvent, type Received } from '../lib/events/scenarios.js';
import { mosquittoSkipReason, startMosquitto } from '../support/mosquitto.js';
import { YOGHURT_CLASSES } from '../support/shared.js';
import { waitFor } from './support/lane-flow.js';

const brokerNode = require('../../dist/nodes/lane-broker/lane-broker.js');
const eventsNode = require('../../dist/nodes/lane-events/lane-events.js');

helper.init(require.resolve('node-red'));

/** A node of a test flow, with its type's own settings. */
type FlowItem = TestFlowsItem & Record<string, unknown>;

const PREFIX = 'lane-vision/line-1/yoghurt-A';
const [ARLA_VANILLA, , ARLA_NATURAL, VALIO_VANILLA] = YOGHURT_CLASSES;

interface Kit {
  name: string;
  skip: string | false;
  /** Starts what the station connects to; `url()` works once the station is connected. */
  start(): Promise<{ config: Record<string, unknown>; url(): string; close(): Promise<void> }>;
}

const kits: Kit[] = [
  {
    name: 'embedded aedes',
    skip: false,
    async start() {
      return { config: { embedded: true, embeddedPort: 0 }, url: () => brokerOf().station!.embeddedBroker!.url, close: async () => {} };
    },
  },
  {
    name: 'mosquitto',
    skip: mosquittoSkipReason,
    async start() {
      const mosquitto = await startMosquitto();
      return { config: { embedded: false, url: mosquitto.url }, url: () => mosquitto.url, close: () => mosquitto.close() };
    },
  },
];

function flowWith(brokerConfig: Record<string, unknown>, eventsConfig: Record<string, unknown> = {}): FlowItem[] {
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    {
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
      ...brokerConfig,
    },
    { id: 'e1', z: 'f1', type: 'lane-events', name: '', broker: 'b1', qos: '1', commands: true, outputs: 1, wires: [['out']], ...eventsConfig },
    { id: 'out', z: 'f1', type: 'helper' },
    { id: 'c1', z: 'f1', type: 'catch', scope: ['e1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
    { id: 'k1', z: 'f1', type: 'complete', scope: ['e1'], uncaught: false, wires: [['completed']] },
    { id: 'completed', z: 'f1', type: 'helper' },
  ];
}

function brokerOf(): LaneBrokerNode {
  return helper.getNode('b1') as unknown as LaneBrokerNode;
}


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const waitUntil = async (predicate: () => boolean, what: string, ms = 5000): Promise<void> => {
  await waitFor(predicate, what, ms);
};

/** Everything a helper node receives, in order. */
function collect(id: string): any[] {
  const messages: any[] = [];
  helper.getNode(id).on('input', (msg: unknown) => messages.push(msg));
  return messages;
}

/** Every call of a Node method (status, warn, error) on one node; the helper spies on them. */
function calls(id: string, method: 'status' | 'warn' | 'error'): unknown[] {
  const seen: unknown[] = [];
  (helper.getNode(id) as unknown as NodeJS.EventEmitter).on(`call:${method}`, (call: { args: unknown[] }) => seen.push(call.args[0]));
  return seen;
}

function send(msg: object): void {
  (helper.getNode('e1') as Node).receive(msg as NodeMessage);
}

/** A result as the classify node puts it on msg.classification (labels from the shared grocery dataset). */
function classification(accepted: boolean, frame: number): ClassificationResult {
  return {
    label: accepted ? VALIO_VANILLA : 'unknown',
    code: accepted ? 4 : 0,
    confidence: accepted ? 0.91 : 0.42,
    accepted,
    threshold: 0.6,
    topK: accepted
      ? [
          { label: ARLA_VANILLA, code: 1, confidence: 0.05 },
          { label: VALIO_VANILLA, code: 4, confidence: 0.91 },
        ]
      : [
          { label: ARLA_NATURAL, code: 3, confidence: 0.42 },
          { label: VALIO_VANILLA, code: 4, confidence: 0.4 },
        ],
    modelVersion: 3,
    backboneId: 'tm-mobilenet-v2-0.35',
    engine: 'tfjs',
    backend: 'cpu',
    frameHash: `${frame}`.padStart(64, 'a'),
    timings: { queueMs: 0.5, decodeMs: 3.2, featuresMs: 21.7, headMs: 0.4, totalMs: 25.8 },
  };
}

function valid(kind: keyof typeof validateEvent, event: unknown): void {
  const check = validateEvent[kind];
  assert.ok(check(event), `${kind} event breaks its schema: ${JSON.stringify(check.errors)}`);
}

const ofTopic = (received: Received[], event: string) => received.filter((r) => r.topic === `${PREFIX}/${event}`);

before(() => helper.startServer());
after(() => helper.stopServer());
afterEach(() => helper.unload());

for (const kit of kits) {
  describe(kit.name, { skip: kit.skip }, () => {
    test('results go out at QoS 1 with the schema fields; done() only after the broker confirmed; the state names backend and model', async () => {
      const target = await kit.start();
      try {
        await helper.load([brokerNode, eventsNode], flowWith(target.config));
        await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
        const sorter = await startSorter(target.url(), [`${PREFIX}/#`]);
        try {
          const deliveredAtCompletion: number[] = [];
          helper.getNode('completed').on('input', () => deliveredAtCompletion.push(brokerOf().station!.stats!.delivered));
          const caught = collect('caught');
          send({ payload: VALIO_VANILLA, classification: classification(true, 1) });
          send({ payload: 'unknown', classification: classification(false, 2) });
          await sorter.waitFor((r) => ofTopic(r, 'result').length === 2, 5000, 'two results');
          await waitUntil(() => deliveredAtCompletion.length === 2, 'both messages completed');
          assert.deepEqual(caught, []);
          // Each message completed only once its own publish was acknowledged.
          assert.ok(deliveredAtCompletion[0] >= 1 && deliveredAtCompletion[1] >= 2, `delivered at completion: ${deliveredAtCompletion}`);

          const [accepted, rejected] = ofTopic(sorter.received, 'result').map((r) => r.json);
          for (const event of [accepted, rejected]) valid('result', event);
          assert.equal(accepted.label, VALIO_VANILLA);
          assert.equal(accepted.code, 4);
          assert.equal(accepted.accepted, true);
          assert.equal(accepted.confidence, 0.91);
          assert.deepEqual(accepted.topK.map((t: { label: string }) => t.label), [VALIO_VANILLA, ARLA_VANILLA]);
          assert.equal(accepted.modelVersion, 'v3');
          assert.equal(accepted.backend, 'cpu');
          assert.equal(accepted.frameId, '1'.padStart(64, 'a'));
          assert.equal(accepted.timings.totalMs, 25.8);
          assert.deepEqual([accepted.line, accepted.station], ['line-1', 'yoghurt-A']);
          assert.equal(rejected.label, 'unknown');
          assert.equal(rejected.code, 0);
          assert.equal(rejected.accepted, false);
          assert.equal(rejected.confidence, 0.42);
          assert.notEqual(accepted.eventId, rejected.eventId);

          // The retained state now says which backend and model decide (republished once, not per result).
          await sorter.waitFor((r) => ofTopic(r, 'state').some((s) => s.json.modelVersion === 'v3'), 3000, 'state update');
          const states = ofTopic(sorter.received, 'state').map((s) => s.json);
          for (const state of states) valid('state', state);
          const updates = states.filter((s) => s.reason === 'update');
          assert.equal(updates.length, 1);
          assert.deepEqual([updates[0].status, updates[0].backend, updates[0].modelVersion], ['online', 'cpu', 'v3']);
        } finally {
          await sorter.client.endAsync();
        }
      } finally {
        await helper.unload();
        await target.close();
      }
    });

    test('model summaries become the retained model event; training messages become training events of one job', async () => {
      const target = await kit.start();
      try {
        await helper.load([brokerNode, eventsNode], flowWith(target.config));
        await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
        const sorter = await startSorter(target.url(), [`${PREFIX}/training`]);
        try {
          const caught = collect('caught');
          const completed = collect('completed');
          const labels = [ARLA_VANILLA, ARLA_NATURAL, VALIO_VANILLA];
          send({ topic: 'training', payload: { phase: 'started', examples: 90, labels } });
          send({ topic: 'training', payload: { phase: 'progress', epoch: 5, epochs: 10, loss: 0.42, accuracy: 0.88 } });
          send({ topic: 'training', payload: { phase: 'finished', version: 4, metrics: { valAccuracy: 0.95, confusion: [[1]] } } });
          send({ topic: 'training', payload: { phase: 'failed', jobId: 'train-b', error: { code: 'DATASET_TOO_SMALL', message: 'Label "Valio-Vanilla-Yoghurt" has 2 images; at least 5 are needed.' } } });
          // The model store's own metadata, as the train node would forward it.
          send({
            topic: 'model',
            payload: {
              version: 4,
              classes: labels.map((label, i) => ({ label, code: [1, 3, 4][i] })),
              metrics: { valAccuracy: 0.95, examples: 90, perClass: { x: 1 } },
              backbone: { id: 'tm-mobilenet-v2-0.35', featureSize: 1280 },
              head: { kind: 'softmax', classCount: 3 },
              createdAt: '2026-03-02T07:58:12.000Z',
            },
          });
          await waitUntil(() => completed.length === 5 || caught.length > 0, 'five completions');
          assert.deepEqual(caught.map((m) => m.error.message), []);
          await sorter.waitFor((r) => r.length === 4, 3000, 'four training events');
          const events = sorter.received.map((r) => r.json);
          for (const event of events) valid('training', event);
          assert.deepEqual(events.map((e) => e.phase), ['started', 'progress', 'finished', 'failed']);
          assert.equal(new Set(events.slice(0, 3).map((e) => e.jobId)).size, 1, 'one run, one jobId');
          assert.equal(events[3].jobId, 'train-b');
          assert.deepEqual([events[0].progress, events[0].examples, events[0].labels], [0, 90, labels]);
          assert.deepEqual([events[1].progress, events[1].epoch, events[1].epochs, events[1].metrics], [0.5, 5, 10, { loss: 0.42, accuracy: 0.88 }]);
          assert.deepEqual([events[2].progress, events[2].modelVersion, events[2].metrics], [1, 'v4', { valAccuracy: 0.95 }]);
          assert.equal(events[3].error.code, 'DATASET_TOO_SMALL');
        } finally {
          await sorter.client.endAsync();
        }
        // A subscriber arriving later gets the model at once (retained), and the state knows it.
        const late = await startSorter(target.url(), [`${PREFIX}/model`, `${PREFIX}/state`]);
        try {
          await late.waitFor((r) => ofTopic(r, 'model').length === 1 && ofTopic(r, 'state').length === 1, 3000, 'retained model and state');
          const model = ofTopic(late.received, 'model')[0];
          assert.equal(model.retain, true);
          valid('model', model.json);
          assert.equal(model.json.modelVersion, 'v4');
          assert.deepEqual(model.json.labels, [
            { label: ARLA_VANILLA, code: 1 },
            { label: ARLA_NATURAL, code: 3 },
            { label: VALIO_VANILLA, code: 4 },
          ]);
          assert.deepEqual(model.json.metrics, { valAccuracy: 0.95, examples: 90 });
          assert.deepEqual([model.json.backbone, model.json.head, model.json.trainedAt], ['tm-mobilenet-v2-0.35', 'softmax', '2026-03-02T07:58:12.000Z']);
          assert.equal(ofTopic(late.received, 'state')[0].json.modelVersion, 'v4');
        } finally {
          await late.client.endAsync();
        }
      } finally {
        await helper.unload();
        await target.close();
      }
    });

    test('commands on cmd/+ come out as messages; malformed ones are answered on the error topic and warned, and the node keeps working', async () => {
      const target = await kit.start();
      try {
        await helper.load([brokerNode, eventsNode], flowWith(target.config));
        await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
        const out = collect('out');
        const warnings = calls('e1', 'warn');
        const sorter = await startSorter(target.url(), [`${PREFIX}/error`]);
        try {
          const command = (name: string, body: string) => sorter.client.publishAsync(`${PREFIX}/cmd/${name}`, body, { qos: 1 });
          await waitUntil(() => brokerOf().station!.listening, 'command subscription');
          await command('capture', JSON.stringify({ label: VALIO_VANILLA, count: 3, requestId: 'hmi-1' }));
          await command('threshold', '0.8');
          await command('threshold', JSON.stringify({ threshold: 7, requestId: 'hmi-2' }));
          await command('capture', '{"label": ');
          await command('explode', '{}');
          await command('rollback', '"v2"');
          await command('train', '');
          await waitUntil(() => out.length === 4, 'four good commands');
          assert.deepEqual(
            out.map((m) => [m.topic, m.payload]),
            [
              ['capture', VALIO_VANILLA],
              ['threshold', 0.8],
              ['rollback', 'v2'],
              ['train', {}],
            ],
          );
          assert.equal(out[0].count, 3);
          assert.equal(out[0].requestId, 'hmi-1');
          assert.deepEqual(out[0].command, { name: 'capture', label: VALIO_VANILLA, count: 3, requestId: 'hmi-1' });

          await sorter.waitFor((r) => r.length === 3, 3000, 'three error answers');
          const errors = sorter.received.map((r) => r.json);
          for (const error of errors) valid('error', error);
          assert.deepEqual(
            errors.map((e) => [e.code, e.source, e.command]),
            [
              ['COMMAND_INVALID_FIELD', 'command', 'threshold'],
              ['COMMAND_INVALID_JSON', 'command', 'capture'],
              ['COMMAND_UNKNOWN', 'command', 'explode'],
            ],
          );
          assert.equal(errors[0].requestId, 'hmi-2');
          await waitUntil(() => warnings.length === 3, 'three warnings');
          assert.ok(warnings.every((w) => typeof w === 'string' && w.startsWith('lane-events.warnings.bad-command')), String(warnings));

          // Still alive: events publish and later commands arrive.
          send({ classification: classification(true, 3) });
          await command('threshold', '0.5');
          await waitUntil(() => out.length === 5, 'a command after the bad ones');
          assert.equal(out[4].payload, 0.5);
        } finally {
          await sorter.client.endAsync();
        }
      } finally {
        await helper.unload();
        await target.close();
      }
    });
  });
}

describe('lane-events edge cases', () => {
  test('messages that cannot become events end in done(err), caught by a catch node, and the node keeps publishing', async () => {
    await helper.load([brokerNode, eventsNode], flowWith({ embedded: true, embeddedPort: 0 }));
    await waitUntil(() => brokerOf().station?.status === 'connected', 'connected');
    const caught = collect('caught');
    const completed = collect('completed');
    const bad: Array<[object, RegExp]> = [
      [{ payload: VALIO_VANILLA }, /msg\.classification|lane-events\.errors\.unknown-input/],
      [{ topic: 'camera-1', payload: 'x' }, /lane-events\.errors\.unknown-input/],
      [{ classification: 'Valio' }, /msg\.classification must be/],
      [{ classification: { ...classification(true, 1), topK: [] } }, /topK must list at least one/],
      [{ classification: { ...classification(true, 1), topK: [{ label: 'unknown', code: 0, confidence: 1 }] } }, /topK\[0\]/],
      [{ classification: { ...classification(true, 1), modelVersion: -1 } }, /model version/],
      [{ topic: 'model', payload: 'v4' }, /model summary/],
      [{ topic: 'model', payload: { modelVersion: 'v4', labels: [VALIO_VANILLA] } }, /without codes/],
      [{ topic: 'model', payload: { modelVersion: 'v4', labels: [{ label: VALIO_VANILLA, code: 1 }, { label: ARLA_VANILLA, code: 1 }] } }, /code 1 twice/],
      [{ topic: 'training', payload: { phase: 'bogus' } }, /phase must be one of/],
      [{ topic: 'training', payload: { phase: 'progress' } }, /progress \(0\.\.1\) or epoch and epochs/],
      [{ topic: 'training', payload: { phase: 'finished' } }, /needs modelVersion/],
      [{ topic: 'training', payload: { phase: 'progress', progress: 3 } }, /progress must be a number from 0 to 1/],
    ];
    for (const [msg] of bad) send(msg);
    await waitUntil(() => caught.length === bad.length, `${bad.length} caught errors`);
    caught.forEach((msg, i) => assert.match(msg.error.message, bad[i][1], `message ${i}: ${msg.error.message}`));
    assert.equal(completed.length, 0);
    send({ classification: classification(true, 9) });
    await waitUntil(() => completed.length === 1, 'a good message after the bad ones');
    assert.equal(brokerOf().station!.stats!.delivered, 1);
  });

  test('while the broker is unreachable, events wait; when the queue overflows the node warns and the status counts drops', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    await helper.load([brokerNode, eventsNode], flowWith({ url: `mqtt://127.0.0.1:${closedPort}`, offlineQueueLimit: 1 }));
    const statuses = calls('e1', 'status');
    const warnings = calls('e1', 'warn');
    const caught = collect('caught');
    const completed = collect('completed');
    send({ classification: classification(true, 1) });
    send({ classification: classification(true, 2) });
    await waitUntil(() => completed.length === 1, 'the dropped message completes');
    assert.equal(completed[0].classification.frameHash, classification(true, 1).frameHash, 'the oldest was dropped; the newest still waits');
    assert.deepEqual(caught, [], 'a drop is not an error of the message');
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]), /lane-events\.warnings\.dropped/);
    // Twenty more drops: counted for the next summary line, not one warning each.
    for (let i = 3; i < 23; i++) send({ classification: classification(true, i) });
    await waitUntil(() => completed.length === 21, 'twenty more drops');
    assert.equal(warnings.length, 1, 'one warning for a burst of drops');
    const last = statuses[statuses.length - 1] as { fill: string; text: string };
    assert.match(last.text, /lane-broker\.status\.dropped/);
    assert.equal(brokerOf().station!.dropped, 21, 'every drop is counted');
  });

  test('with "Keep unsent events on disk", results queued while the broker was away go out after a redeploy, with their eventIds', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { startEmbeddedBroker } = await import('../../src/events/index.js');
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-events-outbox-'));
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const durable = { url: `mqtt://127.0.0.1:${port}`, durableOutbox: true };
    helper.settings({ userDir });
    let broker: Awaited<ReturnType<typeof startEmbeddedBroker>> | undefined;
    try {
      await helper.load([brokerNode, eventsNode], flowWith(durable));
      const completed = collect('completed');
      send({ classification: classification(true, 1) });
      send({ classification: classification(false, 2) });
      await waitUntil(() => brokerOf().station!.stats?.queued === 2, 'two results waiting');
      await helper.unload(); // Node-RED stopped during the outage
      assert.equal(completed.length, 0, 'not delivered by the first deploy');
      assert.ok(fs.existsSync(path.join(userDir, 'lane-vision', 'outbox', 'b1.jsonl')), 'kept in the user directory');

      broker = await startEmbeddedBroker({ port });
      const sorter = await startSorter(broker.url, [`${PREFIX}/result`]);
      try {
        await helper.load([brokerNode, eventsNode], flowWith(durable));
        await sorter.waitFor((r) => r.length >= 2, 5000, 'the results of the first deploy');
        const results = sorter.received.map((r) => r.json);
        for (const event of results) valid('result', event);
        assert.deepEqual(results.map((e) => e.frameId), [classification(true, 1).frameHash, classification(false, 2).frameHash], 'in order');
        assert.equal(new Set(results.map((e) => e.eventId)).size, 2);
      } finally {
        await sorter.client.endAsync();
      }
    } finally {
      await helper.unload();
      helper.settings({ userDir: undefined });
      await broker?.close();
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  });

  test('commands that no node outputs any more are answered with COMMAND_NOT_HANDLED', async () => {
    const embedded = { embedded: true, embeddedPort: 0 };
    await helper.load([brokerNode, eventsNode], flowWith(embedded));
    await waitUntil(() => brokerOf().station?.listening === true, 'command subscription');
    // Redeploy only lane-events, now without commands: the connection (and its subscription) stays.
    await helper.setFlows(flowWith(embedded, { commands: false, outputs: 0, wires: [] }), 'nodes');
    const out = collect('out');
    const sorter = await startSorter(brokerOf().station!.embeddedBroker!.url, [`${PREFIX}/error`]);
    try {
      await sorter.client.publishAsync(`${PREFIX}/cmd/train`, JSON.stringify({ requestId: 'hmi-7' }), { qos: 1 });
      await sorter.waitFor((r) => r.length === 1, 3000, 'error answer');
      const answer = sorter.received[0].json;
      valid('error', answer);
      assert.deepEqual([answer.code, answer.command, answer.requestId], ['COMMAND_NOT_HANDLED', 'train', 'hmi-7']);
      assert.deepEqual(out, []);
    } finally {
      await sorter.client.endAsync();
    }
  });

  test('a command that fails in the node carrying it out is answered on the error topic, once, with its requestId', async () => {
    // Stands in for lane-classify: a rollback with nothing to roll back to ends in done(err).
    const failingHandler = (RED: any) => {
      RED.nodes.registerType('failing-handler', function (this: any, config: any) {
        RED.nodes.createNode(this, config);
        this.on('input', (msg: any, send: any, done: (err?: Error) => void) => {
          if (msg.topic !== 'rollback') return done();
          done(Object.assign(new Error('No earlier active version is left to roll back to'), { code: 'MODEL_ROLLBACK_UNAVAILABLE' }));
        });
      });
    };
    const flow = flowWith({ embedded: true, embeddedPort: 0 }).map((n) => (n.id === 'e1' ? { ...n, wires: [['handler']] } : n));
    flow.push({ id: 'handler', z: 'f1', type: 'failing-handler', wires: [] });
    // node-red-node-test-helper gives nodes no RED.hooks; Node-RED's own (the ones its nodes trigger) stand in.
    const { hooks } = require('@node-red/util');
    const eventsWithHooks = (RED: object) => eventsNode(Object.create(RED, { hooks: { value: hooks } }));
    await helper.load([brokerNode, eventsWithHooks, failingHandler], flow);
    await waitUntil(() => brokerOf().station?.listening === true, 'command subscription');
    const sorter = await startSorter(brokerOf().station!.embeddedBroker!.url, [`${PREFIX}/error`]);
    try {
      await sorter.client.publishAsync(`${PREFIX}/cmd/threshold`, '0.5', { qos: 1 }); // carried out: no answer
      await sorter.client.publishAsync(`${PREFIX}/cmd/rollback`, JSON.stringify({ version: 'v2', requestId: 'hmi-9' }), { qos: 1 });
      await sorter.waitFor((r) => r.length === 1, 3000, 'error answer');
      const answer = sorter.received[0].json;
      valid('error', answer);
      assert.deepEqual([answer.code, answer.source, answer.command, answer.requestId], ['MODEL_ROLLBACK_UNAVAILABLE', 'command', 'rollback', 'hmi-9']);
      assert.match(answer.message, /nothing|roll back/);
      assert.equal(sorter.received[0].topic, `${PREFIX}/error`);
      // A second command after it: exactly one answer each, none for the one that worked.
      await sorter.client.publishAsync(`${PREFIX}/cmd/rollback`, '"v3"', { qos: 1 });
      await sorter.waitFor((r) => r.length === 2, 3000, 'second error answer');
      assert.deepEqual(sorter.received.map((r) => r.json.command), ['rollback', 'rollback']);
    } finally {
      await sorter.client.endAsync();
    }
  });

  test('a node without a lane-broker reports it on every message', async () => {
    const flow = flowWith({}).filter((n) => n.id !== 'b1');
    await helper.load([brokerNode, eventsNode], flow);
    const caught = collect('caught');
    send({ classification: classification(true, 1) });
    await waitUntil(() => caught.length === 1, 'caught error');
    assert.match(caught[0].error.message, /lane-events\.errors\.missing-config/);
  });
});
