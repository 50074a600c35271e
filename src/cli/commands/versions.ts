/** `lane-vision versions`: list, activate, roll back and prune the versions of a model store. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LaneVisionError } from '../../errors.js';
import { openModelStore, type ModelStore, type VersionSummary } from '../../model-store/index.js';
import { COMMON_OPTIONS, UsageError, integerOption, needPositionals, parseCommandLine, requiredOption } from '../args.js';
import { JSON_HELP, PROGRAM, type Command } from '../command.js';
import { Output, percent, table } from '../output.js';

const OPTIONS = { ...COMMON_OPTIONS, store: { type: 'string', short: 's' }, keep: { type: 'string' } } as const;
const ACTIONS = ['list', 'activate', 'rollback', 'prune'] as const;
type Action = (typeof ACTIONS)[number];

/** The grouped (held-out) accuracy a training recorded, when it did. */
export function holdoutAccuracy(metrics: Record<string, unknown> | undefined): number | undefined {
  const holdout = metrics?.holdout as { accuracy?: unknown } | undefined;
  return typeof holdout?.accuracy === 'number' ? holdout.accuracy : undefined;
}

/** One version as `versions --json` lists it. */
function versionRecord(v: VersionSummary, previous: number | undefined) {
  const m = v.metadata;
  return {
    version: v.version,
    name: v.name,
    active: v.active,
    previous: v.version === previous,
    createdAt: v.createdAt ?? null,
    labels: m?.classes ?? null,
    accuracy: holdoutAccuracy(v.metrics) ?? null,
    head: m?.head.kind ?? null,
    backboneId: m?.backbone.id ?? null,
    tuned: m?.backbone.tuned !== undefined,
    ...(v.problem ? { problem: v.problem } : {}),
  };
}

export const versionsCommand: Command = {
  name: 'versions',
  summary: 'list, activate, roll back or prune the model versions of a store',
  help: `Usage: ${PROGRAM} versions --store DIR [list | activate N | rollback | prune --keep K] [options]

  list         every version, oldest first: active and previous marks, labels, grouped
               accuracy (metrics.holdout.accuracy), head kind, backbone (the default action)
  activate N   make version N (a number or vNNNN) the one classifiers use, after checking it loads
  rollback     go back to the version active before the current one
  prune        delete all but the newest K versions; the active version and the previous one
               (what a rollback goes back to) are never deleted

A running lane picks the change up at once when it shares the store folder (classifiers
poll the active pointer).

Options:
  -s, --store DIR                     the model store
  --keep K                            versions to keep when pruning (required for prune)
  ${JSON_HELP}
  -h, --help                          this help

With --json: list gives one object per version {"version", "name", "active", "previous",
"createdAt", "labels": [{"label", "code"}], "accuracy", "head", "backboneId", "tuned"};
activate and rollback give {"action", "version", "previous"}; prune gives {"action",
"removed": [n...], "kept": [n...]}.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('versions', args, OPTIONS);
    const storeDir = path.resolve(requiredOption('versions', 'store', values.store));
    const action = (positionals[0] ?? 'list') as Action;
    if (!ACTIONS.includes(action)) throw new UsageError('versions', `unknown action "${positionals[0]}": use ${ACTIONS.join(', ')}`);
    needPositionals('versions', positionals, 'N: name the version to activate', { min: action === 'activate' ? 2 : 0, max: action === 'activate' ? 2 : 1 });
    if (action === 'prune' && values.keep === undefined) throw new UsageError('versions', 'prune needs --keep K');
    if (action !== 'prune' && values.keep !== undefined) throw new UsageError('versions', '--keep belongs to prune');
    const keep = integerOption('versions', 'keep', values.keep, 1, { min: 1, max: 100_000 });
    // Opening would create nothing, but a typo should not read as "an empty store".
    if (!fs.existsSync(storeDir)) throw new LaneVisionError('MODEL_STORE_INVALID', `No model store at ${storeDir}`);
    const out = new Output(values.json === true, streams);
    const store = await openModelStore(storeDir);

    switch (action) {
      case 'list':
        return list(store, out);
      case 'activate': {
        const version = await store.resolveVersion(positionals[1]);
        const change = await store.activate(version);
        out.record({ action, version: change.version, previous: change.previous ?? null });
        out.line(change.previous === change.version ? `v${change.version} was already active` : `active: v${change.version} (was ${change.previous ? `v${change.previous}` : 'none'})`);
        return 0;
      }
      case 'rollback': {
        const change = await store.rollback();
        out.record({ action, version: change.version, previous: change.previous ?? null });
        out.line(`rolled back to v${change.version} (was v${change.previous})`);
        return 0;
      }
      case 'prune': {
        const removed = await store.prune({ keep });
        const kept = (await store.listVersions()).map((v) => v.version);
        out.record({ action, removed, kept });
        out.line(removed.length ? `removed ${removed.map((v) => `v${v}`).join(', ')}; kept ${kept.map((v) => `v${v}`).join(', ')}` : `nothing to prune; kept ${kept.map((v) => `v${v}`).join(', ')}`);
        return 0;
      }
    }
  },
};

async function list(store: ModelStore, out: Output): Promise<number> {
  const versions = await store.listVersions();
  const previous = await store.previousVersion().catch(() => undefined);
  const records = versions.map((v) => versionRecord(v, previous));
  for (const record of records) out.record(record);
  if (records.length === 0) {
    out.line(`no versions in ${store.dir}`);
    return 0;
  }
  const rows = records.map((r) => [
    `v${r.version}`,
    r.active ? 'active' : r.previous ? 'previous' : '',
    r.createdAt ?? '-',
    r.labels ? String(r.labels.length) : '-',
    percent(r.accuracy),
    r.problem ? `${r.problem.code}: ${r.problem.message}` : `${r.head}${r.tuned ? ' (tuned backbone)' : ''}`,
  ]);
  for (const line of table(['version', '', 'created', 'labels', 'accuracy', 'head'], rows, [false, false, false, true, true, false])) out.line(line);
  return 0;
}
