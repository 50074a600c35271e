import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
// ajv comes with node-red (a dev dependency); used here only to check payloads against the schemas.
import Ajv2020 from 'ajv/dist/2020.js';
import { isLaneVisionError } from '../../../src/errors.js';
import {
  buildErrorEvent,
  buildModelEvent,
  buildResultEvent,
  buildStateEvent,
  buildTrainingEvent,
  errorEventFrom,
  laneCommandSchemas,
  laneEventSchemas,
  UNKNOWN_CODE,
  UNKNOWN_LABEL,
} from '../../../src/events/index.js';
import { LaneVisionError } from '../../../src/errors.js';
import { fleetAckSchema, fleetManifestSchema } from '../../../src/fleet/index.js';

const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const validators = Object.fromEntries(Object.entries(laneEventSchemas).map(([kind, schema]) => [kind, ajv.compile(schema as object)]));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Asserts the event matches its schema after a JSON round trip (what the subscriber sees). */
function assertValid(kind: keyof typeof laneEventSchemas, event: object): void {
  const wire = JSON.parse(JSON.stringify(event));
  const { eventId, ts } = wire as { eventId: string; ts: string };
  const validate = validators[kind];
  assert.ok(validate(wire), `${kind}: ${ajv.errorsText(validate.errors)}`);
  assert.match(eventId, UUID);
  assert.equal(new Date(ts).toISOString(), ts);
}

const ctx = { line: 'line-1', station: 'yoghurt-A' };
const topK = [
  { label: 'Arla-Natural-Yoghurt', code: 3, confidence: 0.21 },
  { label: 'Valio-Vanilla-Yoghurt', code: 4, confidence: 0.74 },
  { label: 'Yoggi-Strawberry-Yoghurt', code: 5, confidence: 0.05 },
];

test('an accepted result carries the best label and its code; topK is sorted', () => {
  const event = buildResultEvent(ctx, { topK, accepted: true, modelVersion: 'v7', backend: 'wasm', timings: { decodeMs: 3.2, inferenceMs: 11.5, totalMs: 15 } });
  assert.equal(event.label, 'Valio-Vanilla-Yoghurt');
  assert.equal(event.code, 4);
  assert.equal(event.confidence, 0.74);
  assert.deepEqual(event.topK.map((t) => t.code), [4, 3, 5]);
  assert.equal(event.line, 'line-1');
  assertValid('result', event);
});

test('a result that is not accepted is "unknown" with the reserved code, keeping the best guess in topK', () => {
  const event = buildResultEvent(ctx, { topK, accepted: false, modelVersion: 'v7', backend: 'cpu', frameId: 'cam1-000042' });
  assert.equal(event.label, UNKNOWN_LABEL);
  assert.equal(event.code, UNKNOWN_CODE);
  assert.equal(event.accepted, false);
  assert.equal(event.confidence, 0.74);
  assert.equal(event.topK[0].label, 'Valio-Vanilla-Yoghurt');
  assert.deepEqual(event.timings, {});
  assertValid('result', event);
});

test('every event gets its own eventId', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 2000; i++) ids.add(buildResultEvent(ctx, { topK, accepted: true, modelVersion: 'v1', backend: 'cpu' }).eventId);
  assert.equal(ids.size, 2000);
});

test('malformed event input is refused with EVENT_INVALID naming the field', () => {
  const base = { topK, accepted: true, modelVersion: 'v1', backend: 'cpu' };
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['confidence > 1', () => buildResultEvent(ctx, { ...base, topK: [{ label: 'a', code: 1, confidence: 1.2 }] }), /confidence/],
    ['NaN confidence', () => buildResultEvent(ctx, { ...base, topK: [{ label: 'a', code: 1, confidence: NaN }] }), /confidence/],
    ['code 0 is reserved', () => buildResultEvent(ctx, { ...base, topK: [{ label: 'a', code: 0, confidence: 0.5 }] }), /code/],
    ['fractional code', () => buildResultEvent(ctx, { ...base, topK: [{ label: 'a', code: 1.5, confidence: 0.5 }] }), /code/],
    ['empty topK', () => buildResultEvent(ctx, { ...base, topK: [] }), /topK/],
    ['negative timing', () => buildResultEvent(ctx, { ...base, timings: { totalMs: -1 } }), /timings\.totalMs/],
    ['missing station', () => buildResultEvent({ line: 'l', station: '' }, base), /station/],
    ['label "unknown" in a model', () => buildModelEvent(ctx, { modelVersion: 'v1', labels: [{ label: UNKNOWN_LABEL, code: 1 }] }), /reserved/],
    ['duplicate code in a model', () => buildModelEvent(ctx, { modelVersion: 'v1', labels: [{ label: 'a', code: 1 }, { label: 'b', code: 1 }] }), /code 1 twice/],
    ['duplicate label in a model', () => buildModelEvent(ctx, { modelVersion: 'v1', labels: [{ label: 'a', code: 1 }, { label: 'a', code: 2 }] }), /"a" twice/],
    ['progress > 1', () => buildTrainingEvent(ctx, { phase: 'progress', jobId: 'j', progress: 2 }), /progress/],
    ['unknown error source', () => buildErrorEvent(ctx, { code: 'X', message: 'y', source: 'nope' as 'command' }), /source/],
    ['negative counter', () => buildStateEvent(ctx, { status: 'online', reason: 'connected', clientId: 'c', outbox: { published: 0, delivered: 0, queued: -1, dropped: 0, failed: 0 } }), /outbox\.queued/],
  ];
  for (const [why, build, field] of cases) {
    assert.throws(build, (err) => isLaneVisionError(err, 'EVENT_INVALID') && field.test((err as Error).message), why);
  }
});

