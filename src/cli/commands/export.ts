/** `lane-vision export`: a stored version as a self-contained ONNX, TensorFlow.js or Teachable Machine model. */
import * as path from 'node:path';
import { initBackend } from '../../engine/backend.js';
import { EXPORT_DESCRIPTION_FILE, EXPORT_FORMATS, exportModel } from '../../export/index.js';
import { openModelStore } from '../../model-store/index.js';
import { COMMON_OPTIONS, backendOption, needPositionals, oneOf, parseCommandLine, requiredOption } from '../args.js';
import { BACKEND_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { Output } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  store: { type: 'string', short: 's' },
  version: { type: 'string' },
  format: { type: 'string', short: 'f' },
  out: { type: 'string', short: 'o' },
} as const;

export const exportCommand: Command = {
  name: 'export',
  summary: 'write a stored version as an ONNX, TensorFlow.js or Teachable Machine model',
  help: `Usage: ${PROGRAM} export --store DIR --format onnx|tfjs|tm --out DIR [options]

Writes one model holding the backbone (the version's fine-tuned copy when it has one),
the head and the softmax: it takes an image and gives one probability per label. Beside
it, ${EXPORT_DESCRIPTION_FILE} says exactly how to feed it: inputSize [h, w], layout,
inputRange (RGB 0..255 mapped linearly onto [lo, hi]), the crop to cut out first (null,
{"fraction"} centred, or {"left","top","width","height"} in fractions of the frame), the
resize after it (cover), and the labels in output order with their codes.

  onnx   model.onnx, runs on any ONNX Runtime (opset 13); input "image", output "probabilities"
  tfjs   model.json + weights.bin, loads with plain tf.loadLayersModel (stock layers only)
  tm     the tfjs files plus Teachable Machine's metadata.json, for tmImage.load; only for
         versions TM could have made (MobileNet, 224x224, [-1,1], no crop), else an error

Options:
  -s, --store DIR                     the model store
  --version <n|vNNNN|latest|active>   model version (default: the active one)
  -f, --format onnx|tfjs|tm           what to write
  -o, --out DIR                       folder to create (must not exist)
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"dir", "description": {contents of ${EXPORT_DESCRIPTION_FILE}}}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('export', args, OPTIONS);
    needPositionals('export', positionals, '', { min: 0, max: 0 });
    const storeDir = path.resolve(requiredOption('export', 'store', values.store));
    const format = oneOf('export', 'format', requiredOption('export', 'format', values.format), EXPORT_FORMATS, 'onnx');
    const outDir = path.resolve(requiredOption('export', 'out', values.out));
    const out = new Output(values.json === true, streams);
    const backend = await initBackend(backendOption('export', values.backend));
    out.backend(backend);
    const store = await openModelStore(storeDir);
    const { dir, description } = await exportModel({ store, version: values.version, format, outDir });
    out.record({ dir, description });
    out.line(`exported model v${description.version} as ${format} to ${dir}: ${description.files.join(', ')}`);
    out.line(`feed it   ${description.inputSize[0]}x${description.inputSize[1]} ${description.layout} float32, RGB 0..255 -> [${description.inputRange.join(', ')}]`);
    out.line(`          crop ${description.crop ? JSON.stringify(description.crop) : 'none'}, then resize ${description.resize}`);
    out.line(`output    ${description.labels.map((l) => `${l.label} (${l.code})`).join(', ')}`);
    return 0;
  },
};
