/**
 * Section 4 of `npm run bench`: does the default training hold on photos of another
 * session, and does it say truthfully how well? Side by side in one run, on the 31
 * packages and on the 6 yoghurt kinds of train/, scored on val/ (another session):
 *   - the old default: a softmax head on the whole frame, and the random 80/20 hold-out it reported;
 *   - the new default: `retrain()` with the automatic pipeline search, its grouped
 *     estimate, the search time, and val/ accuracy as a lane classifies (model's crop, views);
 *   - test-time views: val/ accuracy with 4 of them, and the per-frame cost with and without.
 */
import * as path from 'node:path';
import type { Backbone } from '../src/engine/index.js';
import { embedImages, type FeatureCache } from '../src/features/index.js';
import { openDataset, type Dataset } from '../src/dataset/index.js';
import { openModelStore, type ModelStore } from '../src/model-store/index.js';
import { retrain, type RetrainResult } from '../src/retrain/index.js';
import { LaneClassifier } from '../src/classify/index.js';
import { evaluateHead, stratifiedSplit, trainHead } from '../src/training/index.js';
import { selectLabels } from '../src/cli/dataset-view.js';
import { table } from '../src/cli/output.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, YOGHURT_CLASSES } from '../test/support/shared.js';
import { distribution, fixed, timed, type Distribution } from './stats.js';

export interface PipelineTaskFigures {
  task: string;
  labels: number;
  trainImages: number;
  valImages: number;
  old: { valAccuracy: number; reportedHoldout: number };
  auto: {
    valAccuracy: number;
    estimate: number;
    estimateKind: string;
    /** estimate - val accuracy, in points. */
    gapPoints: number;
    chosen: string;
    searchMs: number;
    totalMs: number;
    candidates: { name: string; accuracy: number | null }[];
  };
  testViews: { views: number; valAccuracy: number };
}

export interface PipelineBenchFigures {
  tasks: PipelineTaskFigures[];
  /** Frame to decision (one frame at a time, main thread), with the auto model of the first task. */
  perFrame: { plain: Distribution; withTestViews: Distribution; views: number };
}

const TEST_VIEWS = 4;

export async function runPipelineBench(options: { backbone: Backbone; cache: FeatureCache; scratch: string; quick: boolean; say: (line?: string) => void }): Promise<PipelineBenchFigures> {
  const { backbone, cache, scratch, say } = options;
  const all = classNames(groceryTrainDir);
  const tasks: { name: string; labels: readonly string[] }[] = [
    { name: `all ${all.length} packages`, labels: all },
    { name: `${YOGHURT_CLASSES.length} yoghurt kinds`, labels: YOGHURT_CLASSES },
  ];
  const figures: PipelineTaskFigures[] = [];
  let firstStore: ModelStore | undefined;
  for (const [i, task] of tasks.entries()) {
    const dataset = selectLabels(await openDataset(groceryTrainDir, { readOnly: true }), [...task.labels]);
    const valLabels = task.labels.filter((l) => classNames(groceryValDir).includes(l));
    const valFiles = valLabels.flatMap((label) => classImages(groceryValDir, label).map((file) => ({ file, label })));
    const old = await oldDefault(backbone, dataset, task.labels, valFiles, cache);
    const store = await openModelStore(path.join(scratch, `pipeline-store-${i}`));
    firstStore ??= store;
    const { result, ms } = await timed(() => retrain({ dataset, backbone, store, cache, ...(options.quick ? { budgetSeconds: 30 } : {}) }));
    const valAccuracy = await classifierAccuracy(backbone, store, valFiles, 'model');
    const withViews = await classifierAccuracy(backbone, store, valFiles, TEST_VIEWS);
    figures.push(describe(task.name, result, ms, old, valAccuracy, withViews, valFiles.length));
    const f = figures.at(-1)!;
    say(
      `-- ${task.name}: old default ${fixed(f.old.valAccuracy * 100)}% on val/ (reported ${fixed(f.old.reportedHoldout * 100)}%); ` +
        `new ${fixed(f.auto.valAccuracy * 100)}% on val/ (reports ${fixed(f.auto.estimate * 100)}%, ${f.auto.estimateKind}); search ${fixed(f.auto.searchMs / 1000, 1)} s, total ${fixed(f.auto.totalMs / 1000, 1)} s; chose ${f.auto.chosen}`,
    );
  }

  // Per-frame cost of test-time views, as a lane pays it (one frame at a time, this thread).
  const model = await firstStore!.loadModel('active');
  const frames = classNames(groceryValDir).flatMap((label) => classImages(groceryValDir, label)).slice(0, options.quick ? 20 : 60);
  const latency = async (testViews: number) => {
    const classifier = new LaneClassifier({ backbone, threshold: 0, testViews });
    classifier.useModel(model);
    await classifier.classify(frames[0]);
    const samples: number[] = [];
    for (const frame of frames) samples.push((await timed(() => classifier.classify(frame))).ms);
    return distribution(samples);
  };
  const perFrame = { plain: await latency(0), withTestViews: await latency(TEST_VIEWS), views: TEST_VIEWS };

  say();
  for (const line of table(
    ['task', 'old val', 'old reported', 'new val', 'new reports', 'gap', 'estimate', `+${TEST_VIEWS} test views`, 'search s', 'total s', 'chosen pipeline'],
    figures.map((f) => [
      f.task,
      `${fixed(f.old.valAccuracy * 100)}%`,
      `${fixed(f.old.reportedHoldout * 100)}%`,
      `${fixed(f.auto.valAccuracy * 100)}%`,
      `${fixed(f.auto.estimate * 100)}%`,
      `${f.auto.gapPoints >= 0 ? '+' : ''}${fixed(f.auto.gapPoints)} pts`,
      f.auto.estimateKind,
      `${fixed(f.testViews.valAccuracy * 100)}%`,
      fixed(f.auto.searchMs / 1000, 1),
      fixed(f.auto.totalMs / 1000, 1),
      f.auto.chosen,
    ]),
    [false, true, true, true, true, true, false, true, true, true, false],
  )) say(line);
  say(
    `frame -> decision, one at a time: p50 ${fixed(perFrame.plain.p50)} ms plain, ${fixed(perFrame.withTestViews.p50)} ms with ${TEST_VIEWS} test-time views ` +
      `(${fixed(perFrame.withTestViews.p50 / perFrame.plain.p50, 1)}x; the default serves without them)`,
  );
  return { tasks: figures, perFrame };
}

