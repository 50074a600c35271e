/**
 * Admin endpoints the editor calls (train button, dataset counts, ...), all under
 * `/lane-vision/<type>/:id/<action>` and guarded by Node-RED permissions, following the
 * core inject node: 404 when the node is not deployed, 200 with JSON, and on failure
 * `{error, code}` with the status httpStatusOf gives.
 */
import type { NodeAPI, Node } from 'node-red';
import type { NextFunction, Request, Response } from 'express';
import { checkSameOrigin, HttpError } from './same-origin.js';
import { errorText } from './status.js';

export const READ_PERMISSION = 'lane-vision.read';
export const WRITE_PERMISSION = 'lane-vision.write';

type Action<N extends Node> = (node: N, body: unknown) => Promise<unknown> | unknown;

/**
 * Codes a caller can act on: try again later (409), fix the request (400). 404 stays for
 * "no such node deployed", which the editor dialogs test for.
 */
const CONFLICT = /_BUSY$|_RUNNING$|_EXISTS$|_FULL$|_TAKEN$|^MODEL_ROLLBACK_UNAVAILABLE$/;
const BAD_REQUEST = /INVALID|_BAD_/;

/** The HTTP status for a failed action, from its LaneVisionError code; 500 for anything else. */
export function httpStatusOf(err: unknown): number {
  // An action may say better than the code alone (the same MODEL_NOT_FOUND is the caller's fault in one action, not in another).
  const explicit = (err as { httpStatus?: unknown } | null)?.httpStatus;
  if (typeof explicit === 'number' && explicit >= 400 && explicit < 600) return explicit;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 500;
  if (CONFLICT.test(code)) return 409;
  if (BAD_REQUEST.test(code)) return 400;
  return 500;
}

/** The JSON body of a failed action. */
export function errorBody(err: unknown): { error: string; code?: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { error: errorText(err), code } : { error: errorText(err) };
}

const appsAnsweringJson = new WeakSet<object>();

/**
 * Failures before a route runs (body-parser's malformed JSON, a body over apiMaxLength) on
 * the plugin's admin routes answer `{error, code}` like every other failure, instead of
 * Express's HTML page with a stack trace. Once per admin app.
 */
export function answerRequestErrorsAsJson(RED: NodeAPI): void {
  // In Node-RED, RED.httpAdmin is the runtime's app mounted inside the editor API's app,
  // and that outer app parses bodies: a parse error never enters the inner app, so the
  // handler goes on the outer one (Express sets `parent` on a mounted app). The test
  // helper's httpAdmin parses bodies itself and has no parent.
  const inner = RED.httpAdmin as (typeof RED.httpAdmin & { parent?: typeof RED.httpAdmin }) | undefined;
  const app = inner?.parent ?? inner;
  if (!app || appsAnsweringJson.has(app)) return;
  appsAnsweringJson.add(app);
  app.use('/lane-vision', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const { status, type } = (err ?? {}) as { status?: unknown; type?: unknown };
    const clientError = typeof status === 'number' && status >= 400 && status < 500;
    if (type === 'entity.parse.failed') res.status(400).json({ error: 'The request body is not valid JSON.', code: 'REQUEST_INVALID_JSON' });
    else if (type === 'entity.too.large') res.status(413).json({ error: 'The request body is too large.', code: 'REQUEST_TOO_LARGE' });
    else if (clientError) res.status(status as number).json({ error: 'The request could not be read.', code: 'REQUEST_INVALID' });
    else res.status(500).json({ error: 'The request failed inside the server; its log says why.', code: 'INTERNAL_ERROR' });
  });
}

function handler<N extends Node>(RED: NodeAPI, type: string, run: Action<N>) {
  return async (req: Request, res: Response): Promise<void> => {
    const node = RED.nodes.getNode(String(req.params.id)) as N | null;
    if (!node || node.type !== type) {
      res.status(404).json({ error: 'not deployed' });
      return;
    }
    try {
      res.status(200).json((await run(node, req.body)) ?? {});
    } catch (err) {
      res.status(httpStatusOf(err)).json(errorBody(err));
    }
  };
}

/** Refuses (403, JSON) a state-changing request that does not come from a page of this server. */
export function sameOriginOnly(req: Request, res: Response, next: NextFunction): void {
  try {
    checkSameOrigin(req.headers as Record<string, string | undefined>);
    next();
  } catch (err) {
    res.status(err instanceof HttpError ? err.status : 500).json({ error: errorText(err), code: 'REQUEST_CROSS_SITE' });
  }
}

/**
 * POST /lane-vision/<type>/:id/<action>, needs lane-vision.write and a request from a page
 * of this server (the X-Lane-Vision header, and Origin / Sec-Fetch-Site naming this host),
 * with or without adminAuth.
 */
export function registerWriteAction<N extends Node>(RED: NodeAPI, type: string, action: string, run: Action<N>): void {
  answerRequestErrorsAsJson(RED);
  RED.httpAdmin.post(`/lane-vision/${type}/:id/${action}`, RED.auth.needsPermission(WRITE_PERMISSION), sameOriginOnly, handler(RED, type, run));
}

/** GET /lane-vision/<type>/:id/<action>, needs lane-vision.read. */
export function registerReadAction<N extends Node>(RED: NodeAPI, type: string, action: string, run: Action<N>): void {
  answerRequestErrorsAsJson(RED);
  RED.httpAdmin.get(`/lane-vision/${type}/:id/${action}`, RED.auth.needsPermission(READ_PERMISSION), handler(RED, type, run));
}
