/** `lane-vision train`: retrain a head from a folder-per-class dataset into a model store. */
import * as path from 'node:path';
import { openDataset } from '../../dataset/index.js';
import { openModelStore } from '../../model-store/index.js';
import { DEFAULT_BUDGET_SECONDS, DEFAULT_FOLDS, retrain, type RetrainOptions, type RetrainProgress } from '../../retrain/index.js';
import { HEAD_KINDS, type HeadKind, type TrainHeadParams } from '../../training/index.js';
import { MAX_TEST_VIEWS, MAX_VIEWS, TRAINING_STRATEGIES, type PipelineReport, type TrainingStrategy } from '../../pipeline/index.js';
import type { Advice } from '../../advisor/index.js';
import { FINE_TUNE_DEFAULTS } from '../../fine-tuning/index.js';
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
import { BACKEND_HELP, ENGINE_HELP, INT8_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { selectLabels } from '../dataset-view.js';
import { Output, metricsReport, milliseconds, percent, table } from '../output.js';
import { UsageError } from '../args.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  backbone: { type: 'string', short: 'b' },
  data: { type: 'string', short: 'd' },
  store: { type: 'string', short: 's' },
  strategy: { type: 'string' },
  budget: { type: 'string' },
  validation: { type: 'string' },
  head: { type: 'string' },
  crop: { type: 'string' },
  views: { type: 'string' },
  'test-views': { type: 'string' },
  folds: { type: 'string' },
  holdout: { type: 'string' },
  'reject-labels': { type: 'string' },
  seed: { type: 'string' },
  labels: { type: 'string' },
  epochs: { type: 'string' },
  blocks: { type: 'string' },
  'final-training': { type: 'boolean' },
  'target-precision': { type: 'string' },
  name: { type: 'string' },
} as const;

