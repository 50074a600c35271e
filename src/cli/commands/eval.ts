/** `lane-vision eval`: score a stored model on labelled images it never saw. */
import * as fs from 'node:fs';
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
import { nearestSimilarity, openSetCurve, openSetFigures, type OpenSetThresholds } from '../../open-set/index.js';
import { BACKBONE_OPTIONS, COMMON_OPTIONS, listOption, needPositionals, numberOption, parseCommandLine, requiredOption } from '../args.js';
import { backboneChoice, loadBackboneForModel } from '../backbone.js';
import { BACKEND_HELP, ENGINE_HELP, INT8_HELP, JSON_HELP, PROGRAM, type Command } from '../command.js';
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
  unknown: { type: 'string' },
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
  --threshold <0..1>                  confidence threshold to report on (default: the model's operating
                                      point, chosen at training, else ${DEFAULT_THRESHOLD})
  --unknown DIR                       images of products the model does not know (any layout): reports
                                      how many it accepts, the precision over all accepted frames and the
                                      coverage of known ones, at the operating point and over thresholds
  ${ENGINE_HELP}
  ${INT8_HELP}
  ${BACKEND_HELP}
  ${JSON_HELP}
  -h, --help                          this help

With --json the result is one object: {"version", "store", "data", "backbone",
"backend", "engine", "metrics": {accuracy, macroF1, perClass, confusion, count}, "labels",
"threshold": {"threshold", "similarity", "acceptedShare", "precision"}, "skippedLabels", "unreadable",
"timings"}, and with --unknown "openSet": {"unknownAccepted", "precision", "coverage",
"thresholds", "knownCount", "unknownCount", "curve": [...]}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('eval', args, OPTIONS);
    needPositionals('eval', positionals, '', { min: 0, max: 0 });
    const storeDir = path.resolve(requiredOption('eval', 'store', values.store));
    const dataDir = path.resolve(requiredOption('eval', 'data', values.data));
    const thresholdOption = values.threshold === undefined ? undefined : numberOption('eval', 'threshold', values.threshold, 0, { min: 0, max: 1 });
    const labels = listOption(values.labels);
    const unknownDir = values.unknown === undefined ? undefined : path.resolve(values.unknown);
    const choice = backboneChoice('eval', values);
    const out = new Output(values.json === true, streams);

    const store = await openModelStore(storeDir);
    const model = await store.loadModel(values.version ?? 'active');
    let dataset = await openDataset(dataDir, { readOnly: true });
    if (labels) dataset = selectLabels(dataset, labels);
    const backbone = await loadBackboneForModel(model.metadata, values.backbone, choice, model.tunedBackboneDir, out);
    try {
      out.backend(backbone.backend, backbone.engine.name);
      const report = await scoreModel(model, backbone, await dataset.entries(), out);
      const thresholds = modelThresholds(model, thresholdOption);
      const threshold = thresholds.confidence;
      const rejectClasses = new Set((model.metadata.openSet?.rejectLabels ?? []).map((l) => model.labels.indexOf(l)).filter((i) => i >= 0));
      const known = { probabilities: report.probabilities, similarities: report.similarities, targets: report.targets };
      const unknownView = unknownDir ? await modelView(model, backbone, imageFiles(unknownDir), out, 'unknown images') : undefined;
      const atOperatingPoint = openSetFigures(known, unknownView, thresholds, rejectClasses);
      const atThreshold = { acceptedShare: atOperatingPoint.coverage, precision: atOperatingPoint.precision };
      const openSet = unknownView
        ? {
            unknownDir,
            ...atOperatingPoint,
            curve: openSetCurve(known, unknownView, thresholds.similarity, rejectClasses),
            unreadable: unknownView.unreadable,
          }
        : undefined;
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
        threshold: { threshold, similarity: thresholds.similarity, ...atThreshold },
        ...(openSet ? { openSet } : {}),
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
        `at the operating point (confidence ${threshold.toFixed(3)}${thresholds.similarity === null ? '' : `, similarity ${thresholds.similarity.toFixed(3)}`}): ` +
          `accepts ${percent(atThreshold.acceptedShare)} of known frames, ` +
          `${atThreshold.precision === null ? 'none accepted' : `${percent(atThreshold.precision)} of accepted right`}`,
      );
      if (openSet) {
        out.line(
          `unknown    ${openSet.unknownCount} images of products the model does not know: ${percent(openSet.unknownAccepted)} accepted; ` +
            `precision over all accepted ${percent(openSet.precision)}, coverage of known ${percent(openSet.coverage)}`,
        );
      }
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
  similarities?: number[];
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

  const scored = await modelView(model, backbone, known.map((e) => e.path), out, 'features');
  for (const item of scored.unreadable) unreadable.push(item);
  if (scored.probabilities.length === 0) throw new LaneVisionError('EVAL_NO_IMAGES', 'None of the images of the known labels could be read');
  const targets = scored.kept.map((i) => classIndex.get(known[i].label)!);
  const metrics = metricsFromPredictions(scored.probabilities.map(topIndex), targets, model.labels);
  return { metrics, probabilities: scored.probabilities, similarities: scored.similarities, targets, skippedLabels, unreadable, timings: scored.timings };
}

