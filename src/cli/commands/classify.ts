/** `lane-vision classify`: decide each image with a stored model, as the lane would. */
import * as path from 'node:path';
import { DEFAULT_THRESHOLD, DEFAULT_TOP_K, LaneClassifier } from '../../classify/index.js';
import { openModelStore } from '../../model-store/index.js';
import { BACKBONE_OPTIONS, COMMON_OPTIONS, integerOption, needPositionals, numberOption, parseCommandLine, requiredOption } from '../args.js';
import { backboneChoice, loadBackboneForModel } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, INT8_HELP, JSON_HELP, PROGRAM, errorRecord, type Command } from '../command.js';
import { Output, milliseconds, percent } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  store: { type: 'string', short: 's' },
  version: { type: 'string' },
  backbone: { type: 'string', short: 'b' },
  threshold: { type: 'string' },
  top: { type: 'string' },
} as const;

export const classifyCommand: Command = {
  name: 'classify',
  summary: 'decide each image with a stored model (label, code, confidence)',
  help: `Usage: ${PROGRAM} classify --store DIR IMAGE... [options]

Classifies each image with a model of the store, exactly as the lane does: the best
label and its stable code when its confidence reaches the threshold, else "unknown"
(code 0, for manual inspection).

Options:
  -s, --store DIR                     the model store
  --version <n|vNNNN|latest|active>   model version (default: the active one)
  -b, --backbone <folder|url|preset>  backbone to use (default: the one recorded with the model)
  --layer <name>                      feature layer / node of that backbone
  --threshold <0..1>                  confidence needed to accept a label (default ${DEFAULT_THRESHOLD})
  --top <k>                           ranked labels to show (default ${DEFAULT_TOP_K})
  ${ENGINE_HELP}
  ${INT8_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json each image gives {"image", "label", "code", "confidence", "accepted",
"threshold", "topK", "modelVersion", "backboneId", "engine", "backend", "frameHash",
"timings"}, or {"image", "error"}. Exit code 1 if any image could not be classified.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('classify', args, OPTIONS);
    const storeDir = path.resolve(requiredOption('classify', 'store', values.store));
    needPositionals('classify', positionals, 'IMAGE: name at least one image file', { min: 1 });
    const threshold = numberOption('classify', 'threshold', values.threshold, DEFAULT_THRESHOLD, { min: 0, max: 1 });
    const topK = integerOption('classify', 'top', values.top, DEFAULT_TOP_K, { min: 1, max: 1000 });
    const choice = backboneChoice('classify', values);
    const out = new Output(values.json === true, streams);

    const store = await openModelStore(storeDir);
    const model = await store.loadModel(values.version ?? 'active');
    const backbone = await loadBackboneForModel(model.metadata, values.backbone, choice, model.tunedBackboneDir, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      out.note(`model v${model.version} (${model.labels.length} labels) from ${storeDir}, threshold ${threshold}`);
      const classifier = new LaneClassifier({ backbone, threshold, topK });
      // The backbone loaded above is the version's own (tuned or not): its features are what the head takes.
      classifier.useModel(model, model.metadata.backbone.tuned ? backbone : undefined);
      let failures = 0;
      for (const image of positionals) {
        try {
          const result = await classifier.classify(image);
          out.record({ image, ...result });
          const verdict = result.accepted ? `${result.label} (code ${result.code})` : `unknown (code 0; best ${result.topK[0]?.label})`;
          out.line(`${image}  ${verdict}  ${percent(result.confidence)}  ${milliseconds(result.timings.totalMs)}`);
          out.line(`    ${result.topK.map((r) => `${r.label} ${percent(r.confidence)}`).join(', ')}`);
        } catch (err) {
          failures++;
          out.warn(`${PROGRAM} classify: ${image}: ${errorRecord(err).message}`);
          out.record({ image, error: errorRecord(err) });
        }
      }
      return failures > 0 ? 1 : 0;
    } finally {
      backbone.release();
    }
  },
};
