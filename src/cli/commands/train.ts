/** `lane-vision train`: retrain a head from a folder-per-class dataset into a model store. */
import * as path from 'node:path';
import { openDataset } from '../../dataset/index.js';
import { openModelStore } from '../../model-store/index.js';
import { retrain, type RetrainProgress } from '../../retrain/index.js';
import { HEAD_KINDS, type HeadKind, type TrainHeadParams } from '../../training/index.js';
import {
  BACKBONE_OPTIONS,
  COMMON_OPTIONS,
  integerOption,
  listOption,
  needPositionals,
  numberOption,
  oneOf,
  parseCommandLine,
  requiredOption,
} from '../args.js';
import { backboneChoice, loadNamedBackbone } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { selectLabels } from '../dataset-view.js';
import { Output, metricsReport, milliseconds, percent } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  backbone: { type: 'string', short: 'b' },
  data: { type: 'string', short: 'd' },
  store: { type: 'string', short: 's' },
  head: { type: 'string' },
  holdout: { type: 'string' },
  seed: { type: 'string' },
  labels: { type: 'string' },
  epochs: { type: 'string' },
  'target-precision': { type: 'string' },
  name: { type: 'string' },
} as const;

export const trainCommand: Command = {
  name: 'train',
  summary: 'retrain a classifier head from a folder of labelled images into a model store',
  help: `Usage: ${PROGRAM} train --backbone <folder|url|preset> --data DIR --store DIR [options]

Embeds every image of DIR (one sub-folder per label, opened read-only) with the
backbone, trains a head on part of it and scores it on the part held out, then
trains the final head on all of it and saves it as the next, active version of the
model store. Prints hold-out accuracy, per-label precision and recall, the confusion
matrix, the confidence threshold that reaches the target precision, and timings.

Options:
  -b, --backbone <folder|url|preset>  the backbone giving the features
  -d, --data DIR                      labelled images: DIR/<label>/*.jpg (also a dataset made by the capture node)
  -s, --store DIR                     model store to save the new version in (created if missing)
  --head softmax|mlp|prototype|knn    kind of head (default softmax)
  --holdout <share>                   share of each label held out for scoring (default 0.2)
  --seed <n>                          seed of the split and of the head's initial weights (default 1)
  --labels a,b,c                      train on these labels of DIR only (default: all)
  --epochs <n>                        optimiser steps for softmax / mlp (default: the library's)
  --target-precision <0.01..1>        precision the suggested threshold must reach (default 0.95)
  --layer <name>                      feature layer / node of the backbone (default: its feature layer)
  --name <text>                       model name stored in the metadata
  ${ENGINE_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"version", "activated", "store", "data",
"labels": [{"label", "code"}], "backbone", "backend", "engine", "metrics", "unreadable"},
where metrics has "holdout" (accuracy, macroF1, perClass, confusion), "threshold",
"timings" (ms) and "skippedImages".`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('train', args, OPTIONS);
    needPositionals('train', positionals, '', { min: 0, max: 0 });
    const source = requiredOption('train', 'backbone', values.backbone);
    const dataDir = path.resolve(requiredOption('train', 'data', values.data));
    const storeDir = path.resolve(requiredOption('train', 'store', values.store));
    const kind = oneOf<HeadKind>('train', 'head', values.head, HEAD_KINDS, 'softmax');
    const holdoutFraction = numberOption('train', 'holdout', values.holdout, 0.2, { min: 0, max: 1, exclusive: true });
    const seed = integerOption('train', 'seed', values.seed, 1, { min: 0, max: 2 ** 31 - 1 });
    const targetPrecision = numberOption('train', 'target-precision', values['target-precision'], 0.95, { min: 0.01, max: 1 });
    const head: TrainHeadParams = { kind, seed };
    if (values.epochs !== undefined) head.epochs = integerOption('train', 'epochs', values.epochs, 0, { min: 1, max: 100_000 });
    const labels = listOption(values.labels);
    const choice = backboneChoice('train', values);
    const out = new Output(values.json === true, streams);

    let dataset = await openDataset(dataDir, { readOnly: true });
    if (labels) dataset = selectLabels(dataset, labels);
    const store = await openModelStore(storeDir);
    const backbone = await loadNamedBackbone(source, choice);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      out.note(`training a ${kind} head on ${dataset.size} images of ${dataset.labels().length} labels in ${dataDir}`);
      // retrain leaves out files the dataset could not read as images; say which.
      const unreadable = (await dataset.entries()).filter((entry) => entry.problem).map((entry) => ({ path: entry.path, reason: entry.problem! }));
      const result = await retrain({
        dataset,
        backbone,
        store,
        head,
        seed,
        holdoutFraction,
        targetPrecision,
        modelName: values.name,
        onProgress: (progress) => out.progress(describeProgress(progress)),
      });
      out.progress(undefined);
      const metrics = result.metrics;
      out.record({
        command: 'train',
        version: result.version,
        activated: result.activated,
        store: storeDir,
        data: dataDir,
        labels: result.labels,
        backbone: { id: backbone.id, source: backbone.source, featureLayer: backbone.featureLayer, featureSize: backbone.featureSize },
        backend: backbone.backend.name,
        engine: backbone.engine.name,
        metrics,
        unreadable,
      });

      const holdout = metrics.holdout;
      out.line(`model v${result.version} saved in ${storeDir}${result.activated ? ' (active)' : ''}`);
      out.line(`backbone   ${backbone.id} (${backbone.featureSize} features)`);
      out.line(`backend    features on ${backbone.engine.name} ${backbone.backend.name}, head trained on tfjs ${metrics.backend}`);
      out.line(
        `data       ${metrics.trainCount + metrics.holdoutCount} images, ${result.labels.length} labels: ` +
          `${metrics.trainCount} to train, ${metrics.holdoutCount} held out` +
          (unreadable.length + metrics.skippedImages.length ? `; ${unreadable.length + metrics.skippedImages.length} unreadable, left out` : ''),
      );
      out.line(`head       ${metrics.headKind}`);
      out.line('');
      out.line(`hold-out accuracy ${percent(holdout.accuracy)} (${Math.round(holdout.accuracy * holdout.count)}/${holdout.count}), macro F1 ${holdout.macroF1.toFixed(3)}`);
      out.line('');
      for (const line of metricsReport(holdout, result.labels.map((l) => l.code))) out.line(line);
      out.line('');
      const threshold = metrics.threshold;
      out.line(
        threshold.reached
          ? `threshold for ${percent(threshold.targetPrecision, 0)} precision: ${threshold.threshold!.toFixed(3)} ` +
              `(rejects ${percent(threshold.rejectedShare)} of held-out frames, accepted precision ${percent(threshold.precision)})`
          : `threshold for ${percent(threshold.targetPrecision, 0)} precision: not reachable on the held-out frames (add more images)`,
      );
      const t = metrics.timings;
      out.line(
        `timings    features ${milliseconds(t.featuresMs)} (${t.cachedFeatures} cached), training ${milliseconds(t.trainMs)}, total ${milliseconds(t.totalMs)}`,
      );
      for (const skipped of [...unreadable, ...metrics.skippedImages]) out.warn(`${PROGRAM} train: left out ${skipped.path}: ${skipped.reason}`);
      return 0;
    } finally {
      out.progress(undefined);
      backbone.release();
    }
  },
};

function describeProgress(progress: RetrainProgress): string {
  switch (progress.phase) {
    case 'features':
      return `features ${progress.done}/${progress.total}`;
    case 'training':
      return `training epoch ${progress.epoch}/${progress.epochs}, loss ${progress.loss.toFixed(3)}, accuracy ${percent(progress.accuracy)}`;
    case 'saving':
      return 'saving';
  }
}
