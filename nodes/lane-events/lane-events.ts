/**
 * lane-events: publishes a station's results, model and training events over the shared
 * lane-broker connection, and outputs the commands the factory sends on `.../cmd/+`.
 * Building and checking the events is src/events; this node routes messages to it.
 */
import type { NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import {
  TrainingEventMapper,
  buildModelEvent,
  buildReviewEvent,
  type ReviewEventInput,
  buildResultEvent,
  buildTrainingEvent,
  commandArgument,
  followActiveModel,
  type ModelFollower,
  modelInputFromSummary,
  type FrameCounters,
  resultInputFromClassification,
  type LaneCommand,
  type LaneStation,
  type PublishOutcome,
  type QoS,
} from '../../src/events/index.js';
import { LaneVisionError } from '../../src/errors.js';
import type { LaneBrokerNode, LaneBrokerUser } from '../lane-broker/types.js';
import { createWarningThrottle } from '../shared/warning-throttle.js';
import type { DatasetConfigNode } from '../shared/config-types.js';
import { errorText } from '../shared/status.js';

interface LaneEventsDef extends NodeDef {
  broker: string;
  qos: string | number;
  /** Output the commands received; default true. */
  commands?: boolean;
  /** lane-dataset whose store's active version the retained model topic follows (optional). */
  dataset?: string;
}

interface LaneEventsInput extends NodeMessageInFlow {
  classification?: unknown;
  /** A lane-classify node's counters (msg.laneVision.queue), for the state's `frames`. */
  laneVision?: unknown;
}

/**
 * The classify node's id and frame counters from msg.laneVision, or undefined when the
 * message has none (a result from elsewhere): the state then keeps what it had.
 */
function frameCountersOf(info: unknown): { source: string; counters: FrameCounters } | undefined {
  if (info === null || typeof info !== 'object') return undefined;
  const { classifier, queue } = info as { classifier?: unknown; queue?: Record<string, unknown> };
  if (queue === null || typeof queue !== 'object') return undefined;
  const count = (value: unknown) => (Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : undefined);
  const queued = count(queue.queued);
  const dropped = count(queue.dropped);
  const processed = count(queue.processed);
  if (queued === undefined || dropped === undefined || processed === undefined) return undefined;
  return { source: typeof classifier === 'string' && classifier !== '' ? classifier : 'classify', counters: { queued, dropped, processed } };
}

/** Where a command message came from: the lane-broker whose station answers its failure. */
const COMMAND_FROM = '_laneCommandBroker';

/** The message a command becomes: topic = command name, payload = its argument. */
function commandMessage(command: LaneCommand, brokerId: string): NodeMessage & Record<string, unknown> {
  const msg: NodeMessage & Record<string, unknown> = { topic: command.name, payload: commandArgument(command), command, [COMMAND_FROM]: brokerId };
  if (command.name === 'capture') msg.count = command.count;
  if (command.requestId !== undefined) msg.requestId = command.requestId;
  return msg;
}

export = function (RED: NodeAPI) {
  // A command is carried out by whichever node the flow sends it to (lane-classify rolls
  // back, lane-train trains); when that node ends it with an error, the sender is answered
  // on the station's error topic. Replaced, not added twice, when the module loads again.
  const COMMAND_FAILURE_HOOK = 'onComplete.laneVisionCommandFailure';
  // Node-RED >= 2 always has hooks; node-red-node-test-helper's runtime does not pass them on.
  RED.hooks?.remove(COMMAND_FAILURE_HOOK);
  RED.hooks?.add(COMMAND_FAILURE_HOOK, (event: { msg?: Record<string, unknown>; error?: unknown }) => {
    const { msg, error } = event;
    if (!error || !msg || typeof msg[COMMAND_FROM] !== 'string') return;
    const command = msg.command as LaneCommand | undefined;
    if (!command || typeof command.name !== 'string') return;
    const broker = RED.nodes.getNode(msg[COMMAND_FROM] as string) as LaneBrokerNode | null;
    // Once per command: a later node failing with the same message must not answer again.
    delete msg[COMMAND_FROM];
    broker?.station?.answerCommandFailure(command, error).catch(() => undefined); // the station logs a failed publish
  });

  function LaneEventsNode(this: LaneBrokerUser, config: LaneEventsDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const qosSetting = config.qos === undefined || config.qos === '' ? 1 : Number(config.qos);
    const broker = RED.nodes.getNode(config.broker) as LaneBrokerNode | null;
    const training = new TrainingEventMapper();
    const dropWarnings = createWarningThrottle((count, { topic }) => node.warn(RED._('lane-events.warnings.dropped', { topic, count })));

    if (qosSetting !== 0 && qosSetting !== 1 && qosSetting !== 2) {
      node.error(RED._('lane-events.errors.invalid-qos', { qos: String(config.qos) }));
    }
    const qos = (qosSetting === 0 || qosSetting === 2 ? qosSetting : 1) as QoS;

    if (!broker) {
      node.status({ fill: 'red', shape: 'ring', text: RED._('lane-events.status.no-broker') });
      node.error(RED._('lane-events.errors.missing-config'));
      node.on('input', (_msg: NodeMessageInFlow, _send: unknown, done: (err?: Error) => void) => {
        done(new Error(RED._('lane-events.errors.missing-config')));
      });
      return;
    }

    if (config.commands !== false && (config.commands as unknown) !== 'false') {
      node.laneCommand = (command) => node.send(commandMessage(command, broker.id));
    }
    node.laneCommandRejected = (error) => {
      node.warn(RED._('lane-events.warnings.bad-command', { code: error.code, message: error.message, topic: error.topic }));
    };
    broker.register(node);

    // With a dataset, the retained model event follows the store's active version whatever
    // changed it (training, console promote, MQTT or CLI rollback, fleet update).
    const datasetNode = config.dataset ? (RED.nodes.getNode(config.dataset) as DatasetConfigNode | null) : undefined;
    let follower: ModelFollower | undefined;
    let closed = false;
    if (datasetNode === null) {
      node.error(RED._('lane-events.errors.missing-dataset'));
    } else if (datasetNode && broker.station) {
      const station = broker.station;
      datasetNode.models().then(
        (store) => {
          if (closed) return;
          follower = followActiveModel(station, store, {
            onError: (err) => node.warn(RED._('lane-events.warnings.model-state', { message: errorText(err) })),
          });
        },
        (err: unknown) => node.error(RED._('lane-events.warnings.model-state', { message: errorText(err) })),
      );
    }

    function stationOrThrow(): LaneStation {
      if (broker!.station) return broker!.station;
      const why = broker!.problem?.message ?? 'unknown reason';
      throw new LaneVisionError('MQTT_CONFIG_INVALID', RED._('lane-events.errors.broker-invalid', { message: why }));
    }

    async function publish(msg: LaneEventsInput): Promise<{ outcome: PublishOutcome; what: string }> {
      const station = stationOrThrow();
      if (msg.topic === 'model' && follower) {
        // The store is the truth: a candidate that was not activated is not the lane's model.
        await follower.refresh();
        return { outcome: 'delivered' as PublishOutcome, what: station.topics.model };
      }
      if (msg.topic === 'model') {
        const event = buildModelEvent(station.context, modelInputFromSummary(msg.payload));
        return { outcome: await station.publishModel(event), what: station.topics.model };
      }
      if (msg.topic === 'review') {
        const event = buildReviewEvent(station.context, msg.payload as ReviewEventInput);
        return { outcome: await station.publishEvent('review', event, qos), what: station.topics.review };
      }
      if (msg.topic === 'training') {
        const event = buildTrainingEvent(station.context, training.map(msg.payload));
        return { outcome: await station.publishEvent('training', event, qos), what: station.topics.training };
      }
      if (msg.classification !== undefined) {
        const input = resultInputFromClassification(msg.classification);
        const event = buildResultEvent(station.context, input);
        // The state topic says which backend and model decide; republished only on change.
        broker!.reportEngine({ backend: input.backend, modelVersion: input.modelVersion });
        // ... and how many frames were classified, dropped and are waiting (throttled by the station).
        const frames = frameCountersOf(msg.laneVision);
        if (frames) station.reportFrames(frames.source, frames.counters);
        return { outcome: await station.publishEvent('result', event, qos), what: station.topics.result };
      }
      throw new LaneVisionError('EVENT_INVALID', RED._('lane-events.errors.unknown-input', { topic: String(msg.topic ?? '') }));
    }

    // A standing fault (broker not running, settings unusable) fails the first event with the
    // reason and counts the rest on the status: a lane sends several results a second, and one
    // error each would flood the log. A publish that works, or another fault, starts over.
    let standingFault: string | undefined;
    let unsent = 0;
    function failOnce(err: Error, done: (err?: Error) => void): void {
      if (standingFault !== err.message) {
        standingFault = err.message;
        unsent = 0;
        return done(err);
      }
      unsent++;
      node.status({ fill: 'red', shape: 'ring', text: `${err.message.slice(0, 40)} · ${RED._('lane-events.status.unsent', { count: unsent })}` });
      done();
    }

    node.on('input', (msg: LaneEventsInput, _send: unknown, done: (err?: Error) => void) => {
      publish(msg).then(
        ({ outcome, what }) => {
          standingFault = undefined;
          if (outcome === 'failed') {
            done(new LaneVisionError('MQTT_PUBLISH_FAILED', RED._('lane-events.errors.publish-failed', { topic: what })));
            return;
          }
          if (outcome === 'dropped') {
            // Not an error of this message's content: the broker was away too long for the queue.
            dropWarnings.note({ topic: what });
            broker.refreshStatus();
          }
          done();
        },
        (err: unknown) => {
          const error = err instanceof Error ? err : new Error(String(err));
          // Connection faults (MQTT_*, BROKER_*) stand until fixed; a bad message is its own error every time.
          const code = (error as { code?: unknown }).code;
          if (typeof code === 'string' && /^(MQTT_|BROKER_)/.test(code) && code !== 'MQTT_PUBLISH_FAILED') return failOnce(error, done);
          done(error);
        },
      );
    });

    node.on('close', (removed: boolean, done: () => void) => {
      dropWarnings.flush();
      closed = true;
      follower?.stop();
      broker.deregister(node, done, removed);
    });
  }

  RED.nodes.registerType('lane-events', LaneEventsNode);
};
