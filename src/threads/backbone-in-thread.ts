/**
 * The worker-thread side of BackboneThread: loads the thread's copy of the backbone from
 * its workerData, says `ready` (with what the main thread checks) or `load-failed`, and
 * on stop frees it once the work under way has finished, so the thread can end.
 */
import type { MessagePort } from 'node:worker_threads';
import { loadBackbone, type Backbone } from '../engine/index.js';
import type { BackboneLoadInWorker, LoadMessage } from './backbone-thread.js';
import { serialiseError } from './serialised-error.js';

export class BackboneInThread {
  /** Set once loaded and `ready` was sent; undefined while loading, after a failed load and after stop. */
  backbone: Backbone | undefined;
  stopping = false;

  constructor(
    data: BackboneLoadInWorker,
    private readonly port: MessagePort,
  ) {
    const post = (message: LoadMessage) => port.postMessage(message);
    loadBackbone(data.spec, data.load).then(
      (loaded) => {
        if (this.stopping) return loaded.release();
        this.backbone = loaded;
        post({ type: 'ready', backbone: { id: loaded.id, engine: loaded.engine.name, backend: loaded.backend.name, featureSize: loaded.featureSize } });
      },
      (err: unknown) => post({ type: 'load-failed', error: serialiseError(err) }),
    );
  }

  /** Once `finishing` (the work under way) has settled, frees the backbone (the engine must outlive its last call) and closes the port; the thread then ends. */
  async stop(finishing: Promise<unknown>): Promise<void> {
    this.stopping = true;
    await finishing;
    this.backbone?.release();
    this.backbone = undefined;
    this.port.close();
  }
}
