/**
 * lane-console: the operator's web page for a lane, what Teachable Machine is for a
 * webcam. Its input takes the classify node's output (and, before there is a model, the
 * camera's frames); the page (ui/console) shows the latest frames and figures, captures
 * frames into the dataset, trains a candidate model, promotes or rolls back versions and
 * finds similar stored frames. This file is the Node-RED glue: settings, the shared
 * backbone and dataset, input, status and shutdown; operator-console.ts does the work,
 * http-routes.ts serves the page and takes the writes.
 */
import type { NodeAPI, NodeMessageInFlow } from 'node-red';
import { isClassificationResult } from '../../src/classify/types.js';
import { LaneVisionError } from '../../src/errors.js';
import type { Backbone } from '../../src/engine/index.js';
import type { ImageInput } from '../../src/image/index.js';
import type { BackboneConfigNode, DatasetConfigNode } from '../shared/config-types.js';
import { keptFrame } from '../shared/recent-frames.js';
import { errorText, showStatus } from '../shared/status.js';
import { createStatusThrottle } from '../shared/status-throttle.js';
import { adminRootOf, NODE_TYPE, registerConsoleRoutes, type RoutedConsole } from './http-routes.js';
import { OperatorConsole } from '../../src/console/operator-console.js';
import { consoleSettingsFrom, DEFAULT_PATH } from './settings.js';
import type { ConsoleSettings, LaneConsoleDef, LaneConsoleNode } from './types.js';

type ConsoleNode = LaneConsoleNode & RoutedConsole;
type Done = (err?: Error) => void;

const STATUS_INTERVAL_MS = 1_000;

export = function (RED: NodeAPI) {
  /** Deployed consoles by page path: the read routes find theirs here. */
  const consoles = new Map<string, ConsoleNode>();

  function LaneConsoleNodeConstructor(this: ConsoleNode, config: LaneConsoleDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const throttle = createStatusThrottle(node, STATUS_INTERVAL_MS);
    const backboneNode = RED.nodes.getNode(config.backbone) as BackboneConfigNode | null;
    const datasetNode = RED.nodes.getNode(config.dataset) as DatasetConfigNode | null;

    let settings: ConsoleSettings | undefined;
    try {
      settings = consoleSettingsFrom(config);
      if (!backboneNode) throw new LaneVisionError('CONSOLE_NO_BACKBONE', RED._('lane-console.errors.no-backbone'));
      if (!datasetNode) throw new LaneVisionError('CONSOLE_NO_DATASET', RED._('lane-console.errors.no-dataset'));
      if (!RED.httpNode) throw new LaneVisionError('CONSOLE_NO_HTTP', RED._('lane-console.errors.no-http'));
      const other = consoles.get(settings.path);
      if (other) throw new LaneVisionError('CONSOLE_PATH_TAKEN', RED._('lane-console.errors.path-taken', { path: settings.path, other: other.id }));
    } catch (err) {
      node.problem = err instanceof Error ? err : new Error(String(err));
    }
    Object.assign(node, { pagePath: settings?.path ?? DEFAULT_PATH });

    let acquired = false;
    if (node.problem || !settings) {
      showStatus(node, 'error', errorText(node.problem));
      node.error(RED._('lane-console.errors.unusable', { message: errorText(node.problem) }));
    } else {
      const backbone: Promise<Backbone> = backboneNode!.acquire(node);
      acquired = true;
      backbone.catch(() => undefined); // shown on the status by the backbone node, and on the page
      node.operatorConsole = new OperatorConsole({
        settings,
        node: { id: node.id, name: node.name ?? '' },
        adminRoot: adminRootOf(RED.settings as { httpAdminRoot?: string | false }),
        dataset: () => datasetNode!.dataset(),
        models: () => datasetNode!.models(),
        review: () => datasetNode!.review(),
        backbone,
        fit: backboneNode!.fit,
        retrain: (options) => backboneNode!.retrain(options),
        onActivity: () => showState(),
      });
      consoles.set(settings.path, node);
      backbone.then(() => showState(true), () => undefined);
    }

    function showState(now = false): void {
      const lane = node.operatorConsole;
      if (!lane) return;
      const text = lane.isTraining
        ? RED._('lane-console.status.training', { path: node.pagePath })
        : RED._('lane-console.status.serving', { path: node.pagePath, viewers: lane.viewers });
      if (now) throttle.showNow(lane.isTraining ? 'busy' : 'ready', text);
      else throttle.show(lane.isTraining ? 'busy' : 'ready', text);
    }

    node.on('input', (msg: NodeMessageInFlow, _send: unknown, done: Done) => {
      const lane = node.operatorConsole;
      if (!lane) return done(node.problem);
      const message = msg as NodeMessageInFlow & { classification?: unknown; frame?: unknown; label?: unknown };
      const classification = isClassificationResult(message.classification) ? message.classification : undefined;
      // lane-classify moves the frame to msg.frame, or keeps it aside by message id (its
      // *Frame* setting off, the default); a camera message has it in msg.payload.
      const image = classification ? (message.frame ?? keptFrame(msg._msgid)) : message.payload;
      if (image === undefined || image === null) {
        return done(new LaneVisionError('CONSOLE_NO_FRAME', RED._(classification ? 'lane-console.errors.no-frame-classified' : 'lane-console.errors.no-frame')));
      }
      const truth = typeof message.label === 'string' && message.label !== '' ? message.label : undefined;
      lane.receive(image as ImageInput, classification, truth).then(
        () => done(),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      throttle.stop();
      if (consoles.get(node.pagePath) === node) consoles.delete(node.pagePath);
      Promise.resolve(node.operatorConsole?.close())
        .catch(() => undefined)
        .then(() => {
          if (acquired) backboneNode?.release(node);
          done();
        });
    });
  }

  RED.nodes.registerType(NODE_TYPE, LaneConsoleNodeConstructor);
  registerConsoleRoutes(RED, consoles);
};
