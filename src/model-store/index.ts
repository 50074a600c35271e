export { openModelStore, ModelStore, versionFolderName, REGISTRY_FILE, ACTIVE_FILE, METADATA_FILE, HEAD_FILE, NOVELTY_FILE } from './store.js';
export { assignLabelCodes, emptyLabelCodeRegistry, mergeLabelCodes, validateLabels, FIRST_LABEL_CODE, type LabelCodeRegistry } from './label-codes.js';
export { backboneCompatibility, type BackboneCompatibility, type LoadedBackboneIdentity } from './backbone-identity.js';
export {
  readTeachableMachineExport,
  parseTeachableMachineExport,
  importTeachableMachineExport,
  importTeachableMachine,
  type TeachableMachineImportOptions,
  type TeachableMachineExport,
} from './teachable-machine.js';
export {
  MODEL_FORMAT_VERSION,
  TUNED_WEIGHTS_FILE,
  type TunedBackbone,
  type ActiveChange,
  type BackboneDescriptor,
  type HeadFileSpec,
  type ImportedFrom,
  type LabelCode,
  type LoadedModel,
  type ModelMetadata,
  type ModelStoreEvents,
  type NoveltyFileSpec,
  type OpenSetSpec,
  type SaveModelInput,
  type VersionRef,
  type VersionSummary,
} from './types.js';
