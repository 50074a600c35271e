/**
 * lane-broker: the config node owning one station's MQTT connection (and optionally an
 * embedded broker), shared by every node using it, as the core mqtt-broker node does:
 * register() connects on the first user, deregister() disconnects after the last one when
 * it was removed, and the connection status is shown on every user.
 * The connection itself is src/events LaneStation; this file maps Node-RED settings and
 * status onto it.
 */
import type { NodeAPI, NodeStatus } from 'node-red';
import { closeLingeringBrokers, LaneStation, readableError, type ConnectionStatusEvent, type EngineInfo } from '../../src/events/index.js';
import { LaneVisionError } from '../../src/errors.js';
import { stationOptionsFrom, stationOptionsOverCoreBroker, type CoreMqttBroker } from './settings.js';
import { userDirOf } from '../shared/paths.js';
import type { LaneBrokerCredentials, LaneBrokerDef, LaneBrokerNode, LaneBrokerUser } from './types.js';

/** Runtimes whose "flows stopped" event is watched (once each, however often the module loads). */
const watchedRuntimes = new WeakSet<object>();

export = function (RED: NodeAPI) {
  // A broker kept for a redeploy is closed at once when the flows are stopped instead
  // (the editor's "stop flows", Node-RED shutting down): Node-RED says which in runtime-state.
  if (!watchedRuntimes.has(RED.events)) {
    watchedRuntimes.add(RED.events);
    RED.events.on('runtime-event', (event: { id?: string; payload?: { state?: string; deploy?: boolean } }) => {
      if (event?.id === 'runtime-state' && event.payload?.state === 'stop' && !event.payload.deploy) void closeLingeringBrokers();
    });
  }

  const CONNECTED = 'node-red:common.status.connected';
  const CONNECTING = 'node-red:common.status.connecting';
  const DISCONNECTED = 'node-red:common.status.disconnected';
  const ERROR = 'node-red:common.status.error';

  /**
   * The status every user shows. Plain `node-red:common.status.*` keys (the editor
   * translates them, as for the core mqtt nodes); text with a count or a reason added is
   * translated here.
   */
  function statusOf(event: ConnectionStatusEvent | undefined, dropped: number, problem: Error | undefined): NodeStatus {
    const reason = (err: Error | undefined) => (err ? `: ${readableError(err)}` : '');
    if (!event) {
      return problem
        ? { fill: 'red', shape: 'ring', text: `${RED._(ERROR)}${reason(problem)}` }
        : { fill: 'red', shape: 'ring', text: DISCONNECTED };
    }
    const droppedNote = dropped > 0 ? ` (${RED._('lane-broker.status.dropped', { count: dropped })})` : '';
    switch (event.status) {
      case 'connected':
        return { fill: dropped > 0 ? 'yellow' : 'green', shape: 'dot', text: droppedNote ? `${RED._(CONNECTED)}${droppedNote}` : CONNECTED };
      case 'connecting':
        return { fill: 'yellow', shape: 'ring', text: droppedNote ? `${RED._(CONNECTING)}${droppedNote}` : CONNECTING };
      case 'reconnecting':
        return { fill: 'yellow', shape: 'ring', text: `${RED._('lane-broker.status.reconnecting')}${reason(event.error)}${droppedNote}` };
      case 'disconnected':
        return event.error || droppedNote
          ? { fill: 'red', shape: 'ring', text: `${RED._(DISCONNECTED)}${reason(event.error)}${droppedNote}` }
          : { fill: 'red', shape: 'ring', text: DISCONNECTED };
      case 'error':
        return { fill: 'red', shape: 'ring', text: `${RED._(ERROR)}${reason(event.error)}` };
    }
  }

  function LaneBrokerNodeConstructor(this: LaneBrokerNode, config: LaneBrokerDef): void {
    RED.nodes.createNode(this, config);
    const node = this as LaneBrokerNode & { station: LaneStation | undefined; problem: Error | undefined };
    const users = new Map<string, LaneBrokerUser>();
    let lastEvent: ConnectionStatusEvent | undefined;

    try {
      const userDir = userDirOf(RED.settings as { userDir?: string });
      const coreId = typeof config.mqttBroker === 'string' ? config.mqttBroker.trim() : '';
      let options;
      if (coreId && coreId !== '_ADD_') {
        // The site's broker, as the core mqtt nodes already reach it (Node-RED creates that config node first).
        const core = RED.nodes.getNode(coreId) as (CoreMqttBroker & { type?: string }) | null;
        if (!core || core.type !== 'mqtt-broker') throw new LaneVisionError('MQTT_CONFIG_INVALID', RED._('lane-broker.errors.no-core-broker', { id: coreId }));
        options = stationOptionsOverCoreBroker(config, core, userDir);
      } else {
        options = stationOptionsFrom(config, node.credentials ?? {}, userDir);
      }
      node.station = new LaneStation(options);
    } catch (err) {
      node.station = undefined;
      node.problem = err instanceof Error ? err : new Error(String(err));
      node.error(RED._('lane-broker.errors.invalid-config', { message: node.problem.message }));
    }
    const station = node.station;

    function currentStatus(): NodeStatus {
      return statusOf(lastEvent, station?.dropped ?? 0, node.problem ?? station?.problem);
    }

    function showOnUsers(): void {
      const status = currentStatus();
      for (const user of users.values()) user.status(status);
    }

    if (station) {
      station.on('status', (event) => {
        lastEvent = event;
        showOnUsers();
      });
      station.on('command', (command) => {
        const takers = [...users.values()].filter((user) => user.laneCommand);
        if (takers.length === 0) {
          // Thrown into the station: answered on the error topic, so the sender learns it went nowhere.
          throw new LaneVisionError('COMMAND_NOT_HANDLED', RED._('lane-broker.errors.no-command-node', { command: command.name }));
        }
        for (const user of takers) user.laneCommand!(command);
      });
      station.on('command-rejected', (error) => {
        for (const user of users.values()) user.laneCommandRejected?.(error);
      });
      station.on('warning', (err) => node.warn(RED._('lane-broker.errors.warning', { message: readableError(err) })));
    }

    node.register = (user) => {
      users.set(user.id, user);
      if (station) {
        if (user.laneCommand) station.listenForCommands();
        if (users.size === 1) {
          station.start().catch((err: unknown) => {
            node.error(RED._('lane-broker.errors.start-failed', { message: err instanceof Error ? err.message : String(err) }));
          });
        }
      }
      user.status(currentStatus());
    };

    node.deregister = (user, done, removed) => {
      users.delete(user.id);
      user.status({ fill: 'red', shape: 'ring', text: DISCONNECTED });
      if (removed && users.size === 0 && station) {
        station.stop().then(
          () => done(),
          () => done(),
        );
      } else {
        done();
      }
    };

    node.reportEngine = (info: EngineInfo) => {
      station?.reportEngine(info);
    };

    node.refreshStatus = showOnUsers;

    node.on('close', (removed: boolean, done: () => void) => {
      users.clear();
      if (!station) return done();
      // A redeploy keeps an embedded broker for the next node with the same settings; deleting the node stops it.
      station.stop({ keepBroker: !removed }).then(
        () => done(),
        (err: unknown) => {
          node.warn(RED._('lane-broker.errors.stop-failed', { message: err instanceof Error ? err.message : String(err) }));
          done();
        },
      );
    });
  }

  // Declared here and in the editor; stored encrypted in the flow credentials file, never in the flow.
  RED.nodes.registerType<LaneBrokerNode, LaneBrokerDef, unknown, LaneBrokerCredentials>('lane-broker', LaneBrokerNodeConstructor, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
      ca: { type: 'text' },
      cert: { type: 'text' },
      key: { type: 'password' },
      passphrase: { type: 'password' },
    },
  });
};
