/** int8 backbones: static QDQ quantisation of a converted ONNX backbone, calibrated on the lane's frames. */
export { calibrateRanges } from './calibrate.js';
export type { CalibrationOptions } from './calibrate.js';
export { DEFAULT_CALIBRATION_FRAMES, MIN_CALIBRATION_FRAMES, readCalibrationSet } from './calibration-frames.js';
export type { CalibrationSet } from './calibration-frames.js';
export { QUANTISER_VERSION, activationParams, foldPadsIntoConvs, planQuantisation, quantiseStatic, quantiseWeightPerChannel } from './qdq.js';
export type { QuantisationPlan, QuantisationSummary, TensorRange } from './qdq.js';
export { cosine, featureAgreement, quantiseBackbone } from './quantise-backbone.js';
export type { QuantisedBackbone } from './quantise-backbone.js';
