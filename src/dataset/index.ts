export type {
  AddMeta,
  AddResult,
  Dataset,
  DatasetEntry,
  DatasetOptions,
  FingerprintOptions,
  LabelCapPolicy,
  SkippedItem,
} from './types.js';
export { openDataset } from './dataset.js';
export { validateLabel, isReservedLabel, MAX_LABEL_BYTES, MANIFEST_FILE_NAME } from './labels.js';