test('state, model, training and error events match their schemas', () => {
  const outbox = { published: 10, delivered: 8, queued: 2, dropped: 0, failed: 0 };
  const online = buildStateEvent(ctx, { status: 'online', reason: 'connected', clientId: 'lane-1', backend: 'wasm', modelVersion: 'v7', outbox, frames: { queued: 1, dropped: 3, processed: 900 } });
  assertValid('state', online);
  const offline = buildStateEvent(ctx, { status: 'offline', reason: 'connection-lost', clientId: 'lane-1', outbox });
  assert.equal(offline.backend, null);
  assertValid('state', offline);

  const model = buildModelEvent(ctx, {
    modelVersion: 'v7',
    labels: [{ label: 'Arla-Natural-Yoghurt', code: 3 }, { label: 'Valio-Vanilla-Yoghurt', code: 4 }],
    metrics: { valAccuracy: 0.93, examples: 120 },
    backbone: 'mobilenet_v2_1.0_224',
    head: 'softmax',
    trainedAt: '2026-01-02T03:04:05Z',
  });
  assert.equal(model.trainedAt, '2026-01-02T03:04:05.000Z');
  assertValid('model', model);

  const phases = [
    buildTrainingEvent(ctx, { phase: 'started', jobId: 'job-1', examples: 120, labels: ['a', 'b'] }),
    buildTrainingEvent(ctx, { phase: 'progress', jobId: 'job-1', progress: 0.5, epoch: 5, epochs: 10, metrics: { loss: 0.31 } }),
    buildTrainingEvent(ctx, { phase: 'finished', jobId: 'job-1', modelVersion: 'v8', metrics: { valAccuracy: 0.95 } }),
    buildTrainingEvent(ctx, { phase: 'failed', jobId: 'job-2', error: { code: 'DATASET_TOO_SMALL', message: 'Need 5 images per label.' } }),
  ];
  assert.deepEqual(phases.map((p) => p.progress), [0, 0.5, 1, undefined]);
  for (const event of phases) assertValid('training', event);

  const fromThrown = errorEventFrom(ctx, new LaneVisionError('MODEL_VERSION_UNKNOWN', 'No model v9.'), 'command', { command: 'rollback', requestId: 'r1' });
  assert.equal(fromThrown.code, 'MODEL_VERSION_UNKNOWN');
  assert.equal(fromThrown.requestId, 'r1');
  assertValid('error', fromThrown);
  assert.equal(errorEventFrom(ctx, new TypeError('boom'), 'internal').code, 'INTERNAL_ERROR');
  assertValid('error', buildErrorEvent(ctx, { code: 'CAMERA_LOST', message: 'No frame for 5 s.', source: 'camera' }));
});

test('the schemas in docs/mqtt-events.md are exactly the exported ones', () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'mqtt-events.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]));
  const documented = new Map(blocks.filter((b) => b.$id).map((b) => [b.$id, b]));
  // The fleet's manifest and acknowledgement are documented there too (its own topics, src/fleet).
  const exported = [...Object.values(laneEventSchemas), ...Object.values(laneCommandSchemas), fleetManifestSchema, fleetAckSchema];
  for (const schema of exported) {
    assert.deepEqual(documented.get(schema.$id), JSON.parse(JSON.stringify(schema)), `${schema.$id} differs from docs/mqtt-events.md`);
  }
  assert.equal(documented.size, exported.length);
  // Example payloads in the doc must validate too.
  const fleetValidators = [ajv.compile(fleetManifestSchema as object), ajv.compile(fleetAckSchema as object)];
  for (const example of blocks.filter((b) => !b.$id && b.schemaVersion === 1)) {
    const kind = (Object.keys(laneEventSchemas) as Array<keyof typeof laneEventSchemas>).find((k) => validators[k](example));
    assert.ok(kind || fleetValidators.some((validate) => validate(example)), `example ${JSON.stringify(example).slice(0, 80)} matches no schema`);
  }
});
