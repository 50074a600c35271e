/**
 * lane-fleet: this station's part in a fleet of lanes (src/fleet FleetMember). It takes up
 * the versions other stations publish to the fleet (checked, stored in the lane-dataset's
 * model store, activated or staged; every classifier of the store hot-swaps), answers each
 * on MQTT, and publishes this station's versions when told to.
 *
 * A node of its own rather than a setting of lane-events: it speaks on the fleet's topics,
 * not the station's, moves binary retained chunks, and needs the lane's backbone (to refuse
 * versions trained on another) and model store, neither of which lane-events has.
 */
import type { NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow, Node } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import { FleetMember, type FleetAck, type FleetPolicy } from '../../src/fleet/index.js';
import type { BackboneConfigNode, DatasetConfigNode } from '../shared/config-types.js';
import { errorText, showStatus } from '../shared/status.js';

interface LaneFleetDef extends NodeDef {
  url: string;
  fleet: string;
  station: string;
  dataset: string;
  backbone: string;
  policy: FleetPolicy;
  /** Take up other stations' versions (default true). */
  receive?: boolean;
}

interface LaneFleetCredentials {
  user?: string;
  password?: string;
}

type Send = (msg: NodeMessage) => void;
type Done = (err?: Error) => void;

export = function (RED: NodeAPI) {
  function LaneFleetNode(this: Node<LaneFleetCredentials>, config: LaneFleetDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const datasetNode = RED.nodes.getNode(config.dataset) as DatasetConfigNode | null;
    const backboneNode = RED.nodes.getNode(config.backbone) as BackboneConfigNode | null;
    let member: FleetMember | undefined;
    let closing = false;

    const setupProblem = !datasetNode
      ? new LaneVisionError('FLEET_CONFIG_INVALID', RED._('lane-fleet.errors.no-dataset'))
      : !backboneNode
        ? new LaneVisionError('FLEET_CONFIG_INVALID', RED._('lane-fleet.errors.no-backbone'))
        : !config.fleet || !config.station
          ? new LaneVisionError('FLEET_CONFIG_INVALID', RED._('lane-fleet.errors.no-names'))
          : undefined;

    const ready: Promise<FleetMember> = setupProblem
      ? Promise.reject(setupProblem)
      : (async () => {
          const [backbone, store] = await Promise.all([backboneNode!.acquire(node), datasetNode!.models()]);
          const created = new FleetMember({
            // Node-RED substitutes a property that is only "${VAR}", not one inside a URL ("mqtt://host:${PORT}"): the env type expands both.
            // (The env type reads a value without "${" as a variable name, so only those with one go through it.)
            url: !config.url ? 'mqtt://127.0.0.1:1883' : config.url.includes('${') ? String(RED.util.evaluateNodeProperty(config.url, 'env', node, {})) : config.url,
            mqtt: node.credentials?.user ? { username: node.credentials.user, password: node.credentials.password } : {},
            fleet: config.fleet,
            station: config.station,
            store,
            backbone,
            policy: config.policy === 'stage' ? 'stage' : 'activate',
            receive: config.receive !== false && (config.receive as unknown) !== 'false',
          });
          // One log line per outage, not one per reconnect attempt.
          let outageLogged = false;
          created.on('connect', () => {
            outageLogged = false;
            showStatus(node, 'ready', RED._('lane-fleet.status.connected', { fleet: config.fleet }));
          });
          created.on('connection-error', (err) => {
            if (closing) return;
            showStatus(node, 'warning', `${RED._('lane-fleet.status.offline')}: ${errorText(err)}`);
            if (!outageLogged) node.warn(RED._('lane-fleet.warnings.unreachable', { message: errorText(err) }));
            outageLogged = true;
          });
          created.on('offline', () => !closing && showStatus(node, 'warning', RED._('lane-fleet.status.offline')));
          created.on('error', (err) => {
            if (closing) return;
            node.warn(RED._('lane-fleet.warnings.problem', { message: errorText(err) }));
          });
          created.on('applied', (ack: FleetAck) => {
            const text = `${ack.result} ${ack.release.slice(0, 8)}${ack.version ? ` as v${ack.version}` : ''}`;
            showStatus(node, ack.result === 'activated' || ack.result === 'staged' ? 'ready' : 'error', text);
            if (ack.error) node.error(RED._('lane-fleet.errors.applied', { result: ack.result, message: ack.error.message }));
            node.send({ topic: 'applied', payload: ack });
          });
          created.on('ack', (ack: FleetAck) => node.send({ topic: 'ack', payload: ack }));
          if (closing) await created.close();
          member = created;
          return created;
        })();
    ready.catch((err: unknown) => {
      showStatus(node, 'error', errorText(err));
      node.error(errorText(err));
    });
    showStatus(node, 'loading');

    /** msg.topic: "model" (lane-train's output) or "publish", "rollback", "activate", "activate-staged". */
    async function command(msg: NodeMessageInFlow): Promise<unknown> {
      const fleet = await ready;
      const payload = (msg.payload ?? {}) as { version?: unknown; activate?: unknown; activated?: unknown };
      const version = payload.version === undefined ? undefined : Number(String(payload.version).replace(/^v/, ''));
      if (version !== undefined && !(Number.isInteger(version) && version > 0)) {
        throw new LaneVisionError('FLEET_BAD_COMMAND', RED._('lane-fleet.errors.bad-version', { version: JSON.stringify(payload.version) }));
      }
      switch (msg.topic) {
        case 'model':
          // A training that did not activate its version made a candidate, not a release.
          if (payload.activated === false) return undefined;
          return fleet.publish(version);
        case 'publish':
          return fleet.publish(version, { activate: payload.activate !== false });
        case 'rollback':
          return fleet.rollback(version);
        case 'activate':
          return fleet.activateRelease(version);
        case 'activate-staged':
          return { version: await fleet.activateStaged() };
        default:
          throw new LaneVisionError('FLEET_BAD_COMMAND', RED._('lane-fleet.errors.unknown-command', { topic: String(msg.topic ?? '') }));
      }
    }

    node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
      command(msg).then(
        (result) => {
          // The same message goes on (an HTTP request's response object with it), topic and payload replaced.
          if (result) send(Object.assign(msg, { topic: `${String(msg.topic)}-sent`, payload: result }) as NodeMessage);
          done();
        },
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      Promise.resolve(member?.close())
        .catch(() => undefined)
        .then(() => {
          backboneNode?.release(node);
          done();
        });
    });
  }

  RED.nodes.registerType<Node<LaneFleetCredentials>, LaneFleetDef, unknown, LaneFleetCredentials>('lane-fleet', LaneFleetNode, {
    credentials: { user: { type: 'text' }, password: { type: 'password' } },
  });
};
