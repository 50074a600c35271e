/**
 * Admin endpoints the editor calls (train button, dataset counts, ...), all under
 * `/lane-vision/<type>/:id/<action>` and guarded by Node-RED permissions, following the
 * core inject node: 404 when the node is not deployed, 500 on failure, 200 with JSON.
 */
import type { NodeAPI, Node } from 'node-red';
import type { Request, Response } from 'express';
import { errorText } from './status.js';

export const READ_PERMISSION = 'lane-vision.read';
export const WRITE_PERMISSION = 'lane-vision.write';

type Action<N extends Node> = (node: N, body: unknown) => Promise<unknown> | unknown;

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
      res.status(500).json({ error: errorText(err) });
    }
  };
}

/** POST /lane-vision/<type>/:id/<action>, needs lane-vision.write. */
export function registerWriteAction<N extends Node>(RED: NodeAPI, type: string, action: string, run: Action<N>): void {
  RED.httpAdmin.post(`/lane-vision/${type}/:id/${action}`, RED.auth.needsPermission(WRITE_PERMISSION), handler(RED, type, run));
}

/** GET /lane-vision/<type>/:id/<action>, needs lane-vision.read. */
export function registerReadAction<N extends Node>(RED: NodeAPI, type: string, action: string, run: Action<N>): void {
  RED.httpAdmin.get(`/lane-vision/${type}/:id/${action}`, RED.auth.needsPermission(READ_PERMISSION), handler(RED, type, run));
}
