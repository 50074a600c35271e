/**
 * lane-stats: a lane's figures for a dashboard. Its input takes lane-classify's results;
 * every few seconds it sends one message per widget on its own output: frames per label,
 * reject rate, confidence, frames per second, the last frame (a small JPEG data URL) and
 * the model version. So a Dashboard 2 chart, gauge or text is wired straight to an
 * output, with no function node and no frame in every result. This file is the Node-RED
 * glue (settings, input, timer, status); src/dashboard shapes the messages.
 */
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import { isClassificationResult } from '../../src/classify/types.js';
import { DashboardFeed } from '../../src/dashboard/index.js';
import { LaneVisionError } from '../../src/errors.js';
import type { ImageInput } from '../../src/image/index.js';
import { keptFrame } from '../shared/recent-frames.js';
import { errorText, showStatus } from '../shared/status.js';
import { createStatusThrottle } from '../shared/status-throttle.js';
import { statsSettingsFrom } from './settings.js';
import type { LaneStatsDef, LaneStatsNode, StatsSettings } from './types.js';

type Done = (err?: Error) => void;

const STATUS_INTERVAL_MS = 1_000;

export = function (RED: NodeAPI) {
  function LaneStatsNodeConstructor(this: LaneStatsNode, config: LaneStatsDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const throttle = createStatusThrottle(node, STATUS_INTERVAL_MS);

    let settings: StatsSettings | undefined;
    let problem: Error | undefined;
    try {
      settings = statsSettingsFrom(config);
    } catch (err) {
      problem = err instanceof Error ? err : new Error(String(err));
    }
    const feed = settings ? new DashboardFeed({ windowMinutes: settings.windowMinutes, frameBox: settings.frameBox }) : undefined;
    if (problem) {
      showStatus(node, 'error', errorText(problem));
      node.error(RED._('lane-stats.errors.unusable', { message: errorText(problem) }));
    } else {
      showStatus(node, 'idle', RED._('lane-stats.status.waiting'));
    }

    /** Messages that were not results: the first fails visibly, the rest are counted on the status. */
    let ignored = 0;
    let warnedNoFrame = false;
    let warnedFrameFailed = false;
    let emitting = false;
    let closed = false;
    const timer = settings ? setInterval(() => void emit(), settings.intervalMs) : undefined;

    async function emit(): Promise<void> {
      // Nothing to show before the first result; a slow thumbnail skips a tick rather than piling up.
      if (!feed || emitting || closed || feed.resultCount === 0) return;
      emitting = true;
      try {
        const out = await feed.messages();
        if (closed) return;
        if (out.frameProblem && !warnedFrameFailed) {
          warnedFrameFailed = true;
          node.warn(RED._('lane-stats.warnings.frame-failed', { message: errorText(out.frameProblem) }));
        }
        const outputs: Array<NodeMessage | null> = [out.counts, out.rejectRate ?? null, out.confidence ?? null, out.throughput, out.frame ?? null, out.model ?? null];
        node.send(outputs as NodeMessage[]);
        showFigures(out.throughput.payload, out.rejectRate?.payload);
      } finally {
        emitting = false;
      }
    }

    function showFigures(fps: number, rejectPercent: number | undefined): void {
      // The ignored count first: it is what needs a look, and the editor cuts long statuses at the end.
      const parts = [ignored > 0 ? RED._('lane-stats.status.ignored', { count: ignored }) : '', feed?.modelShown ?? '', RED._('lane-stats.status.fps', { fps })];
      if (rejectPercent !== undefined) parts.push(RED._('lane-stats.status.rejected', { percent: rejectPercent }));
      throttle.show(ignored > 0 ? 'warning' : 'ready', parts.filter(Boolean).join(' · '));
    }

    node.on('input', (msg: NodeMessageInFlow, _send: unknown, done: Done) => {
      if (!feed || !settings) return done(problem);
      const message = msg as NodeMessageInFlow & { classification?: unknown; frame?: unknown };
      if (!isClassificationResult(message.classification)) {
        ignored++;
        if (ignored === 1) return done(new LaneVisionError('STATS_NO_RESULT', RED._('lane-stats.errors.no-result')));
        throttle.show('warning', RED._('lane-stats.status.ignored', { count: ignored }));
        return done();
      }
      // lane-classify puts the frame on msg.frame (its Include frame setting) or keeps it aside by message id.
      const frame = (message.frame ?? keptFrame(msg._msgid)) as ImageInput | undefined;
      if (frame === undefined && settings.frameBox > 0 && !warnedNoFrame) {
        warnedNoFrame = true;
        node.warn(RED._('lane-stats.warnings.no-frame'));
      }
      feed.record(message.classification, frame);
      done();
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      if (timer) clearInterval(timer);
      throttle.stop();
      done();
    });
  }

  RED.nodes.registerType('lane-stats', LaneStatsNodeConstructor);
};
