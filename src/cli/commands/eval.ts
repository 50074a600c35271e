/** `lane-vision eval`: score a stored model on labelled images it never saw. */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { LaneVisionError } from '../../errors.js';
import { DEFAULT_THRESHOLD } from '../../classify/index.js';
import { openDataset, type DatasetEntry } from '../../dataset/index.js';
import type { Backbone } from '../../engine/types.js';
import { embedImagesSettled } from '../../features/index.js';
import { openModelStore, type LoadedModel } from '../../model-store/index.js';
import { metricsFromPredictions, type HeadMetrics } from '../../training/index.js';
import { predictAveraged, testTimeViews } from '../../pipeline/index.js';
import { BACKBONE_OPTIONS, COMMON_OPTIONS, listOption, needPositionals, numberOption, parseCommandLine, requiredOption } from '../args.js';
import { backboneChoice, loadBackboneForModel } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
import { selectLabels } from '../dataset-view.js';
import { Output, metricsReport, milliseconds, percent } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  ...BACKBONE_OPTIONS,
  store: { type: 'string', short: 's' },
  data: { type: 'string', short: 'd' },
  version: { type: 'string' },
  backbone: { type: 'string', short: 'b' },
  labels: { type: 'string' },
  threshold: { type: 'string' },
} as const;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'score a stored model on a labelled folder it never saw',
  help: `Usage: ${PROGRAM} eval --store DIR --data DIR [options]

Classifies every image of DIR (one sub-folder per label, opened read-only) with a
stored model and compares with the folder names: accuracy, per-label precision and
recall, confusion matrix, and how many frames the confidence threshold accepts and
how precise those are. Labels the model does not know are left out (and listed).
Use a folder the model was not trained on.

Options:
  -s, --store DIR                     the model store
  -d, --data DIR                      labelled images: DIR/<label>/*.jpg
  --version <n|vNNNN|latest|active>   model version (default: the active one)
  -b, --backbone <folder|url|preset>  backbone to use (default: the one recorded with the model)
  --layer <name>                      feature layer / node of that backbone
  --labels a,b,c                      score these labels of DIR only
  --threshold <0..1>                  confidence threshold to report on (default: the one suggested
                                      at training, else ${DEFAULT_THRESHOLD})
  ${ENGINE_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"version", "store", "data", "backbone",
"backend", "engine", "metrics": {accuracy, macroF1, perClass, confusion, count}, "labels",
"threshold": {"threshold", "acceptedShare", "precision"}, "skippedLabels", "unreadable", "timings"}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('eval', args, OPTIONS);
    needPositionals('eval', positionals, '', { min: 0, max: 0 });
    const storeDir = path.resolve(requiredOption('eval', 'store', values.store));
    const dataDir = path.resolve(requiredOption('eval', 'data', values.data));
    const thresholdOption = values.threshold === undefined ? undefined : numberOption('eval', 'threshold', values.threshold, 0, { min: 0, max: 1 });
    const labels = listOption(values.labels);
    const choice = backboneChoice('eval', values);
    const out = new Output(values.json === true, streams);

    const store = await openModelStore(storeDir);
    const model = await store.loadModel(values.version ?? 'active');
    let dataset = await openDataset(dataDir, { readOnly: true });
    if (labels) dataset = selectLabels(dataset, labels);
    const backbone = await loadBackboneForModel(model.metadata, values.backbone, choice);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      const report = await scoreModel(model, backbone, await dataset.entries(), out);
      const threshold = thresholdOption ?? suggestedThreshold(model) ?? DEFAULT_THRESHOLD;
      const atThreshold = acceptance(report.probabilities, report.targets, threshold);
      const codes = model.codes;
      out.record({
        command: 'eval',
        version: model.version,
        store: storeDir,
        data: dataDir,
        backbone: { id: backbone.id, source: backbone.source, featureSize: backbone.featureSize },
        backend: backbone.backend.name,
        engine: backbone.engine.name,
        labels: model.labels.map((label, i) => ({ label, code: codes[i] })),
        metrics: report.metrics,
        threshold: { threshold, ...atThreshold },
        skippedLabels: report.skippedLabels,
        unreadable: report.unreadable,
        timings: report.timings,
      });

      const m = report.metrics;
      out.line(`model v${model.version} from ${storeDir} on ${dataDir}`);
      out.line(`backbone   ${backbone.id}`);
      out.line(`backend    ${backbone.backend.name}`);
      out.line(`images     ${m.count} scored` + describeSkipped(report.skippedLabels, report.unreadable.length));
      out.line('');
      out.line(`accuracy ${percent(m.accuracy)} (${Math.round(m.accuracy * m.count)}/${m.count}), macro F1 ${m.macroF1.toFixed(3)}`);
      out.line('');
      for (const line of metricsReport(m, codes)) out.line(line);
      out.line('');
      out.line(
        `at threshold ${threshold.toFixed(3)}: accepts ${percent(atThreshold.acceptedShare)} of frames, ` +
          `${atThreshold.precision === null ? 'none accepted' : `${percent(atThreshold.precision)} of them right`}`,
      );
      out.line(`timings    decode ${milliseconds(report.timings.decodeMs)}, features ${milliseconds(report.timings.featuresMs)}, head ${milliseconds(report.timings.headMs)}`);
      for (const item of report.unreadable) out.warn(`${PROGRAM} eval: skipped ${item.path}: ${item.reason}`);
      return 0;
    } finally {
      out.progress(undefined);
      backbone.release();
    }
  },
};

interface ScoreReport {
  metrics: HeadMetrics;
  probabilities: Float32Array[];
  targets: number[];
  /** Images per label of the folder that the model has no class for. */
  skippedLabels: Record<string, number>;
  unreadable: { path: string; reason: string }[];
  timings: { decodeMs: number; featuresMs: number; headMs: number };
}

async function scoreModel(model: LoadedModel, backbone: Backbone, entries: readonly DatasetEntry[], out: Output): Promise<ScoreReport> {
  const classIndex = new Map(model.labels.map((label, i) => [label, i]));
  const skippedLabels: Record<string, number> = {};
  const unreadable: ScoreReport['unreadable'] = [];
  const known: DatasetEntry[] = [];
  for (const entry of entries) {
    if (!classIndex.has(entry.label)) skippedLabels[entry.label] = (skippedLabels[entry.label] ?? 0) + 1;
    else if (entry.problem) unreadable.push({ path: entry.path, reason: entry.problem });
    else known.push(entry);
  }
  if (known.length === 0) {
    const folderLabels = [...new Set(entries.map((e) => e.label))];
    throw new LaneVisionError(
      'EVAL_NO_KNOWN_LABELS',
      folderLabels.length === 0
        ? 'The data folder holds no labelled images (expected DIR/<label>/<image>)'
        : `None of the labels in the data folder (${folderLabels.join(', ')}) is a class of model v${model.version} (${model.labels.join(', ')})`,
    );
  }

  const features: Float32Array[] = [];
  const targets: number[] = [];
  const scoredPaths: string[] = [];
  const timings = { decodeMs: 0, featuresMs: 0, headMs: 0 };
  const chunk = 32; // progress granularity; embedding batches inside
  for (let start = 0; start < known.length; start += chunk) {
    const part = known.slice(start, start + chunk);
    // No cache: every frame is scored once.
    const embedded = await embedImagesSettled(backbone, part.map((e) => e.path), { cache: null, fit: model.metadata.backbone.fit });
    timings.decodeMs += embedded.decodeMs;
    timings.featuresMs += embedded.featuresMs;
    embedded.results.forEach((result, i) => {
      if ('error' in result) unreadable.push({ path: part[i].path, reason: result.error.message });
      else {
        features.push(result.features);
        targets.push(classIndex.get(part[i].label)!);
        scoredPaths.push(part[i].path);
      }
    });
    out.progress(`features ${Math.min(known.length, start + chunk)}/${known.length}`);
  }
  out.progress(undefined);
  if (features.length === 0) throw new LaneVisionError('EVAL_NO_IMAGES', 'None of the images of the known labels could be read');
  // Served with test-time views? Scored with them too, as the lane would see the frames.
  const testViews: Float32Array[][] = [];
  for (const view of testTimeViews(model.metadata.pipeline?.spec.testViews ?? 0)) {
    const embedded = await embedImagesSettled(backbone, scoredPaths, { cache: null, fit: model.metadata.backbone.fit, view });
    timings.decodeMs += embedded.decodeMs;
    timings.featuresMs += embedded.featuresMs;
    testViews.push(embedded.results.map((r, i) => ('error' in r ? features[i] : r.features)));
  }
  const headStart = performance.now();
  const probabilities = predictAveraged(model.head, { plain: features, views: [], testViews }, features.map((_, i) => i));
  timings.headMs = performance.now() - headStart;
  const metrics = metricsFromPredictions(probabilities.map(topIndex), targets, model.labels);
  return { metrics, probabilities, targets, skippedLabels, unreadable, timings };
}

function topIndex(probabilities: Float32Array): number {
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return best;
}

/** The threshold retrain suggested for the target precision, if it found one. */
function suggestedThreshold(model: LoadedModel): number | undefined {
  const threshold = (model.metadata.metrics as { threshold?: { threshold?: unknown } }).threshold?.threshold;
  return typeof threshold === 'number' && threshold > 0 ? threshold : undefined;
}

/** Share of frames whose top confidence reaches `threshold`, and the share of those that are right. */
function acceptance(probabilities: readonly Float32Array[], targets: readonly number[], threshold: number) {
  let accepted = 0;
  let right = 0;
  probabilities.forEach((p, i) => {
    const top = topIndex(p);
    if (p[top] < threshold) return;
    accepted++;
    if (top === targets[i]) right++;
  });
  return { acceptedShare: accepted / probabilities.length, acceptedCount: accepted, precision: accepted > 0 ? right / accepted : null };
}

function describeSkipped(skippedLabels: Record<string, number>, unreadable: number): string {
  const parts: string[] = [];
  const labels = Object.keys(skippedLabels);
  if (labels.length) {
    const images = Object.values(skippedLabels).reduce((a, b) => a + b, 0);
    const named = labels.length > 6 ? `${labels.slice(0, 6).join(', ')} and ${labels.length - 6} more` : labels.join(', ');
    parts.push(`${images} left out (${labels.length} labels the model does not know: ${named})`);
  }
  if (unreadable) parts.push(`${unreadable} unreadable`);
  return parts.length ? `; ${parts.join('; ')}` : '';
}