interface ModelView {
  probabilities: Float32Array[];
  /** Nearest-training-frame similarity, for models with a novelty index. */
  similarities?: number[];
  /** Indices of the paths that could be read. */
  kept: number[];
  unreadable: { path: string; reason: string }[];
  timings: { decodeMs: number; featuresMs: number; headMs: number };
}

/** What the model makes of each image, fed as a lane feeds it: its fit, its test-time views, its novelty index. */
async function modelView(model: LoadedModel, backbone: Backbone, paths: readonly string[], out: Output, what: string): Promise<ModelView> {
  const features: Float32Array[] = [];
  const kept: number[] = [];
  const unreadable: ModelView['unreadable'] = [];
  const timings = { decodeMs: 0, featuresMs: 0, headMs: 0 };
  const fit = model.metadata.backbone.fit;
  const chunk = 32; // progress granularity; embedding batches inside
  for (let start = 0; start < paths.length; start += chunk) {
    const part = paths.slice(start, start + chunk);
    // No cache: every frame is scored once.
    const embedded = await embedImagesSettled(backbone, part, { cache: null, fit });
    timings.decodeMs += embedded.decodeMs;
    timings.featuresMs += embedded.featuresMs;
    embedded.results.forEach((result, i) => {
      if ('error' in result) unreadable.push({ path: part[i], reason: result.error.message });
      else {
        features.push(result.features);
        kept.push(start + i);
      }
    });
    out.progress(`${what} ${Math.min(paths.length, start + chunk)}/${paths.length}`);
  }
  out.progress(undefined);
  // Served with test-time views? Scored with them too, as the lane would see the frames.
  const testViews: Float32Array[][] = [];
  for (const view of testTimeViews(model.metadata.pipeline?.spec.testViews ?? 0)) {
    const embedded = await embedImagesSettled(backbone, kept.map((i) => paths[i]), { cache: null, fit, view });
    timings.decodeMs += embedded.decodeMs;
    timings.featuresMs += embedded.featuresMs;
    testViews.push(embedded.results.map((r, i) => ('error' in r ? features[i] : r.features)));
  }
  const headStart = performance.now();
  const probabilities = predictAveraged(model.head, { plain: features, views: [], testViews }, features.map((_, i) => i));
  const similarities = model.novelty ? features.map((f) => nearestSimilarity(model.novelty!, f)) : undefined;
  timings.headMs = performance.now() - headStart;
  return { probabilities, ...(similarities ? { similarities } : {}), kept, unreadable, timings };
}

function topIndex(probabilities: Float32Array): number {
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) if (probabilities[i] > probabilities[best]) best = i;
  return best;
}

/** The thresholds the model serves with (its operating point), the confidence one overridden by --threshold. */
function modelThresholds(model: LoadedModel, confidence: number | undefined): OpenSetThresholds {
  const point = model.metadata.openSet?.operatingPoint;
  const legacy = (model.metadata.metrics as { threshold?: { threshold?: unknown } }).threshold?.threshold;
  return {
    confidence: confidence ?? point?.confidence ?? (typeof legacy === 'number' && legacy > 0 ? legacy : DEFAULT_THRESHOLD),
    similarity: model.novelty ? (point?.similarity ?? null) : null,
  };
}

/** Images directly in DIR or in its sub-folders, links followed (the folder names are ignored: every one is a product the model must not accept). */
function imageFiles(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new LaneVisionError('EVAL_UNKNOWN_NOT_FOUND', `--unknown ${dir} is not a folder`);
  const found: string[] = [];
  const walk = (folder: string, depth: number) => {
    for (const name of fs.readdirSync(folder).sort()) {
      const full = path.join(folder, name);
      const stat = fs.statSync(full, { throwIfNoEntry: false });
      if (stat?.isDirectory() && depth < 4) walk(full, depth + 1);
      else if (stat?.isFile() && /\.(jpe?g|png|webp)$/i.test(name)) found.push(full);
    }
  };
  walk(dir, 0);
  return found;
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
