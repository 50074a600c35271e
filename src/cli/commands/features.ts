/** `lane-vision features`: what a backbone makes of each image (vector size, norm, timing). */
import { performance } from 'node:perf_hooks';
import type { Backbone } from '../../engine/types.js';
import { prepareImage } from '../../image/index.js';
import { BACKBONE_OPTIONS, COMMON_OPTIONS, needPositionals, parseCommandLine, requiredOption } from '../args.js';
import { backboneChoice, loadNamedBackbone } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, INT8_HELP, JSON_HELP, PROGRAM, errorRecord, type Command } from '../command.js';
import { Output, milliseconds } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  model: { type: 'string', short: 'm' },
  values: { type: 'boolean' },
} as const;

export const featuresCommand: Command = {
  name: 'features',
  summary: 'feature vector size, backend and timing per image',
  help: `Usage: ${PROGRAM} features --model <folder|url|preset> IMAGE... [options]

Runs a backbone on each image and reports the feature vector it gives (the input of
a trained head): its shape, its length (L2 norm), the backend and the time taken.

Options:
  -m, --model <folder|url|preset>     the backbone
  --layer <name>                      take the features from this layer / graph node (default: the model's feature layer)
  --values                            with --json, include the vector itself ("features")
  ${ENGINE_HELP}
  ${INT8_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json each image gives {"image", "shape", "norm", "model", "featureLayer",
"backend", "timings": {"decodeMs", "featuresMs"}}, or {"image", "error"}.
Exit code 1 if any image could not be read.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('features', args, OPTIONS);
    const source = requiredOption('features', 'model', values.model);
    needPositionals('features', positionals, 'IMAGE: name at least one image file', { min: 1 });
    const choice = backboneChoice('features', values);
    const out = new Output(values.json === true, streams);

    const backbone = await loadNamedBackbone(source, choice, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      const load = backbone.loadTimings;
      out.line(`model ${backbone.id}`);
      const loadMs = load.fetchMs + load.buildMs + load.warmupMs;
      out.line(
        `  layer ${backbone.featureLayer}, input ${backbone.inputSize.width}x${backbone.inputSize.height} ${backbone.inputRange}, ` +
          `loaded in ${milliseconds(loadMs)} (read ${milliseconds(load.fetchMs)}, build ${milliseconds(load.buildMs)}, warm-up ${milliseconds(load.warmupMs)})`,
      );
      let failures = 0;
      for (const image of positionals) {
        try {
          const result = await embedOne(backbone, image);
          out.record({
            image,
            shape: [result.features.length],
            norm: result.norm,
            model: backbone.id,
            featureLayer: backbone.featureLayer,
            backend: backbone.backend.name,
            engine: backbone.engine.name,
            precision: backbone.precision,
            timings: { decodeMs: result.decodeMs, featuresMs: result.featuresMs },
            ...(values.values ? { features: Array.from(result.features) } : {}),
          });
          out.line(
            `${image}  [${result.features.length}]  norm ${result.norm.toFixed(3)}  ` +
              `decode ${milliseconds(result.decodeMs)}, features ${milliseconds(result.featuresMs)} on ${backbone.engine.name} ${backbone.backend.name}`,
          );
        } catch (err) {
          failures++;
          out.warn(`${PROGRAM} features: ${image}: ${errorRecord(err).message}`);
          out.record({ image, error: errorRecord(err) });
        }
      }
      return failures > 0 ? 1 : 0;
    } finally {
      backbone.release();
    }
  },
};

async function embedOne(backbone: Backbone, image: string) {
  const decodeStart = performance.now();
  const frame = await prepareImage(image, { ...backbone.inputSize, fit: backbone.fit });
  const featuresStart = performance.now();
  const [features] = await backbone.engine.features([frame]);
  const featuresMs = performance.now() - featuresStart;
  let sumOfSquares = 0;
  for (const value of features) sumOfSquares += value * value;
  return { features, norm: Math.sqrt(sumOfSquares), decodeMs: featuresStart - decodeStart, featuresMs };
}
