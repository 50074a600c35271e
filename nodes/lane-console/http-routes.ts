/**
 * The console's HTTP surface.
 *
 * Reads (the page, its assets, the event stream, thumbnails, gallery, models, similar
 * frames) are served on RED.httpNode below each console's path, so Node-RED's
 * httpNodeAuth guards them like any HTTP-in route. One dispatcher is registered per
 * runtime and finds the console by path, so a redeploy never leaves stale routes behind.
 *
 * Writes go to RED.httpAdmin, `/lane-vision/lane-console/:id/<action>`, behind the
 * `lane-vision.write` permission (nodes/shared/admin-routes.ts). A guard route in front
 * of them refuses cross-site requests (403) and malformed bodies (400), and checks what
 * the body refers to (404, 409), before admin-routes runs the action.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node, NodeAPI } from 'node-red';
import type { NextFunction, Request, Response } from 'express';
import { answerRequestErrorsAsJson, errorBody, httpStatusOf, registerWriteAction, WRITE_PERMISSION } from '../shared/admin-routes.js';
import { errorText } from '../shared/status.js';
import type { ThumbnailSize } from '../../src/console/frame-store.js';
import type { OperatorConsole } from '../../src/console/operator-console.js';
import { checkSameOrigin, HttpError, isWriteAction, parseWriteRequest, WRITE_ACTIONS, type WriteRequest } from '../../src/console/write-requests.js';

export const NODE_TYPE = 'lane-console';

/** What the routes need of a deployed console node. */
export interface RoutedConsole {
  id: string;
  type: string;
  pagePath: string;
  /** Undefined when the node's settings are unusable; `problem` says why. */
  operatorConsole?: OperatorConsole;
  problem?: Error;
}

/** What the guard leaves in req.body for the action. */
interface CheckedWrite {
  checked: WriteRequest;
  author?: string;
}

/** ui/console, found from this file both compiled (dist/nodes/lane-console) and as source (nodes/lane-console). */
export function findUiFolder(from: string = __dirname): string {
  for (let dir = from, i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'ui', 'console');
    if (fs.existsSync(path.join(candidate, 'index.html'))) return candidate;
  }
  throw new Error(`The console page (ui/console/index.html) is missing above ${from}; the package is incomplete.`);
}

/** The page only talks to its own origin and loads nothing from elsewhere. */
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
  'Referrer-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  // Assets revalidate (ETag), so an upgraded package shows at once.
  'Cache-Control': 'no-cache',
};

// Asset names: one optional folder, lower-case names, known types. Nothing else reaches the disk.
const ASSET = /^\/(?:[a-z0-9-]+\/)?[a-z0-9][a-z0-9.-]*\.(?:html|css|js|svg|png|ico)$/;
const FRAME_IMAGE = /^\/frames\/(\d{1,16})\.jpg$/;
const DATASET_IMAGE = /^\/images\/([^/]+)\.jpg$/;
const REVIEW_IMAGE = /^\/review\/([A-Za-z0-9-]{1,80})\.jpg$/;
/** The placeholder for a listed dataset image that has left the dataset. */
const IMAGE_GONE = 'image-gone.svg';
const MODEL_EXPORT = /^\/api\/models\/(\d{1,9})\/export\/(onnx|tfjs)\/([\w.-]{1,64})$/;

function answerError(res: Response, err: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const status = err instanceof HttpError ? err.status : httpStatusOf(err);
  res.status(status).json(errorBody(err));
}

function sizeOf(req: Request): ThumbnailSize {
  return req.query.size === 'large' ? 'large' : 'small';
}

function sendJpeg(res: Response, image: Buffer, cacheControl: string): void {
  res.set({ 'Content-Type': 'image/jpeg', 'Cache-Control': cacheControl, 'X-Content-Type-Options': 'nosniff' });
  res.end(image);
}

export function adminRootOf(settings: { httpAdminRoot?: string | false }): string | null {
  const root = settings.httpAdminRoot;
  if (root === false) return null;
  const text = typeof root === 'string' && root !== '' ? root : '/';
  return (text.startsWith('/') ? '' : '/') + text + (text.endsWith('/') ? '' : '/');
}