export const trainCommand: Command = {
  name: 'train',
  summary: 'retrain a classifier head from a folder of labelled images into a model store',
  help: `Usage: ${PROGRAM} train --backbone <folder|url|preset> --data DIR --store DIR [options]

Embeds every image of DIR (one sub-folder per label, opened read-only) with the
backbone, chooses the pipeline (what part of the frame to look at, which head, which
extra views of each frame) by scoring candidates on frames their heads did not see,
trains the chosen one on all the images and saves it as the next, active version of
the model store, with its crop, so it is served as it was trained.

The accuracy it reports is honest: near-duplicate frames (the same pack photographed a
few times in a row) stay on one side of every split, whole capture sessions are held out
when the dataset records several, and --validation scores on frames of another session
instead, the figure that predicts the next shift. Prints that accuracy with what it is,
per-label precision and recall, the confusion matrix, the candidates tried, the
confidence threshold that reaches the target precision, advice, and timings.

Options:
  -b, --backbone <folder|url|preset>  the backbone giving the features
  -d, --data DIR                      labelled images: DIR/<label>/*.jpg (also a dataset made by the capture node)
  -s, --store DIR                     model store to save the new version in (created if missing)
  --strategy auto|fixed|fine-tune     auto (default): search crop, head and views; fixed: train the
                                      --head, --crop and --views given (--head alone implies fixed)
  --budget <seconds>                  time the auto search may take (default ${DEFAULT_BUDGET_SECONDS})
  --validation DIR                    labelled images of another session to score on (and choose by)
  --head ${HEAD_KINDS.join('|')}
                                      head for fixed (default logistic)
  --crop <0.05..1|none>               fixed: centred share of the frame to look at (default none)
  --views <0..${MAX_VIEWS}>                   fixed: augmentation views per image (default 0)
  --test-views <0..${MAX_TEST_VIEWS}|auto>         views averaged per frame when classifying (default 0: one
                                      backbone run per frame; auto lets the search choose)
  --folds <n>                         folds of the grouped cross-validation (default ${DEFAULT_FOLDS})
  --holdout <share>                   older form of --folds: 0.2 means 5 folds
  --seed <n>                          seed of the folds, views and initial weights (default 1)
  --labels a,b,c                      train on these labels of DIR only (default: all)
  --reject-labels a,b                 labels that are reject classes (e.g. other products, an empty
                                      belt): trained like any, but a frame like them goes to inspection
  --epochs <n>                        optimiser steps (softmax / mlp) or iterations (logistic / svm);
                                      with --strategy fine-tune, epochs of the backbone's blocks (default ${FINE_TUNE_DEFAULTS.epochs})
  --blocks <n>                        fine-tune: the backbone's last depthwise blocks to train (default 2 for
                                      MobileNet V2/V3, 1 for V1; a graph model cannot be fine-tuned)
  --final-training                    fine-tune: once the held-out groups chose the epoch count, train the
                                      blocks again on every frame for that many epochs (about twice the time)
  --target-precision <0.01..1>        precision the suggested threshold must reach (default 0.95)
  --layer <name>                      feature layer / node of the backbone (default: its feature layer)
  --name <text>                       model name stored in the metadata
  ${ENGINE_HELP}
  ${INT8_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"version", "activated", "store", "data",
"labels": [{"label", "code"}], "backbone", "backend", "engine", "metrics", "unreadable"},
and "skipped" (folders and files of DIR that are not labels or images: kind, path, reason),
where metrics has "holdout" (the honest estimate: accuracy, macroF1, perClass,
confusion), "validation" (what the estimate is: kind, optimistic, folds, groups, note),
"pipeline" (spec, candidates, searchMs), "advice", "threshold", "timings" (ms) and
"skippedImages".`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('train', args, OPTIONS);
    needPositionals('train', positionals, '', { min: 0, max: 0 });
    const source = requiredOption('train', 'backbone', values.backbone);
    const dataDir = path.resolve(requiredOption('train', 'data', values.data));
    const storeDir = path.resolve(requiredOption('train', 'store', values.store));
    const seed = integerOption('train', 'seed', values.seed, 1, { min: 0, max: 2 ** 31 - 1 });
    const targetPrecision = numberOption('train', 'target-precision', values['target-precision'], 0.95, { min: 0.01, max: 1 });
    const pipelineOptions = pipelineOptionsFrom(values, seed);
    const labels = listOption(values.labels);
    const choice = backboneChoice('train', values);
    const out = new Output(values.json === true, streams);

    let dataset = await openDataset(dataDir, { readOnly: true });
    if (labels) dataset = selectLabels(dataset, labels);
    const validationDir = values.validation === undefined ? undefined : path.resolve(values.validation);
    const validation = validationDir ? await openDataset(validationDir, { readOnly: true, create: false }) : undefined;
    const skipped = [
      ...dataset.skipped().map((item) => ({ ...item, path: path.join(dataDir, item.path) })),
      ...(validation?.skipped() ?? []).map((item) => ({ ...item, path: path.join(validationDir!, item.path) })),
    ];
    // Said before the long part, so a folder left out by mistake is seen at once.
    for (const item of skipped) out.warn(`${PROGRAM} train: warning: skipped ${item.kind} ${item.path}: ${item.reason}`);
    const store = await openModelStore(storeDir);
    const backbone = await loadNamedBackbone(source, choice, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      out.note(
        `training on ${dataset.size} images of ${dataset.labels().length} labels in ${dataDir} (${
          pipelineOptions.strategy === 'auto'
            ? `searching the pipeline, up to ${pipelineOptions.budgetSeconds ?? DEFAULT_BUDGET_SECONDS} s`
            : pipelineOptions.strategy === 'fine-tune'
              ? "fine-tuning the backbone's last blocks, then the head: minutes"
              : 'fixed pipeline'
        })`,
      );
      // retrain leaves out files the dataset could not read as images; say which.
      const unreadable = (await dataset.entries()).filter((entry) => entry.problem).map((entry) => ({ path: entry.path, reason: entry.problem! }));
      // fine-tune takes the crop and views (at least FINE_TUNE_MIN_VIEWS) of the active version's pipeline (train auto first), as the nodes do.
      const previous = pipelineOptions.strategy === 'fine-tune' ? await store.readMetadata('active').then((m) => m.pipeline, () => undefined) : undefined;
      const result = await retrain({
        dataset,
        backbone,
        store,
        ...(previous ? { previous } : {}),
        ...pipelineOptions,
        rejectLabels: listOption(values['reject-labels']),
        validation,
        seed,
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
        skipped,
      });

      const holdout = metrics.holdout;
      const pipeline = metrics.pipeline;
      out.line(`model v${result.version} saved in ${storeDir}${result.activated ? ' (active)' : ''}`);
      out.line(`backbone   ${backbone.id} (${backbone.featureSize} features)`);
      out.line(`backend    features on ${backbone.engine.name} ${backbone.backend.name}, head trained on tfjs ${metrics.backend}`);
      out.line(
        `data       ${metrics.trainCount} images, ${result.labels.length} labels` +
          (unreadable.length + metrics.skippedImages.length ? `; ${unreadable.length + metrics.skippedImages.length} unreadable, left out` : '') +
          (validationDir ? `; validation ${metrics.holdoutCount} images in ${validationDir}` : ''),
      );
      out.line(`pipeline   ${pipeline.candidates.find((c) => c.chosen)?.name ?? metrics.headKind} (${describeStrategy(pipeline)})`);
      out.line('');
      out.line(
        `accuracy ${percent(holdout.accuracy)} (${Math.round(holdout.accuracy * holdout.count)}/${holdout.count}), macro F1 ${holdout.macroF1.toFixed(3)}` +
          ` — ${metrics.validation.kind}${metrics.validation.optimistic ? ', optimistic' : ''}`,
      );
      out.line(metrics.validation.note);
      out.line('');
      for (const line of metricsReport(holdout, result.labels.map((l) => l.code))) out.line(line);
      out.line('');
      for (const line of candidateTable(pipeline)) out.line(line);
      out.line('');
      const threshold = metrics.threshold;
      out.line(
        threshold.reached
          ? `threshold for ${percent(threshold.targetPrecision, 0)} precision: ${threshold.threshold!.toFixed(3)} ` +
              `(rejects ${percent(threshold.rejectedShare)} of held-out frames, accepted precision ${percent(threshold.precision)})`
          : `threshold for ${percent(threshold.targetPrecision, 0)} precision: not reachable on the held-out frames (add more images)`,
      );
      if (metrics.fineTune) {
        const f = metrics.fineTune;
        const epochMs = f.history.reduce((sum, e) => sum + e.epochMs, 0) / Math.max(1, f.history.length);
        out.line(
          `fine-tune  ${f.blocks} block(s) after ${f.cut}: ${f.history.length} epochs (best ${f.bestEpoch}), ${milliseconds(epochMs)}/epoch, ` +
            `held-out ${f.heldOutKind === 'validation-set' ? 'validation frames' : 'groups'} ${percent(f.frozenValidationAccuracy)} -> ${percent(f.validationAccuracy)} of ${f.heldOutFrames} frames` +
            `${f.bestEpoch === 0 ? ' (no epoch beat the pretrained blocks: kept them)' : ''}; activations ${milliseconds(f.activationMs)} on ${f.bottomEngine}` +
            `${f.cachedActivations ? ` (${f.cachedActivations} cached)` : ''}, tuned features ${milliseconds(f.featuresMs)}, rss ${f.rssMb} MB`,
        );
        if (f.finalTraining) {
          out.line(`           final training on all ${f.finalTraining.frames} frames (${f.finalTraining.samples} with views): ${f.finalTraining.epochs} epochs, ${milliseconds(f.finalTraining.trainMs)}`);
        }
      }
      out.line('');
      for (const line of adviceLines(metrics.advice)) out.line(line);
      out.line('');
      const t = metrics.timings;
      out.line(
        `timings    features ${milliseconds(t.featuresMs)} (${t.cachedFeatures} cached), search ${milliseconds(t.searchMs)}, final head ${milliseconds(t.trainMs)}, total ${milliseconds(t.totalMs)}`,
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
      return `features ${progress.done}/${progress.total}${progress.what ? ` (${progress.what})` : ''}`;
    case 'search':
      return `candidate ${progress.done} scored: ${progress.name}`;
    case 'training':
      return `final head, step ${progress.epoch}/${progress.epochs}, loss ${progress.loss.toFixed(3)}`;
    case 'fine-tune':
      return `fine-tune ${progress.stage ? `${progress.stage}, ` : ''}epoch ${progress.epoch}/${progress.epochs}, loss ${progress.loss.toFixed(3)}, held-out ${Number.isNaN(progress.validationAccuracy) ? '-' : percent(progress.validationAccuracy)} (${milliseconds(progress.epochMs)})`;
    case 'saving':
      return 'saving';
  }
}

type TrainValues = {
  strategy?: string;
  budget?: string;
  head?: string;
  crop?: string;
  views?: string;
  'test-views'?: string;
  folds?: string;
  holdout?: string;
  epochs?: string;
  blocks?: string;
  'final-training'?: boolean;
};

/** The pipeline part of the command line; --head (or --crop, --views) without --strategy means fixed. */
export function pipelineOptionsFrom(values: TrainValues, seed: number): Pick<RetrainOptions, 'strategy' | 'budgetSeconds' | 'head' | 'crop' | 'trainViews' | 'testViews' | 'folds' | 'fineTune'> & { strategy: TrainingStrategy } {
  const givesFixed = values.head !== undefined || values.crop !== undefined || values.views !== undefined;
  const strategy = oneOf<TrainingStrategy>('train', 'strategy', values.strategy, TRAINING_STRATEGIES, givesFixed ? 'fixed' : 'auto');
  if (strategy === 'auto' && givesFixed) throw new UsageError('train', '--head, --crop and --views choose a fixed pipeline: leave them out with --strategy auto');
  const options: ReturnType<typeof pipelineOptionsFrom> = { strategy };
  // Checked with either strategy, so a wrong value is never silently ignored.
  const epochs = values.epochs === undefined ? undefined : integerOption('train', 'epochs', values.epochs, 0, { min: 1, max: 100_000 });
  if (values.budget !== undefined) options.budgetSeconds = numberOption('train', 'budget', values.budget, DEFAULT_BUDGET_SECONDS, { min: 1, max: 24 * 3600 });
  if (values.blocks !== undefined && strategy !== 'fine-tune') throw new UsageError('train', '--blocks needs --strategy fine-tune');
  if (values['final-training'] && strategy !== 'fine-tune') throw new UsageError('train', '--final-training needs --strategy fine-tune');
  if (strategy === 'fine-tune') {
    options.fineTune = {};
    if (values.epochs !== undefined) options.fineTune.epochs = integerOption('train', 'epochs', values.epochs, 6, { min: 1, max: 100 });
    if (values.blocks !== undefined) options.fineTune.blocks = integerOption('train', 'blocks', values.blocks, 2, { min: 1, max: 8 });
    if (values['final-training']) options.fineTune.finalTraining = true;
    if (values.head !== undefined) options.head = { kind: oneOf<HeadKind>('train', 'head', values.head, HEAD_KINDS, 'logistic'), seed };
    if (values.crop !== undefined) options.crop = values.crop === 'none' ? null : { fraction: numberOption('train', 'crop', values.crop, 1, { min: 0.05, max: 1 }) };
    if (values.views !== undefined) options.trainViews = integerOption('train', 'views', values.views, 0, { min: 0, max: MAX_VIEWS });
  } else if (strategy === 'fixed') {
    const head: TrainHeadParams = { kind: oneOf<HeadKind>('train', 'head', values.head, HEAD_KINDS, 'logistic'), seed };
    if (epochs !== undefined) head.epochs = epochs;
    options.head = head;
    if (values.crop !== undefined && values.crop !== 'none') options.crop = { fraction: numberOption('train', 'crop', values.crop, 1, { min: 0.05, max: 1 }) };
    if (values.views !== undefined) options.trainViews = integerOption('train', 'views', values.views, 0, { min: 0, max: MAX_VIEWS });
  }
  if (values['test-views'] !== undefined) {
    options.testViews = values['test-views'] === 'auto' ? 'auto' : integerOption('train', 'test-views', values['test-views'], 0, { min: 0, max: MAX_TEST_VIEWS });
  }
  if (values.folds !== undefined) options.folds = integerOption('train', 'folds', values.folds, DEFAULT_FOLDS, { min: 2, max: 20 });
  else if (values.holdout !== undefined) {
    const share = numberOption('train', 'holdout', values.holdout, 0.2, { min: 0.05, max: 0.5 });
    options.folds = Math.round(1 / share);
  }
  return options;
}

function describeStrategy(pipeline: PipelineReport): string {
  if (pipeline.strategy === 'reused') return 'reused from the previous version';
  if (pipeline.strategy === 'fixed') return 'as given';
  if (pipeline.strategy === 'fine-tune') return 'on the fine-tuned backbone';
  const scored = pipeline.candidates.filter((c) => c.accuracy !== null).length;
  return `best of ${scored} candidates in ${milliseconds(pipeline.searchMs)}`;
}

function candidateTable(pipeline: PipelineReport): string[] {
  const rows = pipeline.candidates.map((c) => [
    c.chosen ? '*' : '',
    c.stage,
    c.name,
    c.accuracy === null ? (c.skipped ?? 'skipped') : percent(c.accuracy),
    milliseconds(c.fitMs),
    milliseconds(c.embedMs),
    String(c.backboneRunsPerFrame),
  ]);
  const lines = table(['', 'stage', 'candidate', 'accuracy', 'fit', 'features', 'runs/frame'], rows, [false, false, false, true, true, true, true]);
  if (pipeline.testViewsMeasured) {
    lines.push(`test-time views (${pipeline.testViewsMeasured.testViews}, not used: they multiply the backbone runs per frame): ${percent(pipeline.testViewsMeasured.accuracy)}; use --test-views to serve with them`);
  }
  return lines;
}

export function adviceLines(advice: Advice): string[] {
  return [
    `scenario   ${advice.scenario}: ${advice.prescription}`,
    `action     ${advice.action}`,
    ...advice.recommendations.map((r, i) => `${i === 0 ? 'advice' : '      '}     - ${r}`),
  ];
}
