/** What a lane-broker config node offers the nodes that use it (lane-events, later others). */
import type { Node, NodeDef } from 'node-red';
import type { CommandError, EngineInfo, LaneCommand, LaneStation } from '../../src/events/index.js';

export interface LaneBrokerDef extends NodeDef {
  url: string;
  clientId: string;
  keepalive: string | number;
  cleanSession: boolean;
  line: string;
  station: string;
  topicTemplate: string;
  offlineQueueLimit: string | number;
  tlsVerify: boolean;
  /** A core mqtt-broker config node (and its tls-config) to connect to instead of the URL and the embedded broker. */
  mqttBroker?: string;
  /** Missing in hand-written flows: then on exactly when no URL is given. */
  embedded?: boolean;
  embeddedHost: string;
  embeddedPort: string | number;
  /** Carry out retained commands (they run again at every connect); default off. */
  acceptRetainedCommands?: boolean;
  /** Keep QoS >= 1 events on disk until confirmed, published again after a restart; default off. */
  durableOutbox?: boolean;
}

export interface LaneBrokerCredentials {
  user?: string;
  password?: string;
  /** PEM text. */
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
}

/** A node using the broker: it gets the connection status, and commands when it asks for them. */
export interface LaneBrokerUser extends Node {
  /** Set by nodes that output commands: called for every valid command. */
  laneCommand?: (command: LaneCommand) => void;
  /** Called for every malformed command (already answered on the error topic). */
  laneCommandRejected?: (error: CommandError) => void;
}

export interface LaneBrokerNode extends Node<LaneBrokerCredentials> {
  /** Undefined when the settings are unusable; then `problem` says why. */
  readonly station: LaneStation | undefined;
  readonly problem: Error | undefined;
  /** Connects on the first user (and subscribes to commands when the user takes them). */
  register(user: LaneBrokerUser): void;
  /** Disconnects after the last user when `removed` (deleted or disabled), as the core mqtt-broker does. */
  deregister(user: LaneBrokerUser, done: () => void, removed: boolean): void;
  /** Backend and model version the classifier reports, for the retained state. */
  reportEngine(info: EngineInfo): void;
  /** Shows the status again on every user (after a publish was dropped). */
  refreshStatus(): void;
}
