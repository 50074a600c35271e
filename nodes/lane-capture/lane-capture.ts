/**
 * lane-capture: stores each incoming frame in the lane's dataset under a label (the
 * message's, the node's, or one armed by a `capture` command), so an operator can teach
 * the lane by showing it products. With a backbone configured it also embeds the stored
 * frame, warming the shared feature cache so the next retrain only embeds what is new.
 */
import type { NodeAPI, NodeDef, NodeMessageInFlow, Node } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import type { Backbone } from '../../src/engine/index.js';
import type { ImageInput } from '../../src/image/index.js';
import { embedImages } from '../../src/features/index.js';
import type { BackboneConfigNode, DatasetConfigNode } from '../shared/config-types.js';
import { errorText, showStatus } from '../shared/status.js';
import { fileAccessFrom, frameBytes, type FileInputSettings } from '../shared/file-input.js';
import { userDirOf } from '../shared/paths.js';
import type { FileAccess } from '../../src/image/index.js';
import { CAPTURE_TOPIC, checkCaptureCount, checkCaptureLabel, messageLabel, parseCaptureCommand, type ArmedLabel } from './command.js';
import { describeSource, isReadSource, readSetting } from '../shared/typed-setting.js';
import { DEFAULT_MAX_CAPTURE_COUNT } from '../../src/events/commands.js';

interface LaneCaptureDef extends NodeDef, FileInputSettings {
  dataset: string;
  /** Optional: pre-embed stored frames with this backbone. */
  backbone: string;
  /** Optional label: fixed text (labelType str, the default) or read per frame from msg / flow / global / env. */
  label: string;
  labelType?: 'str' | 'msg' | 'flow' | 'global' | 'env';
  /** Message property holding the frame (typedInput msg). Default payload. */
  property?: string;
  /** Capture session (shift, batch); blank: the day of capture. */
  session?: string;
  /** Frames a capture command arms when neither it nor the message gives a count: a number (countType num, blank = 1) or read from msg / flow / global / env. */
  count?: string | number;
  countType?: 'num' | 'msg' | 'flow' | 'global' | 'env';
  /**
   * A frame with no label while no capture command is armed: 'error' (the default, a frame
   * should always have one) or 'skip' (a stream taught on command: it passes unstored).
   */
  unlabelled?: 'error' | 'skip';
}

interface CaptureMessage extends NodeMessageInFlow {
  label?: unknown;
  count?: unknown;
  source?: unknown;
  author?: unknown;
  session?: unknown;
}

/** Blank: the local day of capture, so frames of another day count as another session. */
function sessionOf(msg: CaptureMessage, configured: string | undefined): string {
  if (typeof msg.session === 'string' && msg.session.trim()) return msg.session.trim();
  if (configured && configured.trim()) return configured.trim();
  const now = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
}

type Done = (err?: Error) => void;