/** The first wave's default: softmax on whole-frame features, with the random 80/20 hold-out it reported. */
async function oldDefault(backbone: Backbone, dataset: Dataset, labels: readonly string[], valFiles: { file: string; label: string }[], cache: FeatureCache) {
  const entries = (await dataset.entries()).filter((e) => !e.problem);
  const names = [...labels].sort();
  const targets = entries.map((e) => names.indexOf(e.label));
  const features = (await embedImages(backbone, entries.map((e) => e.path), { cache, fit: { kind: 'cover' } })).results.map((r) => r.features);
  const split = stratifiedSplit(targets, { testFraction: 0.2, seed: 1 });
  const scored = await trainHead({ features: split.train.map((i) => features[i]), labels: split.train.map((i) => targets[i]), classCount: names.length }, { kind: 'softmax', seed: 1 });
  const reportedHoldout = evaluateHead(scored.head, split.test.map((i) => features[i]), split.test.map((i) => targets[i]), names).accuracy;
  const final = await trainHead({ features, labels: targets, classCount: names.length }, { kind: 'softmax', seed: 1 });
  const val = (await embedImages(backbone, valFiles.map((v) => v.file), { cache, fit: { kind: 'cover' } })).results.map((r) => r.features);
  const valAccuracy = evaluateHead(final.head, val, valFiles.map((v) => names.indexOf(v.label)), names).accuracy;
  return { valAccuracy, reportedHoldout };
}

/** Top-1 accuracy of the store's active model on `files`, classified as a lane classifies. */
async function classifierAccuracy(backbone: Backbone, store: ModelStore, files: { file: string; label: string }[], testViews: number | 'model'): Promise<number> {
  const classifier = new LaneClassifier({ backbone, threshold: 0, testViews });
  classifier.useModel(await store.loadModel('active'));
  let right = 0;
  for (const { file, label } of files) if ((await classifier.classify(file)).topK[0].label === label) right++;
  return right / files.length;
}

function describe(task: string, result: RetrainResult, ms: number, old: PipelineTaskFigures['old'], valAccuracy: number, withViews: number, valImages: number): PipelineTaskFigures {
  const m = result.metrics;
  return {
    task,
    labels: result.labels.length,
    trainImages: m.trainCount,
    valImages,
    old,
    auto: {
      valAccuracy,
      estimate: m.holdout.accuracy,
      estimateKind: `${m.validation.kind}${m.validation.optimistic ? ' (optimistic)' : ''}`,
      gapPoints: (m.holdout.accuracy - valAccuracy) * 100,
      chosen: m.pipeline.candidates.find((c) => c.chosen)?.name ?? m.headKind,
      searchMs: m.pipeline.searchMs,
      totalMs: ms,
      candidates: m.pipeline.candidates.map((c) => ({ name: c.name, accuracy: c.accuracy })),
    },
    testViews: { views: TEST_VIEWS, valAccuracy: withViews },
  };
}
