/** `lane-vision advise`: which transfer-learning scenario a dataset is in, and what would help. */
import * as path from 'node:path';
import { EARLIER_LAYERS, adviseScenario, imagenetConfidence, separability } from '../../advisor/index.js';
import { isLaneVisionError } from '../../errors.js';
import type { Backbone } from '../../engine/types.js';
import { openDataset } from '../../dataset/index.js';
import { embedImagesSettled } from '../../features/index.js';
import { groupedFolds, groupFrames } from '../../pipeline/index.js';
import { BACKBONE_OPTIONS, COMMON_OPTIONS, listOption, needPositionals, parseCommandLine, requiredOption } from '../args.js';
import { backboneChoice, loadNamedBackbone } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, INT8_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { selectLabels } from '../dataset-view.js';
import { Output, percent } from '../output.js';
import { adviceLines } from './train.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  backbone: { type: 'string', short: 'b' },
  data: { type: 'string', short: 'd' },
  labels: { type: 'string' },
  'earlier-layer': { type: 'string' },
} as const;

export const adviseCommand: Command = {
  name: 'advise',
  summary: 'which transfer-learning scenario a dataset is in, and what would help most',
  help: `Usage: ${PROGRAM} advise --backbone <folder|url|preset> --data DIR [options]

Reads every image of DIR (one sub-folder per label) through the backbone and measures
what decides how to transfer: examples per label, how well the labels separate in the
backbone's features (near-duplicates held out together) at its feature layer and at an
earlier layer, and how confident the backbone's own ImageNet classifier is (when it has
one). Then says which scenario the data is in (small or large data, similar to ImageNet
or not), what the seeds prescribe for it, what Lane Vision does about it, and what would
help most. Nothing is trained or written.

Options:
  -b, --backbone <folder|url|preset>  the backbone
  -d, --data DIR                      labelled images: DIR/<label>/*.jpg
  --labels a,b,c                      these labels of DIR only
  --layer <name>                      feature layer (default: the backbone's)
  --earlier-layer <name>              the earlier layer to compare with (default: the first of
                                      ${EARLIER_LAYERS.slice(0, 3).join(', ')} the backbone has)
  ${ENGINE_HELP}
  ${INT8_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"data", "backbone", "advice": {"dataSize",
"similarity", "scenario", "prescription", "action", "recommendations", "measures"}}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('advise', args, OPTIONS);
    needPositionals('advise', positionals, '', { min: 0, max: 0 });
    const source = requiredOption('advise', 'backbone', values.backbone);
    const dataDir = path.resolve(requiredOption('advise', 'data', values.data));
    const labels = listOption(values.labels);
    const choice = backboneChoice('advise', values);
    const out = new Output(values.json === true, streams);

    let dataset = await openDataset(dataDir, { readOnly: true, create: false });
    if (labels) dataset = selectLabels(dataset, labels);
    const entries = (await dataset.entries()).filter((e) => !e.problem);
    const backbone = await loadNamedBackbone(source, choice, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      const fit = backbone.fit;
      const paths = entries.map((e) => e.path);
      out.progress(`features of ${paths.length} images`);
      const readable = await readableFeatures(backbone, paths);
      const names = [...new Set(readable.map((r) => entries[r.index].label))].sort();
      const targets = readable.map((r) => names.indexOf(entries[r.index].label));
      const countsPerLabel = Object.fromEntries(names.map((n) => [n, 0]));
      for (const r of readable) countsPerLabel[entries[r.index].label]++;
      const features = readable.map((r) => r.features);
      const fold = groupedFolds(groupFrames(features, targets, readable.map((r) => entries[r.index].session)), targets, 5);
      const atFeatures = names.length >= 2 ? await separability(features, targets, names, fold) : undefined;
      out.progress('an earlier layer');
      const earlier = names.length >= 2 ? await earlierLayer(source, choice, values['earlier-layer'], readable.map((r) => paths[r.index]), targets, names, fold) : undefined;
      const confidence = await imagenetConfidence(backbone, paths, fit);
      out.progress(undefined);
      const advice = adviseScenario({ countsPerLabel, featureSeparability: atFeatures, earlierLayer: earlier, imagenetConfidence: confidence });
      out.record({ command: 'advise', data: dataDir, backbone: { id: backbone.id, source: backbone.source, featureLayer: backbone.featureLayer }, advice });
      out.line(`data       ${advice.measures.images} images, ${advice.measures.labels} labels (${advice.measures.examplesPerLabel.min} to ${advice.measures.examplesPerLabel.max} per label, median ${advice.measures.examplesPerLabel.median}) in ${dataDir}`);
      out.line(`backbone   ${backbone.id}`);
      out.line(`separable  ${atFeatures === undefined ? 'n/a' : percent(atFeatures)} at ${backbone.featureLayer}` + (earlier ? `, ${percent(earlier.separability)} at ${earlier.name}` : ', no earlier layer to compare') + ' (nearest class mean, near-duplicates held out)');
      out.line(`imagenet   ${confidence === undefined ? 'the backbone has no ImageNet classifier' : `its own classifier's mean top-1 confidence ${percent(confidence)}`}`);
      out.line('');
      for (const line of adviceLines(advice)) out.line(line);
      return 0;
    } finally {
      out.progress(undefined);
      backbone.release();
    }
  },
};

async function readableFeatures(backbone: Backbone, paths: readonly string[]): Promise<{ index: number; features: Float32Array }[]> {
  const report = await embedImagesSettled(backbone, paths, { cache: null });
  return report.results.flatMap((r, index) => ('error' in r ? [] : [{ index, features: r.features }]));
}

/** Separability at the named earlier layer, or the first of EARLIER_LAYERS the backbone has; undefined when none loads. */
async function earlierLayer(
  source: string,
  choice: ReturnType<typeof backboneChoice>,
  named: string | undefined,
  paths: readonly string[],
  targets: readonly number[],
  names: readonly string[],
  fold: Int32Array,
): Promise<{ name: string; separability: number } | undefined> {
  for (const layer of named ? [named] : EARLIER_LAYERS) {
    let earlier: Backbone;
    try {
      earlier = await loadNamedBackbone(source, { ...choice, featureLayer: layer });
    } catch (err) {
      if (named || !isLaneVisionError(err)) throw err;
      continue; // this family's layer is not in this backbone
    }
    try {
      const features = (await embedImagesSettled(earlier, paths, { cache: null })).results.map((r) => ('error' in r ? new Float32Array(earlier.featureSize) : r.features));
      return { name: layer, separability: await separability(features, targets, names, fold) };
    } finally {
      earlier.release();
    }
  }
  return undefined;
}