export = function (RED: NodeAPI) {
  function LaneCaptureNode(this: Node, config: LaneCaptureDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const datasetNode = RED.nodes.getNode(config.dataset) as DatasetConfigNode | null;
    const backboneNode = config.backbone ? (RED.nodes.getNode(config.backbone) as BackboneConfigNode | null) : null;
    const embedding = new Set<Promise<void>>();
    let armed: ArmedLabel | undefined;
    let backbone: Backbone | undefined;

    let setupProblem: Error | undefined;
    let fixedLabel: string | undefined;
    const labelType = config.labelType ?? 'str';
    const skipUnlabelled = config.unlabelled === 'skip';
    const imageProperty = typeof config.property === 'string' && config.property.trim() !== '' ? config.property.trim() : 'payload';
    let files: FileAccess = 'none';
    try {
      files = fileAccessFrom(config, userDirOf(RED.settings as { userDir?: string }));
    } catch (err) {
      setupProblem = err as Error;
    }
    if (!setupProblem && !datasetNode) setupProblem = new LaneVisionError('CAPTURE_NO_DATASET', RED._('lane-capture.errors.no-dataset'));
    else if (!setupProblem && config.unlabelled !== undefined && config.unlabelled !== 'error' && config.unlabelled !== 'skip') {
      setupProblem = new LaneVisionError('CAPTURE_BAD_SETTING', RED._('lane-capture.errors.bad-unlabelled', { value: String(config.unlabelled) }));
    } else if (!setupProblem && !['str', 'msg', 'flow', 'global', 'env'].includes(labelType)) {
      setupProblem = new LaneVisionError('CAPTURE_BAD_SETTING', RED._('lane-capture.errors.bad-label-type', { type: String(labelType) }));
    } else if (!setupProblem && labelType === 'str' && typeof config.label === 'string' && config.label.trim() !== '') {
      try {
        fixedLabel = checkCaptureLabel(config.label);
      } catch (err) {
        setupProblem = err as Error;
      }
    }
    const countType = config.countType || 'num';
    const countKey = String(config.count ?? '').trim();
    let fixedCount: number | undefined;
    if (!setupProblem) {
      try {
        if (countType === 'num') {
          fixedCount = countKey === '' ? undefined : Number(countKey);
          if (fixedCount !== undefined && (!Number.isSafeInteger(fixedCount) || fixedCount < 1 || fixedCount > DEFAULT_MAX_CAPTURE_COUNT)) {
            throw new LaneVisionError('CAPTURE_BAD_SETTING', RED._('lane-capture.errors.bad-count', { max: DEFAULT_MAX_CAPTURE_COUNT, value: countKey }));
          }
        } else if (!isReadSource(countType)) {
          throw new LaneVisionError('CAPTURE_BAD_SETTING', RED._('lane-capture.errors.bad-count-type', { type: String(countType) }));
        } else if (!countKey) {
          throw new LaneVisionError('CAPTURE_BAD_SETTING', RED._('lane-capture.errors.no-count-key', { type: countType }));
        }
      } catch (err) {
        setupProblem = err as Error;
      }
    }
    if (setupProblem) {
      showStatus(node, 'error', errorText(setupProblem));
      node.error(setupProblem.message);
    } else {
      showStatus(node, 'idle', fixedLabel ?? '');
    }

    if (backboneNode && !setupProblem) {
      backboneNode.acquire(node).then(
        (loaded) => (backbone = loaded),
        () => undefined, // shown on the status by the backbone node; capture works without it
      );
    }

    function armedText(): string {
      return armed ? RED._('lane-capture.status.armed', { label: armed.label, count: armed.remaining }) : '';
    }

    /** The label setting read from msg / flow / global / env for this frame; blank or missing: none. */
    function typedLabel(msg: CaptureMessage): unknown {
      if (labelType === 'str' || typeof config.label !== 'string' || config.label.trim() === '') return undefined;
      const value: unknown = RED.util.evaluateNodeProperty(config.label, labelType, node, msg);
      return value === undefined || value === null || value === '' ? undefined : value;
    }

    /** The count setting for a capture command: fixed, or read now from msg / flow / global / env; undefined when not set. */
    async function settingCount(msg: CaptureMessage): Promise<number | undefined> {
      if (countType === 'num' || !isReadSource(countType)) return fixedCount;
      const value = await readSetting(RED, node, countKey, countType, msg);
      if (value === undefined || value === null || value === '') return undefined;
      // Context and env values are often text ("5"): a numeric text is that number.
      const number = typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
      return checkCaptureCount(number, describeSource(countType, countKey));
    }

    /** Picks the label and, for an armed one, takes one frame off its count (given back if the frame is refused); undefined: skip it. */
    function chooseLabel(msg: CaptureMessage): { label: string; giveBack?: () => void } | undefined {
      const given = messageLabel(msg);
      if (given !== undefined) return { label: checkCaptureLabel(given) };
      if (fixedLabel) return { label: fixedLabel };
      const typed = typedLabel(msg);
      if (typed !== undefined) return { label: checkCaptureLabel(typed) };
      if (!armed && skipUnlabelled) return undefined;
      if (!armed) throw new LaneVisionError('CAPTURE_NO_LABEL', RED._('lane-capture.errors.no-label'));
      const taken = armed;
      taken.remaining--;
      if (taken.remaining === 0) armed = undefined;
      return {
        label: taken.label,
        giveBack: () => {
          if (armed === undefined && taken.remaining === 0) armed = taken;
          if (armed === taken) taken.remaining++;
        },
      };
    }

    /** Embeds the stored file (not the message) so the cache key is the one retrain will look up. */
    function preEmbed(file: string): Promise<void> {
      const fit = backboneNode!.fit;
      const job = embedImages(backbone!, [file], { fit })
        .then(() => undefined)
        .catch((err: unknown) => node.warn(RED._('lane-capture.errors.embed-failed', { message: errorText(err) })))
        .finally(() => embedding.delete(job));
      embedding.add(job);
      return job;
    }

    async function capture(msg: CaptureMessage, send: (msg: NodeMessageInFlow) => void): Promise<void> {
      const dataset = await datasetNode!.dataset();
      const chosen = chooseLabel(msg);
      if (!chosen) return; // unlabelled, nothing armed: not taught
      const { label, giveBack } = chosen;
      let entry;
      try {
        entry = await dataset.add(label, (await frameBytes(RED.util.getMessageProperty(msg, imageProperty), files)) as ImageInput, {
          source: typeof msg.source === 'string' ? msg.source : `node-red:${node.name || node.id}`,
          author: typeof msg.author === 'string' ? msg.author : undefined,
          session: sessionOf(msg, config.session),
        });
      } catch (err) {
        giveBack?.();
        throw err;
      }
      const counts = dataset.counts();
      const out = msg as CaptureMessage & Record<string, unknown>;
      out.payload = { id: entry.id, label: entry.label, file: entry.file, sha256: entry.sha256, duplicate: entry.duplicate };
      out.counts = counts;
      if (entry.dropped.length > 0) out.dropped = entry.dropped.map((d) => d.id);
      const armedNote = armedText();
      showStatus(node, 'ready', `${entry.label}: ${counts[entry.label] ?? 0}${entry.duplicate ? ` (${RED._('lane-capture.status.duplicate')})` : ''}${armedNote ? ` · ${armedNote}` : ''}`);
      send(out);
      if (backbone && !entry.problem) await preEmbed(entry.path);
    }

    node.on('input', (msg: CaptureMessage, send: (msg: NodeMessageInFlow) => void, done: Done) => {
      if (setupProblem) return done(setupProblem);
      if (msg.topic === CAPTURE_TOPIC) {
        // The command's own count, then the message's, then this node's setting (a bad one fails this command).
        const command = msg.payload as { count?: unknown } | null;
        const ownCount = command !== null && typeof command === 'object' && command.count !== undefined;
        (ownCount || msg.count !== undefined ? Promise.resolve(undefined) : settingCount(msg))
          .then((fallback) => {
            armed = parseCaptureCommand(msg.payload, msg.count, fallback);
            showStatus(node, 'busy', armedText());
            done();
          })
          .catch((err: unknown) => done(err instanceof Error ? err : new Error(String(err))));
        return;
      }
      capture(msg, send).then(
        () => done(),
        (err: unknown) => {
          showStatus(node, 'error', errorText(err));
          done(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      // Let frames being embedded finish before the backbone may be disposed.
      Promise.allSettled([...embedding]).then(() => {
        backboneNode?.release(node);
        done();
      });
    });
  }

  RED.nodes.registerType('lane-capture', LaneCaptureNode);
};
