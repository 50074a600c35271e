import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLaneVisionError } from '../../../src/errors.js';
import { buildLaneTopics, formatTopic, validatePublishTopic, MAX_TOPIC_VARIABLE_BYTES } from '../../../src/events/index.js';

const throwsCode = (fn: () => unknown, code: string) => assert.throws(fn, (err) => isLaneVisionError(err, code) && (err as Error).message.length > 20);

test('the default template gives one topic per event and a command filter', () => {
  const topics = buildLaneTopics({ line: 'line-1', station: 'yoghurt-A' });
  assert.equal(topics.result, 'lane-vision/line-1/yoghurt-A/result');
  assert.equal(topics.state, 'lane-vision/line-1/yoghurt-A/state');
  assert.equal(topics.model, 'lane-vision/line-1/yoghurt-A/model');
  assert.equal(topics.training, 'lane-vision/line-1/yoghurt-A/training');
  assert.equal(topics.error, 'lane-vision/line-1/yoghurt-A/error');
  assert.equal(topics.commandFilter, 'lane-vision/line-1/yoghurt-A/cmd/+');
  assert.equal(topics.command('capture'), 'lane-vision/line-1/yoghurt-A/cmd/capture');
  assert.equal(topics.commandNameOf('lane-vision/line-1/yoghurt-A/cmd/threshold'), 'threshold');
  assert.equal(topics.commandNameOf('lane-vision/line-1/other/cmd/threshold'), undefined);
  assert.equal(topics.commandNameOf('lane-vision/line-1/yoghurt-A/cmd/a/b'), undefined);
  assert.equal(topics.commandNameOf('lane-vision/line-1/yoghurt-A/result'), undefined);
});

test('a custom template with its own variables; a missing variable is refused, not left empty', () => {
  const template = 'factory/{site}/{line}/vision/{station}/{event}';
  const topics = buildLaneTopics({ site: 'Tampere', line: 'L2', station: 'Käsin-3' }, template);
  assert.equal(topics.result, 'factory/Tampere/L2/vision/Käsin-3/result');
  assert.equal(topics.commandFilter, 'factory/Tampere/L2/vision/Käsin-3/cmd/+');
  throwsCode(() => buildLaneTopics({ line: 'L2', station: 'S' }, template), 'TOPIC_VARIABLE_MISSING');
  // A placeholder embedded in a level is fine too.
  assert.equal(formatTopic('plant-{line}/{station}/{event}', { line: '7', station: 's' }, 'state'), 'plant-7/s/state');
});

test('variables that would change the shape of the topic are refused', () => {
  const bad: Array<[string, string]> = [
    ['wildcard +', 'line+1'],
    ['wildcard #', '#'],
    ['slash', 'a/b'],
    ['empty', ''],
    ['NUL', 'a\u0000b'],
    ['control', 'a\nb'],
    ['lone surrogate', 'a\ud800b'],
    ['too long in UTF-8', 'é'.repeat(MAX_TOPIC_VARIABLE_BYTES / 2 + 1)],
  ];
  for (const [why, value] of bad) {
    assert.throws(() => buildLaneTopics({ line: 'L1', station: value }), (err) => isLaneVisionError(err, 'TOPIC_VARIABLE_INVALID'), why);
  }
  // The byte limit counts UTF-8 bytes, not characters: 64 two-byte letters still fit.
  assert.equal(buildLaneTopics({ line: 'L1', station: 'é'.repeat(MAX_TOPIC_VARIABLE_BYTES / 2) }).state.endsWith('/state'), true);
  throwsCode(() => buildLaneTopics({ line: 42 as unknown as string, station: 's' }), 'TOPIC_VARIABLE_INVALID');
});

test('malformed templates are refused with the reason', () => {
  for (const template of ['', 'a//{station}/{event}', 'a/{event}/b', 'a/x{event}', 'a/+/{event}', 'a/#/{event}', 'a/{station}', '$SYS/{event}', 'a/{bad name}/{event}']) {
    assert.throws(() => buildLaneTopics({ line: 'l', station: 's' }, template), (err) => isLaneVisionError(err, 'TOPIC_TEMPLATE_INVALID'), template);
  }
});

test('publish topics never contain wildcards or control characters', () => {
  assert.equal(validatePublishTopic('a/b/c'), 'a/b/c');
  for (const topic of ['a/+/c', 'a/#', '', 'a\u0000', 'a\ud800']) {
    assert.throws(() => validatePublishTopic(topic), (err) => isLaneVisionError(err, 'TOPIC_INVALID'), JSON.stringify(topic));
  }
  assert.throws(() => validatePublishTopic('x'.repeat(65536)), (err) => isLaneVisionError(err, 'TOPIC_INVALID'));
});
