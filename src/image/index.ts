export type {
  CropRegion,
  FitPolicy,
  ImageInput,
  PreparedImage,
  PrepareOptions,
  RawImage,
  StorableImage,
  StorageFormat,
  StorageOptions,
  ViewTransform,
} from './types.js';
export { checkCrop, checkView, describeFit, describeView, isPlainView } from './geometry.js';
export { prepareImage, prepareSource, readImageSource } from './prepare.js';
export type { FileAccess, ImageSource, SourceLimits } from './source.js';
export { encodeForStorage } from './storage.js';
export { ImageErrorCode } from './errors.js';
export { DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_INPUT_PIXELS } from './source.js';
export type { DecodableFormat } from './sniff.js';
