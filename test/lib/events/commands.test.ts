import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { buildLaneTopics, laneCommandSchemas, parseCommand, type CommandParseResult } from '../../../src/events/index.js';

const topics = buildLaneTopics({ line: 'line-1', station: 'yoghurt-A' });
const cmd = (name: string) => `lane-vision/line-1/yoghurt-A/cmd/${name}`;

function ok(result: CommandParseResult) {
  assert.ok(result.ok, result.ok ? '' : `${result.error.code}: ${result.error.message}`);
  return result.command;
}

function fails(result: CommandParseResult, code: string) {
  assert.equal(result.ok, false, `expected ${code}, got a command`);
  if (result.ok) throw new Error('unreachable');
  assert.equal(result.error.code, code, result.error.message);
  assert.ok(result.error.message.length > 15);
  return result.error;
}

test('valid commands, in object and shorthand form', () => {
  assert.deepEqual(ok(parseCommand(cmd('capture'), '{"label":"Valio-Vanilla-Yoghurt","count":5,"requestId":"r-1"}')), {
    name: 'capture',
    label: 'Valio-Vanilla-Yoghurt',
    count: 5,
    requestId: 'r-1',
  });
  assert.deepEqual(ok(parseCommand(cmd('capture'), Buffer.from('"Arla"'))), { name: 'capture', label: 'Arla', count: 1 });
  // Labels go through the dataset's rule, which normalises to NFC.
  assert.deepEqual(ok(parseCommand(cmd('capture'), JSON.stringify({ label: 'Cre\u0300me' }))), { name: 'capture', label: 'Crème', count: 1 });
  assert.deepEqual(ok(parseCommand(cmd('train'), '')), { name: 'train' });
  assert.deepEqual(ok(parseCommand(cmd('train'), '{}')), { name: 'train' });
  assert.deepEqual(ok(parseCommand(cmd('rollback'), '{"version":"v3"}')), { name: 'rollback', version: 'v3' });
  assert.deepEqual(ok(parseCommand(cmd('rollback'), '"v2"')), { name: 'rollback', version: 'v2' });
  assert.deepEqual(ok(parseCommand(cmd('threshold'), '0.75')), { name: 'threshold', threshold: 0.75 });
  assert.deepEqual(ok(parseCommand(cmd('threshold'), new Uint8Array(Buffer.from('{"threshold":0}')))), { name: 'threshold', threshold: 0 });
});

test('every valid object form also validates against its JSON schema', () => {
  const ajv = new Ajv2020({ strict: true });
  const samples: Record<keyof typeof laneCommandSchemas, unknown> = {
    capture: { label: 'a', count: 2, requestId: 'x' },
    train: {},
    rollback: { version: 'v1' },
    threshold: { threshold: 0.5 },
  };
  for (const [name, body] of Object.entries(samples)) {
    assert.ok(ajv.validate(laneCommandSchemas[name as keyof typeof samples], body), ajv.errorsText());
    ok(parseCommand(cmd(name), JSON.stringify(body)));
  }
  assert.equal(ajv.validate(laneCommandSchemas.threshold, { threshold: 1.5 }), false);
});

test('malformed commands become error objects with a stable code, and echo the requestId', () => {
  fails(parseCommand(cmd('explode'), '{}'), 'COMMAND_UNKNOWN');
  fails(parseCommand('lane-vision/line-1/yoghurt-A/result', '{}'), 'COMMAND_UNKNOWN');
  fails(parseCommand(cmd('capture'), '{"label":'), 'COMMAND_INVALID_JSON');
  fails(parseCommand(cmd('capture'), '[1,2]'), 'COMMAND_INVALID_JSON');
  fails(parseCommand(cmd('train'), 'null'), 'COMMAND_INVALID_JSON');
  fails(parseCommand(cmd('capture'), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'COMMAND_INVALID_ENCODING');
  fails(parseCommand(cmd('capture'), '{"label":"a/b"}'), 'LABEL_INVALID');
  fails(parseCommand(cmd('capture'), '{"label":"unknown"}'), 'LABEL_INVALID');
  fails(parseCommand(cmd('capture'), '{"label":""}'), 'LABEL_INVALID');
  fails(parseCommand(cmd('capture'), '{}'), 'LABEL_INVALID');
  for (const count of [0, 101, 1.5, '3', -1]) fails(parseCommand(cmd('capture'), JSON.stringify({ label: 'a', count })), 'COMMAND_INVALID_FIELD');
  fails(parseCommand(cmd('rollback'), '{}'), 'COMMAND_INVALID_FIELD');
  fails(parseCommand(cmd('rollback'), '{"version":"  "}'), 'COMMAND_INVALID_FIELD');
  for (const threshold of [-0.1, 1.01, '0.5', null]) fails(parseCommand(cmd('threshold'), JSON.stringify({ threshold })), 'COMMAND_INVALID_FIELD');
  fails(parseCommand(cmd('threshold'), 'NaN'), 'COMMAND_INVALID_JSON');
  const typo = fails(parseCommand(cmd('threshold'), '{"treshold":0.5,"requestId":"req-9"}'), 'COMMAND_UNKNOWN_FIELD');
  assert.match(typo.message, /"treshold"/);
  assert.equal(typo.requestId, 'req-9');
  assert.equal(typo.command, 'threshold');
  assert.equal(typo.topic, cmd('threshold'));
  fails(parseCommand(cmd('train'), '{"requestId":5}'), 'COMMAND_INVALID_FIELD');
});

test('the size limit is checked before parsing', () => {
  const big = JSON.stringify({ label: 'a', padding: 'x'.repeat(10_000) });
  fails(parseCommand(cmd('capture'), big), 'COMMAND_TOO_LARGE');
  fails(parseCommand(cmd('capture'), '{"label":"abc"}', { maxBytes: 8 }), 'COMMAND_TOO_LARGE');
  // Bytes, not characters: 2100 two-byte letters are 4200 bytes.
  fails(parseCommand(cmd('capture'), JSON.stringify({ label: 'ä'.repeat(2100) })), 'COMMAND_TOO_LARGE');
});

test('with the station topics, another station\'s command is not taken', () => {
  ok(parseCommand(cmd('train'), '', { topics }));
  fails(parseCommand('lane-vision/line-1/other/cmd/train', '', { topics }), 'COMMAND_UNKNOWN');
});

test('random bytes never throw', () => {
  // Fixed-seed xorshift so a failure repeats.
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 0x100000000;
  };
  const names = ['capture', 'train', 'rollback', 'threshold', 'x'];
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    const bytes = Buffer.alloc(Math.floor(next() * 64));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(next() * 256);
    const result = parseCommand(cmd(names[i % names.length]), i % 3 === 0 ? bytes.toString('latin1') : bytes);
    if (!result.ok) rejected++;
  }
  // Nearly all random inputs are rejected (empty payloads are valid train commands).
  assert.ok(rejected > 2500, `rejected ${rejected}`);
});
