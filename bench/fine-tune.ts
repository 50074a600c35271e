/**
 * Section 4d of `npm run bench`: fine-tuning the backbone's last blocks against the frozen
 * pipeline, side by side on the same task, scored on val/ (another session) as a lane
 * classifies: val/ accuracy, training time, epochs and time per epoch, resident memory at
 * the end of the fine-tune and the process peak, and frame -> decision for both versions.
 */
import * as path from 'node:path';
import type { Backbone } from '../src/engine/index.js';
import type { FeatureCache } from '../src/features/index.js';
import { DiskFeatureCache } from '../src/features/index.js';
import { openDataset } from '../src/dataset/index.js';
import { openModelStore, type ModelStore } from '../src/model-store/index.js';
import { retrain } from '../src/retrain/index.js';
import { LaneClassifier } from '../src/classify/index.js';
import { selectLabels } from '../src/cli/dataset-view.js';
import { table } from '../src/cli/output.js';
import { classImages, classNames, groceryTrainDir, groceryValDir, YOGHURT_CLASSES } from '../test/support/shared.js';
import { distribution, fixed, timed, type Distribution } from './stats.js';

export interface FineTuneBenchFigures {
  task: string;
  valImages: number;
  frozen: { valAccuracy: number; trainMs: number; perFrame: Distribution; chosen: string };
  fineTune: {
    valAccuracy: number;
    trainMs: number;
    epochs: number;
    bestEpoch: number;
    epochMs: number;
    activationMs: number;
    /** What ran the frozen bottom. */
    bottomEngine: string;
    /** The tuned top on every activation (the head's features). */
    featuresMs: number;
    /** Process CPU time of the fine-tune run (user + system), ms: wall time on busy cores overstates it. */
    cpuMs: number;
    heldOutAccuracy: number;
    /** The final training on all frames (fold included) for the chosen epoch count: epochs, frames, ms; 0s when it did not run. */
    finalTraining: { epochs: number; frames: number; trainMs: number };
    rssMbAtEnd: number;
    perFrame: Distribution;
    blocks: number;
  };
  peakRssMb: number;
}

