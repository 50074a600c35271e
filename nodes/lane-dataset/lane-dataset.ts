/**
 * lane-dataset: the config node naming where a lane's frames and model versions live.
 * It hands out the shared dataset and model-store handles (src/dataset, src/model-store
 * already share one state per folder in the process; this node only opens them once and
 * resolves its folders against the Node-RED user directory), answers the editor's
 * "what is in there" question, and imports a Teachable Machine export (folder or URL) as
 * the store's active version from the editor.
 */
import * as path from 'node:path';
import { ReviewQueue } from '../../src/review/index.js';
import type { NodeAPI } from 'node-red';
import { openDataset, type Dataset, type DatasetOptions } from '../../src/dataset/index.js';
import { importTeachableMachine, openModelStore, type ModelStore } from '../../src/model-store/index.js';
import { LaneVisionError, isLaneVisionError } from '../../src/errors.js';
import { registerReadAction, registerWriteAction } from '../shared/admin-routes.js';
import { errorText } from '../shared/status.js';
import { resolveInUserDir, userDirOf } from '../shared/paths.js';
import { DEFAULT_KEEP_VERSIONS, datasetFoldersFrom, datasetOptionsFrom, keepVersionsFrom, type LaneDatasetDef } from './settings.js';
import type { DatasetSummary, LaneDatasetNode, TeachableMachineImported } from './types.js';

/** Failures that mean the export named is unusable (fix the request), and those of the network on the way (try again). */
const BAD_SOURCE = new Set(['TM_IMPORT_INVALID', 'TM_IMPORT_UNSUPPORTED', 'MODEL_NOT_FOUND', 'MODEL_INVALID', 'MODEL_TOO_LARGE']);
const NETWORK = new Set(['MODEL_OFFLINE', 'MODEL_TIMEOUT', 'MODEL_DOWNLOAD_FAILED', 'MODEL_TRUNCATED']);

/** Opens once; a failed open is forgotten so the next use tries again (e.g. after fixing permissions). */
function openOnce<T>(open: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= open().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}

/** Folder of the review queue inside the models folder. */
const REVIEW_FOLDER = 'review';

export = function (RED: NodeAPI) {
  function LaneDatasetNodeConstructor(this: LaneDatasetNode, config: LaneDatasetDef): void {
    RED.nodes.createNode(this, config);
    const { folder, modelsFolder } = datasetFoldersFrom(config, userDirOf(RED.settings));
    let options: DatasetOptions | undefined;
    let problem: unknown;
    let keepVersions = DEFAULT_KEEP_VERSIONS;
    try {
      keepVersions = keepVersionsFrom(config);
      options = datasetOptionsFrom(config);
    } catch (err) {
      problem = err;
      this.error(RED._('lane-dataset.errors.invalid-config', { message: errorText(err) }));
    }

    const dataset = openOnce<Dataset>(async () => {
      if (!options) throw problem;
      const opened = await openDataset(folder, options);
      // One line for all of them: a folder of stray files should not flood the log.
      const skipped = opened.skipped();
      if (skipped.length > 0) {
        this.warn(RED._('lane-dataset.errors.skipped', { count: skipped.length, items: skipped.map((s) => `${s.path} (${s.reason})`).join('; ') }));
      }
      return opened;
    });
    // This node owns the store's folder setting, so it also owns how many versions the store keeps.
    let stopPruning: (() => void) | undefined;
    const models = openOnce<ModelStore>(async () => {
      const store = await openModelStore(modelsFolder);
      if (keepVersions > 0 && !stopPruning) {
        const prune = () => {
          store.prune({ keep: keepVersions }).then(
            (removed) => {
              if (removed.length) this.log(RED._('lane-dataset.log.pruned', { versions: removed.map((v) => `v${v}`).join(', '), keep: keepVersions }));
            },
            (err: unknown) => this.warn(RED._('lane-dataset.errors.prune-failed', { message: errorText(err) })),
          );
        };
        store.on('saved', prune);
        stopPruning = () => store.off('saved', prune);
      }
      return store;
    });
    this.on('close', () => stopPruning?.());
    // Beside the versions in the models folder: the store only reads its vNNNN folders.
    const review = openOnce<ReviewQueue>(() => ReviewQueue.open(path.join(modelsFolder, REVIEW_FOLDER)));

    const node = this;
    async function importTm(body: unknown): Promise<TeachableMachineImported> {
      const source = (body as { source?: unknown } | null)?.source;
      const text = typeof source === 'string' ? source.trim() : '';
      // A folder is found like the node's own folders: relative to the Node-RED user directory.
      const where = !text || /^https?:\/\//i.test(text) ? text : resolveInUserDir(userDirOf(RED.settings), text);
      try {
        if (!text) throw new LaneVisionError('TM_IMPORT_INVALID', RED._('lane-dataset.errors.tm-no-source'));
        const saved = await importTeachableMachine(await models(), where, { activate: true });
        const labels = saved.metadata.classes.map((c) => c.label);
        node.log(RED._('lane-dataset.log.tm-imported', { source: where, version: saved.version, labels: labels.join(', ') }));
        return { version: saved.version, active: saved.active, name: saved.metadata.modelName, labels, source: where };
      } catch (err) {
        node.warn(RED._('lane-dataset.errors.tm-import-failed', { source: where, message: errorText(err) }));
        // The editor's dialog tells "your export is wrong" (400) from "the network failed" (502).
        if (isLaneVisionError(err) && (BAD_SOURCE.has(err.code) || NETWORK.has(err.code))) {
          Object.assign(err, { httpStatus: BAD_SOURCE.has(err.code) ? 400 : 502 });
        }
        throw err;
      }
    }

    Object.assign(this, {
      folder,
      modelsFolder,
      dataset,
      models,
      review,
      importTeachableMachine: importTm,
      summary: async (): Promise<DatasetSummary> => {
        const data = await dataset();
        await data.refresh(); // the editor should see files copied in by hand too
        const store = await models();
        const versions = await store.listVersions();
        return {
          folder,
          modelsFolder,
          counts: data.counts(),
          total: data.size,
          maxPerLabel: options?.maxPerLabel ?? 0,
          activeVersion: versions.find((v) => v.active)?.version ?? null,
          versions: versions.map((v) => ({
            version: v.version,
            name: v.name,
            active: v.active,
            createdAt: v.createdAt,
            labels: v.metadata?.classes,
            metrics: v.metrics,
            problem: v.problem,
          })),
        };
      },
    });
  }

  RED.nodes.registerType('lane-dataset', LaneDatasetNodeConstructor);

  // GET /lane-vision/lane-dataset/:id/counts: 404 until the node is deployed.
  registerReadAction<LaneDatasetNode>(RED, 'lane-dataset', 'counts', (node) => node.summary());
  // POST /lane-vision/lane-dataset/:id/import-tm {source: folder or URL}: the export becomes the active version.
  registerWriteAction<LaneDatasetNode>(RED, 'lane-dataset', 'import-tm', (node, body) => node.importTeachableMachine(body));
};
