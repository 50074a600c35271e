/** `lane-vision predict`: a pretrained model's own classes (ImageNet for most) for each image. */
import { performance } from 'node:perf_hooks';
import { LaneVisionError } from '../../errors.js';
import { IMAGENET_BACKGROUND, topK } from '../../engine/imagenet.js';
import type { Backbone } from '../../engine/types.js';
import { prepareImage } from '../../image/index.js';
import { COMMON_OPTIONS, backendOption, engineOption, integerOption, needPositionals, parseCommandLine, requiredOption } from '../args.js';
import { loadNamedBackbone } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, JSON_HELP, PROGRAM, errorRecord, type Command } from '../command.js';
import { Output, milliseconds, percent } from '../output.js';

const OPTIONS = { ...COMMON_OPTIONS, engine: { type: 'string' }, model: { type: 'string', short: 'm' }, top: { type: 'string' } } as const;

export const predictCommand: Command = {
  name: 'predict',
  summary: "the model's own top classes (ImageNet for most) for each image",
  help: `Usage: ${PROGRAM} predict --model <folder|url|preset> IMAGE... [options]

Runs a pretrained classification model as it is and prints its most likely classes
for each image (ImageNet classes for ImageNet models, else the labels in the
model's metadata.json).

Options:
  -m, --model <folder|url|preset>     the model (a folder holding model.json, an http(s) URL, or a preset name)
  --top <k>                           how many classes to list per image (default 5)
  ${ENGINE_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json each image gives {"image", "top": [{"label", "index", "probability"}],
"model", "backend", "timings": {"decodeMs", "modelMs"}}, or {"image", "error"}.
Exit code 1 if any image could not be classified.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('predict', args, OPTIONS);
    const source = requiredOption('predict', 'model', values.model);
    needPositionals('predict', positionals, 'IMAGE: name at least one image file', { min: 1 });
    const k = integerOption('predict', 'top', values.top, 5, { min: 1, max: 1001 });
    const choice = { backend: backendOption('predict', values.backend), engine: engineOption('predict', values.engine) };
    const out = new Output(values.json === true, streams);

    const backbone = await loadNamedBackbone(source, choice, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      if (backbone.engine.outputSize === 0) {
        throw new LaneVisionError(
          'MODEL_HAS_NO_CLASSIFIER',
          `${backbone.source} has no classifier of its own (it gives ${backbone.featureSize} features): ` +
            `use "${PROGRAM} features", or train a head with "${PROGRAM} train"`,
        );
      }
      let failures = 0;
      for (const image of positionals) {
        try {
          printPrediction(out, image, await predictOne(backbone, image, k), backbone);
        } catch (err) {
          failures++;
          out.warn(`${PROGRAM} predict: ${image}: ${errorRecord(err).message}`);
          out.record({ image, error: errorRecord(err) });
        }
      }
      return failures > 0 ? 1 : 0;
    } finally {
      backbone.release();
    }
  },
};

interface Prediction {
  top: { label: string; index: number; probability: number }[];
  decodeMs: number;
  modelMs: number;
}

async function predictOne(backbone: Backbone, image: string, k: number): Promise<Prediction> {
  const decodeStart = performance.now();
  const frame = await prepareImage(image, { ...backbone.inputSize, fit: backbone.fit });
  const modelStart = performance.now();
  const [probabilities] = await backbone.engine.predict([frame]);
  const modelMs = performance.now() - modelStart;
  const labels = backbone.classLabels ?? [];
  // 1001-way ImageNet models have a "background" output 0 that is never an answer.
  const skip = labels.length === 1001 && labels[0] === IMAGENET_BACKGROUND ? [0] : [];
  return { top: topK(probabilities, labels, k, skip), decodeMs: modelStart - decodeStart, modelMs };
}

function printPrediction(out: Output, image: string, prediction: Prediction, backbone: Backbone): void {
  out.record({
    image,
    top: prediction.top,
    model: backbone.id,
    backend: backbone.backend.name,
    engine: backbone.engine.name,
    timings: { decodeMs: prediction.decodeMs, modelMs: prediction.modelMs },
  });
  out.line(`${image}  (decode ${milliseconds(prediction.decodeMs)}, model ${milliseconds(prediction.modelMs)})`);
  prediction.top.forEach((ranked, i) => out.line(`  ${String(i + 1).padStart(2)}. ${percent(ranked.probability).padStart(6)}  ${ranked.label}`));
}
