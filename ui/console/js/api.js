// Talking to the runtime: reads and the event stream below the page's own path (httpNode,
// guarded by httpNodeAuth), writes to the editor's admin API (adminAuth).

let nodeId = null;
let adminRoot = null;

export function configure(state) {
  nodeId = state.node.id;
  adminRoot = state.adminRoot;
}

export const canWrite = () => adminRoot !== null;

/**
 * The Node-RED editor keeps its access token in localStorage under "auth-tokens" plus a
 * suffix made from its path ("/" -> "", "/admin/" -> "-admin"). The page is on the same
 * origin, so it can send the same token the editor sends.
 */
function editorToken() {
  if (adminRoot === null) return null;
  const key = 'auth-tokens' + adminRoot.slice(0, -1).replace(/\//g, '-');
  try {
    const tokens = JSON.parse(localStorage.getItem(key) || 'null');
    return tokens && typeof tokens.access_token === 'string' ? tokens.access_token : null;
  } catch {
    return null;
  }
}

export async function read(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

export async function write(action, body = {}) {
  if (adminRoot === null) throw new Error('Changes are switched off: this Node-RED runs without its admin API (httpAdminRoot: false).');
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json', 'X-Lane-Vision': '1' };
  const token = editorToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${adminRoot}lane-vision/lane-console/${encodeURIComponent(nodeId)}/${action}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const reply = await res.json().catch(() => ({}));
  if (res.status === 401) {
    throw new Error(
      token
        ? 'Not allowed: your Node-RED user may only watch. Log in to the editor as a user who may change the lane.'
        : 'Not allowed: log in to the Node-RED editor in this browser (same address), then try again.',
    );
  }
  if (!res.ok) throw new Error(reply.error || `${res.status} ${res.statusText}`);
  return reply;
}

/** The one event stream; `handlers[event](data)` for each event, `onStatus('live'|'connecting')`. */
export function connect(handlers, onStatus) {
  const source = new EventSource('events');
  onStatus('connecting');
  source.addEventListener('open', () => onStatus('live'));
  source.addEventListener('error', () => onStatus(source.readyState === EventSource.CLOSED ? 'offline' : 'connecting'));
  for (const [event, handle] of Object.entries(handlers)) {
    source.addEventListener(event, (e) => handle(JSON.parse(e.data)));
  }
  return source;
}
