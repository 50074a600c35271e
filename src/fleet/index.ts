/** One trained model to every lane: versions published to a fleet over MQTT, checked, stored and acknowledged by each station. */
export { packVersion, unpackBundle, type BundleFile, type VersionBundle } from './bundle.js';
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_FLEET_PREFIX,
  FLEET_SCHEMA_VERSION,
  fleetTopics,
  parseManifest,
  fleetAckSchema,
  fleetManifestSchema,
  type FleetAck,
  type FleetManifest,
  type FleetManifestKind,
  type FleetResult,
  type FleetTopics,
} from './manifest.js';
export { DEFAULT_FETCH_TIMEOUT_MS, FLEET_STATE_FILE, FleetMember, type FleetMemberOptions, type FleetPolicy } from './fleet-member.js';