export async function runFineTuneBench(options: { backbone: Backbone; cache: FeatureCache; scratch: string; quick: boolean; say: (line?: string) => void }): Promise<FineTuneBenchFigures> {
  const { backbone, cache, scratch, say } = options;
  const labels = options.quick ? [...YOGHURT_CLASSES] : classNames(groceryTrainDir);
  const task = options.quick ? `${labels.length} yoghurt kinds` : `all ${labels.length} packages`;
  const dataset = selectLabels(await openDataset(groceryTrainDir, { readOnly: true }), labels);
  const valFiles = labels.filter((l) => classNames(groceryValDir).includes(l)).flatMap((label) => classImages(groceryValDir, label).map((file) => ({ file, label })));

  const frozenStore = await openModelStore(path.join(scratch, 'fine-tune-frozen'));
  const frozen = await timed(() => retrain({ dataset, backbone, store: frozenStore, cache }));
  say(`-- frozen (auto search): trained in ${fixed(frozen.ms / 1000, 1)} s`);
  const tunedStore = await openModelStore(path.join(scratch, 'fine-tune-tuned'));
  const cpuBefore = process.cpuUsage();
  const tuned = await timed(() =>
    retrain({
      dataset,
      backbone,
      store: tunedStore,
      cache,
      // A fresh activation cache: the bench times a first fine-tune, writing the cache included.
      activationCache: new DiskFeatureCache(path.join(scratch, 'fine-tune-activations')),
      strategy: 'fine-tune',
      // The frozen search's crop (and its views, at least FINE_TUNE_MIN_VIEWS), as a lane that trained auto first gets them; early stopping on a grouped fold (val/ is the yardstick here).
      previous: frozen.result.metrics.pipeline,
      onProgress: (p) =>
        p.phase === 'fine-tune' &&
        say(`   fine-tune ${p.stage ? `${p.stage}, ` : ''}epoch ${p.epoch}/${p.epochs}: ${p.stage ? '' : `held-out ${fixed(p.validationAccuracy * 100)}%, `}${fixed(p.epochMs / 1000, 1)} s`),
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  const f = tuned.result.metrics.fineTune!;
  const frozenServed = await served(backbone, frozenStore, valFiles);
  const tunedServed = await served(backbone, tunedStore, valFiles);
  const figures: FineTuneBenchFigures = {
    task,
    valImages: valFiles.length,
    frozen: { valAccuracy: frozenServed.accuracy, trainMs: frozen.ms, perFrame: frozenServed.perFrame, chosen: frozen.result.metrics.pipeline.candidates.find((c) => c.chosen)?.name ?? '' },
    fineTune: {
      valAccuracy: tunedServed.accuracy,
      trainMs: tuned.ms,
      epochs: f.history.length,
      bestEpoch: f.bestEpoch,
      epochMs: f.history.reduce((sum, e) => sum + e.epochMs, 0) / Math.max(1, f.history.length),
      activationMs: f.activationMs,
      bottomEngine: f.bottomEngine,
      featuresMs: f.featuresMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      heldOutAccuracy: f.validationAccuracy,
      finalTraining: { epochs: f.finalTraining?.epochs ?? 0, frames: f.finalTraining?.frames ?? 0, trainMs: f.finalTraining?.trainMs ?? 0 },
      rssMbAtEnd: f.rssMb,
      perFrame: tunedServed.perFrame,
      blocks: f.blocks,
    },
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  say();
  for (const line of table(
    ['task', 'pipeline', 'val/ accuracy', 'train s', 'epochs', 's/epoch', 'frame p50 ms', 'frame p99 ms'],
    [
      [task, `frozen: ${figures.frozen.chosen}`, `${fixed(figures.frozen.valAccuracy * 100)}%`, fixed(frozen.ms / 1000, 1), '-', '-', fixed(figures.frozen.perFrame.p50), fixed(figures.frozen.perFrame.p99)],
      [
        task,
        `fine-tune ${f.blocks} block(s)`,
        `${fixed(figures.fineTune.valAccuracy * 100)}%`,
        fixed(tuned.ms / 1000, 1),
        `${f.history.length} (best ${f.bestEpoch})`,
        fixed(figures.fineTune.epochMs / 1000, 1),
        fixed(figures.fineTune.perFrame.p50),
        fixed(figures.fineTune.perFrame.p99),
      ],
    ],
    [false, false, true, true, true, true, true, true],
  )) say(line);
  say(
    `fine-tune: ${fixed((figures.fineTune.valAccuracy - figures.frozen.valAccuracy) * 100, 1)} points on val/ (${valFiles.length} photos); held-out groups during the fine-tune ${fixed(f.validationAccuracy * 100)}%; ` +
      (f.finalTraining ? `final training on all ${f.finalTraining.frames} frames: ${f.finalTraining.epochs} epochs, ${fixed(f.finalTraining.trainMs / 1000, 1)} s; ` : '') +
      `activations ${fixed(f.activationMs / 1000, 1)} s on ${f.bottomEngine}, tuned features ${fixed(f.featuresMs / 1000, 1)} s; ` +
      `process CPU ${fixed(figures.fineTune.cpuMs / 1000, 1)} s (user + system, what an idle machine would take on one core; the epochs use one); rss ${f.rssMb} MB at its end, process peak ${figures.peakRssMb} MB`,
  );
  return figures;
}

/** Accuracy on `files` and frame -> decision, one frame at a time, as a lane serves the store's active version. */
async function served(backbone: Backbone, store: ModelStore, files: { file: string; label: string }[]): Promise<{ accuracy: number; perFrame: Distribution }> {
  const classifier = new LaneClassifier({ backbone, threshold: 0 });
  await classifier.useLoadedModel(await store.loadModel('active'));
  try {
    await classifier.classify(files[0].file);
    let right = 0;
    const samples: number[] = [];
    for (const { file, label } of files) {
      const { result, ms } = await timed(() => classifier.classify(file));
      samples.push(ms);
      if (result.topK[0].label === label) right++;
    }
    return { accuracy: right / files.length, perFrame: distribution(samples) };
  } finally {
    classifier.dispose();
  }
}
