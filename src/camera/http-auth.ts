/**
 * HTTP basic and digest authentication (RFC 7617, RFC 7616) for camera URLs. The scheme is
 * the one the camera asks for in its 401 challenge, so a password is never sent in clear to a
 * camera that wants digest. A digest nonce is reused with a growing nonce count, so polling a
 * snapshot costs one request per frame, not two.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface Credentials {
  user: string;
  password: string;
}

type Challenge = { scheme: 'basic' } | { scheme: 'digest'; params: Record<string, string> };

/** The challenges of a WWW-Authenticate header; the strongest usable one comes first. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const text = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const found: Challenge[] = [];
  // Split before each scheme name ("Digest realm=..., Basic realm=...").
  for (const part of text.split(/,?\s*(?=\b(?:basic|digest)\s)/i)) {
    const scheme = /^\s*(basic|digest)\b/i.exec(part)?.[1]?.toLowerCase();
    if (scheme === 'basic') found.push({ scheme: 'basic' });
    if (scheme === 'digest') {
      const params: Record<string, string> = {};
      for (const match of part.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g)) {
        params[match[1].toLowerCase()] = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : match[3];
      }
      found.push({ scheme: 'digest', params });
    }
  }
  return found.sort((a, b) => (a.scheme === b.scheme ? 0 : a.scheme === 'digest' ? -1 : 1));
}

/** Computes Authorization headers for one camera; `challenge` is called with each 401 answer. */
export class HttpAuthenticator {
  private challenge: Challenge | undefined;
  private nonceCount = 0;

  constructor(private readonly credentials: Credentials) {}

  /** Takes a 401's WWW-Authenticate; false when it offers no scheme this client speaks. */
  accept(header: string | string[] | undefined): boolean {
    const [best] = parseChallenges(header).filter((c) => c.scheme === 'basic' || digestHash(c.params.algorithm) !== undefined);
    if (!best) return false;
    this.challenge = best;
    this.nonceCount = 0;
    return true;
  }

  get scheme(): 'basic' | 'digest' | undefined {
    return this.challenge?.scheme;
  }

  /** The Authorization header for a request, once a challenge was accepted. */
  header(method: string, uri: string): string | undefined {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    const { user, password } = this.credentials;
    if (challenge.scheme === 'basic') return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
    const p = challenge.params;
    const algorithm = p.algorithm ?? 'MD5';
    const hash = digestHash(algorithm)!;
    const qop = p.qop
      ?.split(',')
      .map((q) => q.trim())
      .find((q) => q === 'auth');
    const cnonce = randomBytes(8).toString('hex');
    const nc = (++this.nonceCount).toString(16).padStart(8, '0');
    let ha1 = hash(`${user}:${p.realm ?? ''}:${password}`);
    if (/-sess$/i.test(algorithm)) ha1 = hash(`${ha1}:${p.nonce}:${cnonce}`);
    const ha2 = hash(`${method}:${uri}`);
    const response = qop ? hash(`${ha1}:${p.nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : hash(`${ha1}:${p.nonce}:${ha2}`);
    const fields = [
      `username="${quote(user)}"`,
      `realm="${quote(p.realm ?? '')}"`,
      `nonce="${quote(p.nonce ?? '')}"`,
      `uri="${quote(uri)}"`,
      `algorithm=${algorithm}`,
      `response="${response}"`,
      ...(qop ? [`qop=${qop}`, `nc=${nc}`, `cnonce="${cnonce}"`] : []),
      ...(p.opaque !== undefined ? [`opaque="${quote(p.opaque)}"`] : []),
    ];
    return `Digest ${fields.join(', ')}`;
  }
}

function digestHash(algorithm: string | undefined): ((text: string) => string) | undefined {
  const name = (algorithm ?? 'MD5').replace(/-sess$/i, '').toUpperCase();
  const node = name === 'MD5' ? 'md5' : name === 'SHA-256' ? 'sha256' : name === 'SHA-512-256' ? 'sha512-256' : undefined;
  return node ? (text) => createHash(node).update(text, 'utf8').digest('hex') : undefined;
}

function quote(text: string): string {
  return text.replace(/(["\\])/g, '\\$1');
}
