/**
 * Starts one of the library's worker threads from its entry file next to the caller:
 * from dist/ as compiled JavaScript, or from src/ under tsx (tests). Node 20 does not
 * apply `--import tsx` to a worker's .ts entry, so it gets tsx's require hook first.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
// Loaded by the main thread before any worker: a worker that is the last to hold libvips
// would unload it when it exits and crash the process on glibc (lovell/sharp#2263).
import 'sharp';

/** `callerFile` is the caller's `__filename`; `entryName` the entry's file name without extension. */
export function startWorker(callerFile: string, entryName: string, workerData: unknown): Worker {
  const extension = path.extname(callerFile);
  const entry = path.join(path.dirname(callerFile), `${entryName}${extension}`);
  if (extension === '.js') return new Worker(entry, { workerData });
  const bootstrap = `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register(); require(${JSON.stringify(entry)});`;
  return new Worker(bootstrap, { eval: true, workerData });
}
