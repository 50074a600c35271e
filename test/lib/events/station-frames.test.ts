/**
 * LaneStation.reportFrames: the frame counters of the classifiers reporting to a station
 * reach its retained state, summed, throttled, and carried into the closing state and the
 * next birth. Against the embedded aedes broker, with a plain mqtt.js subscriber.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LaneStation } from '../../../src/events/index.js';
import { resultFor, startSorter, validateEvent, type Received } from './scenarios.js';

const STATE = 'lane-vision/line-1/yoghurt-A/state';
const RESULT = 'lane-vision/line-1/yoghurt-A/result';

test('frame counters go out on the retained state: summed over classifiers, throttled, kept into the closing state and the next birth', async () => {
  // A long interval: after the first update, nothing more goes out until stop (no timing in the assertions).
  const station = new LaneStation({ line: 'line-1', station: 'yoghurt-A', embedded: { port: 0 }, reconnectPeriodMs: 200, frameStateIntervalMs: 60_000 });
  await station.start();
  const url = station.embeddedBroker!.url;
  const sorter = await startSorter(url, [STATE, RESULT]);
  const states = () => sorter.received.filter((r: Received) => r.topic === STATE);
  try {
    await sorter.waitFor(() => states().some((r) => r.json.status === 'online'), 5000, 'the birth');
    assert.equal(states().at(-1)!.json.frames, undefined, 'no frames before a classifier reports');

    station.reportFrames('classify-a', { queued: 3, dropped: 0, processed: 1 });
    await sorter.waitFor(() => states().some((r) => r.json.frames), 5000, 'the first counts at once');
    const first = states().at(-1)!.json;
    assert.deepEqual(first.frames, { queued: 3, dropped: 0, processed: 1 });
    assert.equal(first.reason, 'update');
    assert.ok(validateEvent.state(first), JSON.stringify(validateEvent.state.errors));

    const seen = states().length;
    for (let i = 2; i <= 50; i++) station.reportFrames('classify-a', { queued: 0, dropped: 7, processed: i });
    station.reportFrames('classify-b', { queued: 1, dropped: 2, processed: 10 });
    assert.deepEqual(station.frames, { queued: 1, dropped: 9, processed: 60 });
    // Events of one connection arrive in order: once this result is in, a state sent before it would be too.
    const marker = resultFor(1);
    assert.equal(await station.publishEvent('result', marker), 'delivered');
    await sorter.waitFor((r) => r.some((m) => m.topic === RESULT && m.json.eventId === marker.eventId), 5000, 'the marker result');
    assert.equal(states().length, seen, 'no state for each report: they wait for the interval');

    await station.stop();
    await sorter.waitFor(() => states().at(-1)!.json.status === 'offline', 5000, 'the closing state');
    const closing = states().at(-1)!.json;
    assert.equal(closing.reason, 'closed');
    assert.deepEqual(closing.frames, { queued: 1, dropped: 9, processed: 60 }, 'the held-back counts go out by the close');

    await station.start();
    // The embedded broker restarted on a new port: subscribe again.
    const again = await startSorter(station.embeddedBroker!.url, [STATE]);
    try {
      await again.waitFor((r) => r.some((m) => m.json.status === 'online'), 5000, 'the new birth');
      assert.deepEqual(again.received.find((m) => m.json.status === 'online')!.json.frames, { queued: 1, dropped: 9, processed: 60 });
    } finally {
      await again.client.endAsync();
    }
  } finally {
    await sorter.client.endAsync(true);
    await station.stop();
  }
});
