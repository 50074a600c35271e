/**
 * The inference worker thread: its own copy of the backbone (ONNX Runtime session or
 * tfjs), decoding and embedding the frames an EmbeddingWorker sends. Everything a frame
 * allocates (decoded pixels, engine buffers) lives and is collected in this small heap.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Backbone } from '../engine/index.js';
import { BackboneInThread } from '../threads/backbone-in-thread.js';
import { serialiseError, type SerialisedError } from '../threads/serialised-error.js';
import { decodeFrames, embedDecoded, finishEmbedJob, startEmbedJob, type DecodedFrames, type EmbedJob } from './embed.js';
import { TwoStagePipeline } from './two-stage-pipeline.js';
import { FRAMES_PER_RUN, type EmbeddingWorkerData, type FromEmbeddingWorker, type ToEmbeddingWorker } from './embedding-worker-protocol.js';

if (!parentPort) throw new Error('embedding-worker-entry runs as a worker thread (see EmbeddingWorker)');
const port = parentPort;
const data = workerData as EmbeddingWorkerData;
const held = new BackboneInThread(data, port);
const running = new Set<Promise<void>>();

/**
 * Every request's frames go through one pair of stages: a part of the frames decodes
 * (sharp's pool) while the backbone runs the part before, of the same request or the one
 * before it, so one core decodes while another runs the model. The backbone runs one part
 * at a time, in arrival order, so replies keep the order of the requests.
 */
const stages = new TwoStagePipeline(
  ({ job, indices }: { job: EmbedJob; indices: number[] }) => decodeFrames(job, indices),
  (decoded: DecodedFrames) => embedDecoded(decoded.job, decoded),
);

/** A request's frames in parts of FRAMES_PER_RUN: the next part decodes while the backbone runs this one. */
function requestParts(count: number): number[][] {
  const size = FRAMES_PER_RUN;
  const parts: number[][] = [];
  for (let start = 0; start < count; start += size) parts.push(Array.from({ length: Math.min(size, count - start) }, (_, i) => start + i));
  return parts;
}

async function embed(message: Extract<ToEmbeddingWorker, { type: 'embed' }>, loaded: Backbone): Promise<void> {
  const { requestId, inputs, options } = message;
  try {
    const job = startEmbedJob(loaded, inputs, { ...options, cache: null });
    await Promise.all(requestParts(inputs.length).map((indices) => stages.push({ job, indices })));
    const report = finishEmbedJob(job);
    // Features, or the classifier's output: as long as the first frame's says.
    const size = report.results.find((r): r is Extract<typeof r, { features: Float32Array }> => 'features' in r)?.features.length ?? 0;
    const vectors = new Float32Array(inputs.length * size);
    const hashes: (string | null)[] = [];
    const errors: (SerialisedError | null)[] = [];
    report.results.forEach((result, i) => {
      if ('error' in result) {
        hashes.push(null);
        errors.push(serialiseError(result.error));
      } else {
        vectors.set(result.features, i * size);
        hashes.push(result.hash);
        errors.push(null);
      }
    });
    const reply: FromEmbeddingWorker = { type: 'embedded', requestId, vectors, size, hashes, errors, decodeMs: report.decodeMs, featuresMs: report.featuresMs };
    port.postMessage(reply, [vectors.buffer]);
  } catch (err) {
    port.postMessage({ type: 'failed', requestId, error: serialiseError(err) } satisfies FromEmbeddingWorker);
  }
}

port.on('message', (message: ToEmbeddingWorker) => {
  if (message.type === 'dispose') {
    void held.stop(Promise.all(running));
    return;
  }
  const { backbone } = held;
  // The main thread sends requests only after 'ready'.
  if (!backbone || held.stopping) {
    const error = serialiseError(new Error('The inference worker has no backbone loaded'));
    port.postMessage({ type: 'failed', requestId: message.requestId, error } satisfies FromEmbeddingWorker);
    return;
  }
  const job = embed(message, backbone).finally(() => running.delete(job));
  running.add(job);
});
