/**
 * Who may send a state-changing request to the plugin's admin routes (the console's writes,
 * the editor's camera and train buttons): a page of this server. Without adminAuth any web
 * page the operator visits could otherwise POST to them (Node-RED's admin API answers CORS
 * for any origin), e.g. stop the camera or start a training.
 */
import { HttpError } from './http-error.js';

export { HttpError };

/**
 * The header every write must carry. A cross-site form cannot set it; a cross-site fetch
 * can after a CORS preflight (Node-RED's admin API grants any), but then it carries an
 * Origin header, which must name this server.
 */
export const CSRF_HEADER = 'x-lane-vision';

export interface OriginHeaders {
  host?: string;
  /** Set by a reverse proxy that rewrites Host; a browser cannot set it on a cross-site request without a preflight. */
  'x-forwarded-host'?: string;
  origin?: string;
  'sec-fetch-site'?: string;
  [CSRF_HEADER]?: string;
}

/**
 * Refuses (403) a write that does not come from a page of this server: the custom header
 * must be there, and when the browser says where the request comes from (Origin,
 * Sec-Fetch-Site), it must be this host.
 */
export function checkSameOrigin(headers: OriginHeaders): void {
  if (headers[CSRF_HEADER] !== '1') {
    throw new HttpError(403, 'Refused: writes must carry the header "X-Lane-Vision: 1" (the console page and the editor buttons send it).');
  }
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    throw new HttpError(403, `Refused: the request comes from another site (Sec-Fetch-Site: ${site}).`);
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    const hosts = [headers.host, ...(headers['x-forwarded-host']?.split(',') ?? [])].filter((h): h is string => !!h).map((h) => h.trim().toLowerCase());
    if (!originHost || !hosts.includes(originHost.toLowerCase())) {
      throw new HttpError(403, `Refused: the request comes from ${origin}, not from this server (${headers.host ?? 'unknown host'}).`);
    }
  }
}

