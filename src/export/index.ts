/** Models that leave the station: a stored version as ONNX, TensorFlow.js or Teachable Machine files. */
export { EXPORT_DESCRIPTION_FILE, EXPORT_FORMATS, ONNX_EXPORT_FILE, exportModel, type ExportDescription, type ExportFormat, type ExportOptions, type ExportResult } from './export.js';
export { ONNX_EXPORT_INPUT, ONNX_EXPORT_OUTPUT, ONNX_OPSET } from './onnx-export.js';
export { headLayers, type ExportHeadLayers } from './head-layers.js';