export function registerConsoleRoutes(RED: NodeAPI, consoles: ReadonlyMap<string, RoutedConsole>): void {
  const uiFolder = findUiFolder();

  // #region reads (httpNode)

  function consoleAt(requestPath: string): RoutedConsole | undefined {
    let best: RoutedConsole | undefined;
    for (const [prefix, node] of consoles) {
      if ((requestPath === prefix || requestPath.startsWith(prefix + '/')) && (!best || prefix.length > best.pagePath.length)) best = node;
    }
    return best;
  }

  async function serveRead(node: RoutedConsole, rest: string, req: Request, res: Response): Promise<void> {
    if (rest === '') {
      // Relative asset URLs need the trailing slash.
      const [pathname, query] = req.originalUrl.split('?');
      res.redirect(302, `${pathname}/${query === undefined ? '' : `?${query}`}`);
      return;
    }
    if (rest === '/' || rest === '/index.html') {
      res.sendFile(path.join(uiFolder, 'index.html'), { headers: PAGE_HEADERS });
      return;
    }
    if (ASSET.test(rest)) {
      const file = path.join(uiFolder, rest);
      if (fs.existsSync(file)) {
        res.sendFile(file, { headers: PAGE_HEADERS });
        return;
      }
      throw new HttpError(404, `No such console file: ${rest}`);
    }
    const lane = node.operatorConsole;
    if (!lane) throw new HttpError(503, `The console is not running: ${errorText(node.problem)}`);

    if (rest === '/events') {
      const state = await lane.state();
      // Node-RED's httpNodeAuth has checked the login before any route runs.
      const authenticated = Boolean((RED.settings as { httpNodeAuth?: unknown }).httpNodeAuth) && typeof req.headers.authorization === 'string';
      const refused = lane.hub.open(req, res, { event: 'state', data: state }, { authenticated });
      if (refused === 'client-limit') throw new HttpError(429, 'Too many console pages are open from this machine; close some and reload.');
      if (refused === 'full') throw new HttpError(503, 'Too many console pages are open on this lane; close some and reload.');
      return;
    }
    if (rest === '/api/state') {
      res.set('Cache-Control', 'no-store').json(await lane.state());
      return;
    }
    if (rest === '/api/gallery') {
      res.set('Cache-Control', 'no-store').json(await lane.gallery());
      return;
    }
    if (rest === '/api/review') {
      res.set('Cache-Control', 'no-store').json(await lane.reviewView());
      return;
    }
    const reviewMatch = REVIEW_IMAGE.exec(rest);
    if (reviewMatch) {
      const image = await lane.reviewThumbnail(reviewMatch[1], sizeOf(req));
      if (!image) throw new HttpError(404, 'That frame is no longer in the review queue.');
      sendJpeg(res, image, 'private, max-age=3600');
      return;
    }
    if (rest === '/api/models') {
      res.set('Cache-Control', 'no-store').json(await lane.modelsView());
      return;
    }
    const exportMatch = MODEL_EXPORT.exec(rest);
    if (exportMatch) {
      // The Models tab's download links: the version as a self-contained model (src/export).
      const [, version, format, file] = exportMatch;
      const found = await lane.exportFile(Number(version), format as 'onnx' | 'tfjs', file).catch((err: unknown) => {
        const code = (err as { code?: string }).code;
        if (code === 'MODEL_VERSION_NOT_FOUND') throw new HttpError(404, errorText(err));
        // A version the export cannot state (a knn head, a pixel region): say why, as the CLI does.
        if (code === 'EXPORT_UNSUPPORTED') throw new HttpError(409, errorText(err));
        throw err;
      });
      if (!found) throw new HttpError(404, `The ${format} export of v${version} has no file ${file}.`);
      res.set('Cache-Control', 'private, max-age=3600');
      res.download(found, `lane-vision-v${version}-${file}`);
      return;
    }
    if (rest === '/api/similar') {
      const frame = Number(req.query.frame);
      const k = req.query.k === undefined ? undefined : Number(req.query.k);
      if (!Number.isSafeInteger(frame)) throw new HttpError(400, '"frame" must be the id of a kept frame.');
      if (k !== undefined && !(Number.isInteger(k) && k >= 1 && k <= 50)) throw new HttpError(400, '"k" must be a whole number from 1 to 50.');
      res.set('Cache-Control', 'no-store').json(await lane.similar(frame, k));
      return;
    }
    const frameMatch = FRAME_IMAGE.exec(rest);
    if (frameMatch) {
      const image = lane.frameThumbnail(Number(frameMatch[1]), sizeOf(req));
      if (!image) throw new HttpError(404, 'That frame is no longer kept.');
      sendJpeg(res, await image, 'private, max-age=3600');
      return;
    }
    const imageMatch = DATASET_IMAGE.exec(rest);
    if (imageMatch) {
      let id: string;
      try {
        id = decodeURIComponent(imageMatch[1]);
      } catch {
        throw new HttpError(400, 'Malformed image id.');
      }
      const image = await lane.imageThumbnail(id, sizeOf(req));
      if (!image && (await lane.imageGone(id))) {
        // Shown to the page, then deleted or dropped by the label's cap: a placeholder saying
        // so, until the page's list catches up (the dataset event that follows the change).
        res.sendFile(path.join(uiFolder, IMAGE_GONE), { headers: { ...PAGE_HEADERS, 'Cache-Control': 'no-store', 'X-Lane-Vision-Image': 'gone' } });
        return;
      }
      if (!image) throw new HttpError(404, 'No such image in the dataset.');
      // The page adds ?v=<sha> to the URL, so a relabelled or replaced image gets a new URL.
      sendJpeg(res, image, 'private, max-age=86400');
      return;
    }
    throw new HttpError(404, `Nothing at ${rest} on this console.`);
  }

  if (RED.httpNode) {
    RED.httpNode.use((req: Request, res: Response, next: NextFunction) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return next();
      const node = consoleAt(req.path);
      if (!node) return next();
      serveRead(node, req.path.slice(node.pagePath.length), req, res).catch((err: unknown) => answerError(res, err));
    });
  }

  // #endregion

  // #region writes (httpAdmin)

  answerRequestErrorsAsJson(RED);
  RED.httpAdmin.post(
    `/lane-vision/${NODE_TYPE}/:id/:action`,
    RED.auth.needsPermission(WRITE_PERMISSION),
    (req: Request, res: Response, next: NextFunction) => {
      (async () => {
        checkSameOrigin(req.headers as Record<string, string | undefined>);
        const action = String(req.params.action);
        if (!isWriteAction(action)) throw new HttpError(404, `Unknown console action "${action}"; the actions are ${WRITE_ACTIONS.join(', ')}.`);
        const node = RED.nodes.getNode(String(req.params.id)) as unknown as RoutedConsole | null;
        if (!node || node.type !== NODE_TYPE) return next(); // admin-routes answers 404 "not deployed"
        const request = parseWriteRequest(action, req.body);
        if (!node.operatorConsole) throw new HttpError(409, `The console is not running: ${errorText(node.problem)}`);
        await node.operatorConsole.checkWrite(request);
        const user = (req as Request & { user?: { username?: string } }).user;
        const checked: CheckedWrite = { checked: request, ...(user?.username ? { author: user.username } : {}) };
        req.body = checked;
        next();
      })().catch((err: unknown) => answerError(res, err));
    },
  );

  for (const action of WRITE_ACTIONS) {
    registerWriteAction<Node & RoutedConsole>(RED, NODE_TYPE, action, (node, body) => {
      const { checked, author } = (body ?? {}) as Partial<CheckedWrite>;
      if (!checked || checked.action !== action || !node.operatorConsole) throw new Error('The request was not checked; send it to the console route.');
      return node.operatorConsole.write(checked, author);
    });
  }

  // #endregion
}
