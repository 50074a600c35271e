/**
 * Section 4c of `npm run bench`: products the model never saw. On the 6 yoghurt kinds of
 * train/, scored on val/ yoghurts (known) mixed with val/ photos of the other packages
 * (unknown): at the operating point each model chose itself, the share of unknowns
 * accepted, the precision over all accepted frames and the coverage of known ones, with
 * and without a reject class made of half the other packages of train/ (the unknowns are
 * the other half, never shown). Also the novelty score's cost per frame beside the backbone's.
 */
import * as path from 'node:path';
import type { Backbone } from '../src/engine/index.js';
import { embedImages, type FeatureCache } from '../src/features/index.js';
import { openDataset, type DatasetEntry } from '../src/dataset/index.js';
import { openModelStore, type LoadedModel } from '../src/model-store/index.js';
import { retrain, type RetrainDataset } from '../src/retrain/index.js';
import { nearestSimilarity, openSetCurve, openSetFigures, type OpenSetFigures } from '../src/open-set/index.js';
import { predictHead } from '../src/training/index.js';
import { table } from '../src/cli/output.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, YOGHURT_CLASSES } from '../test/support/shared.js';
import { distribution, fixed, type Distribution } from './stats.js';

export interface OpenSetBenchFigures {
  rows: { model: string; figures: OpenSetFigures; curve: OpenSetFigures[] }[];
  noveltyCost: { noveltyUs: Distribution; indexedFrames: number; backboneMs: number };
}

const REJECT = 'other-products';

export async function runOpenSetBench(options: { backbone: Backbone; cache: FeatureCache; scratch: string; quick: boolean; say: (line?: string) => void }): Promise<OpenSetBenchFigures> {
  const { backbone, cache, scratch, say } = options;
  const train = await openDataset(groceryTrainDir, { readOnly: true });
  const all = await train.entries();
  const others = classNames(groceryTrainDir).filter((c) => !YOGHURT_CLASSES.includes(c as (typeof YOGHURT_CLASSES)[number]));
  const shownOthers = others.filter((_, i) => i % 2 === 0);
  const unseenOthers = others.filter((_, i) => i % 2 === 1);
  const yoghurts = all.filter((e) => (YOGHURT_CLASSES as readonly string[]).includes(e.label));
  // The photos by path: a stand-in dataset relabels some of train/ without copying a file.
  const view = (entries: DatasetEntry[]): RetrainDataset => ({ entries: async () => entries, fingerprint: () => train.fingerprint() });
  const rejectEntries = all.filter((e) => shownOthers.includes(e.label)).filter((_, i) => i % 3 === 0).map((e) => ({ ...e, label: REJECT }));

  const budget = options.quick ? { budgetSeconds: 30 } : {};
  const plainStore = await openModelStore(path.join(scratch, 'open-set-plain'));
  await retrain({ dataset: view(yoghurts), backbone, store: plainStore, cache, ...budget });
  const rejectStore = await openModelStore(path.join(scratch, 'open-set-reject'));
  await retrain({ dataset: view([...yoghurts, ...rejectEntries]), backbone, store: rejectStore, cache, rejectLabels: [REJECT], ...budget });

  const knownFiles = YOGHURT_CLASSES.flatMap((label) => (classNames(groceryValDir).includes(label) ? classImages(groceryValDir, label).map((file) => ({ file, label })) : []));
  const unseenFiles = unseenOthers.filter((c) => classNames(groceryValDir).includes(c)).flatMap((c) => classImages(groceryValDir, c));
  const allOtherFiles = others.filter((c) => classNames(groceryValDir).includes(c)).flatMap((c) => classImages(groceryValDir, c));
  const rows: OpenSetBenchFigures['rows'] = [];
  for (const [name, store, unknownFiles] of [
    ['6 yoghurts, all other val/ packages unknown', plainStore, allOtherFiles],
    [`6 yoghurts + reject class (${shownOthers.length} other packages), the ${unseenOthers.length} never shown unknown`, rejectStore, unseenFiles],
  ] as const) {
    const model = await store.loadModel('active');
    const known = await view_(backbone, model, knownFiles.map((f) => f.file));
    const unknown = await view_(backbone, model, [...unknownFiles]);
    const targets = knownFiles.map((f) => model.labels.indexOf(f.label));
    const point = model.metadata.openSet!.operatingPoint;
    const rejectClasses = new Set((model.metadata.openSet?.rejectLabels ?? []).map((l) => model.labels.indexOf(l)));
    const figures = openSetFigures({ ...known, targets }, unknown, { confidence: point.confidence, similarity: point.similarity }, rejectClasses);
    rows.push({ model: name, figures, curve: openSetCurve({ ...known, targets }, unknown, point.similarity, rejectClasses, 11) });
  }

  // The novelty score's cost: one nearest-frame search over the version's index, per frame.
  const model = await plainStore.loadModel('active');
  const probes = (await embedImages(backbone, knownFiles.slice(0, 10).map((f) => f.file), { fit: model.metadata.backbone.fit, cache: null })).results.map((r) => r.features);
  const samples: number[] = [];
  for (let round = 0; round < (options.quick ? 20 : 100); round++) {
    for (const probe of probes) {
      const started = process.hrtime.bigint();
      nearestSimilarity(model.novelty!, probe);
      samples.push(Number(process.hrtime.bigint() - started) / 1000);
    }
  }
  const backboneMs = (await embedImages(backbone, knownFiles.slice(0, 8).map((f) => f.file), { fit: model.metadata.backbone.fit, cache: null })).featuresMs / 8;
  const noveltyCost = { noveltyUs: distribution(samples), indexedFrames: model.novelty!.count, backboneMs };

  say();
  for (const line of table(
    ['model (val/ yoghurts known)', 'confidence', 'similarity', 'unknown accepted', 'precision', 'coverage', 'known / unknown frames'],
    rows.map(({ model: name, figures: f }) => [
      name,
      fixed(f.thresholds.confidence, 3),
      f.thresholds.similarity === null ? '-' : fixed(f.thresholds.similarity, 3),
      f.unknownAccepted === null ? '-' : `${fixed(f.unknownAccepted * 100)}%`,
      f.precision === null ? '-' : `${fixed(f.precision * 100)}%`,
      `${fixed(f.coverage * 100)}%`,
      `${f.knownCount} / ${f.unknownCount}`,
    ]),
    [false, true, true, true, true, true, true],
  )) say(line);
  for (const row of rows) {
    say(`curve (${row.model.split(',')[0]}): ${row.curve.map((c) => `t=${fixed(c.thresholds.confidence, 1)} P=${c.precision === null ? '-' : fixed(c.precision * 100, 0)} C=${fixed(c.coverage * 100, 0)} U=${c.unknownAccepted === null ? '-' : fixed(c.unknownAccepted * 100, 0)}`).join(' · ')}`);
  }
  say(`novelty score per frame: p50 ${fixed(noveltyCost.noveltyUs.p50, 0)} µs, p99 ${fixed(noveltyCost.noveltyUs.p99, 0)} µs over ${noveltyCost.indexedFrames} indexed frames (backbone ${fixed(backboneMs, 1)} ms a frame)`);
  return { rows, noveltyCost };
}

/** Probabilities and similarities of the model for these photos, fed with its fit. */
async function view_(backbone: Backbone, model: LoadedModel, files: string[]) {
  const features = (await embedImages(backbone, files, { fit: model.metadata.backbone.fit, cache: null })).results.map((r) => r.features);
  return { probabilities: features.map((f) => predictHead(model.head, f)), similarities: features.map((f) => nearestSimilarity(model.novelty!, f)) };
}
