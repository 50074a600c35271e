/**
 * Keeps a station's retained model event equal to its model store's active version.
 *
 * Every way the active version changes (a training that activates, a promote in the
 * console, a rollback by MQTT command or node, `lane-vision versions`, a fleet update) goes
 * through the model store, so watching the store is the one place that sees them all: the
 * retained topic can never go on naming a version the lane no longer serves.
 */
import createDebug from 'debug';
import type { ModelStore } from '../model-store/index.js';
import { modelInputFromSummary } from './inputs.js';
import { buildModelEvent, type LaneModelEvent } from './payloads.js';
import type { LaneStation } from './station.js';

const debug = createDebug('lane-vision:events');

/** How often another process's change (the CLI) is looked for; changes in this process arrive at once. */
export const DEFAULT_MODEL_POLL_MS = 2000;

/** The model event of the store's active version, or undefined when none is active. */
export async function activeModelEvent(station: Pick<LaneStation, 'context'>, store: ModelStore): Promise<LaneModelEvent | undefined> {
  const version = await store.activeVersion();
  if (version === undefined) return undefined;
  return buildModelEvent(station.context, modelInputFromSummary(await store.readMetadata(version)));
}

export interface FollowActiveModelOptions {
  pollIntervalMs?: number;
  /** A version that cannot be described or published (one call per fault). */
  onError?(err: Error): void;
  /** After each retained model event went out. */
  onPublished?(event: LaneModelEvent): void;
}

/**
 * Publishes the active version now and after every change. Publishes run one after the
 * other and each re-reads the active pointer, so quick changes end with the latest one
 * retained, never an older one overtaking it. `refresh()` publishes the active version
 * again now (resolving once it went out or failed), `stop()` ends the following.
 */
export function followActiveModel(station: LaneStation, store: ModelStore, options: FollowActiveModelOptions = {}): ModelFollower {
  let stopped = false;
  let chain: Promise<void> = Promise.resolve();
  let lastPublished: string | undefined;
  const publishCurrent = (): Promise<void> => {
    chain = chain.then(async () => {
      if (stopped) return;
      try {
        const event = await activeModelEvent(station, store);
        if (!event || stopped) return;
        // The same version twice in a row (a poll seeing our own change) is not news.
        const key = `${event.modelVersion}|${JSON.stringify(event.labels)}`;
        if (key === lastPublished) return;
        await station.publishModel(event);
        lastPublished = key;
        debug('retained model %s for %s/%s', event.modelVersion, station.context.line, station.context.station);
        options.onPublished?.(event);
      } catch (err) {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
      }
    });
    return chain;
  };
  const unwatch = store.watchActive(() => void publishCurrent(), { pollIntervalMs: options.pollIntervalMs ?? DEFAULT_MODEL_POLL_MS });
  void publishCurrent();
  return {
    refresh: publishCurrent,
    stop() {
      stopped = true;
      unwatch();
    },
  };
}

export interface ModelFollower {
  refresh(): Promise<void>;
  stop(): void;
}
