/**
 * The operator console end to end: a real Node-RED process (adminAuth and httpNodeAuth
 * on) runs a synthetic lane (lane-source -> lane-classify -> lane-console, the camera also
 * wired straight to the console), and a real Chromium is the operator: it labels frames by
 * clicking, trains, reads the confusion matrix, promotes, trains again and rolls back.
 * Screenshots go to test-artifacts/console/. Needs `npm run build` first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { modelDir } from '../support/shared.js';
import { freePort, nodesPackage, repoRoot, startNodeRedProcess, tempDir, waitForCondition, type RunningNodeRed } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const CONSOLE_PATH = '/lane-vision/console';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'console');
const USERS = {
  admin: { password: 'admin-pass-1', permissions: '*' },
  viewer: { password: 'viewer-pass-1', permissions: 'read' },
} as const;
const NODE_AUTH = { user: 'operator', pass: 'lane-pass-1' };
const FLAVOURS = ['strawberry', 'blueberry'];
/** Frames stored per flavour from the page: 4 to train on, 1 held out. */
const PER_FLAVOUR = 5;

// bcryptjs ships with node-red (adminAuth passwords are bcrypt hashes).
const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red/package.json'))] })) as {
  hashSync(text: string, rounds: number): string;
};

let work: string;
let nodeRed: RunningNodeRed;
const basic = 'Basic ' + Buffer.from(`${NODE_AUTH.user}:${NODE_AUTH.pass}`).toString('base64');

function flow(): object[] {
  return [
    // Nodes without x/y would be taken for config nodes.
    { id: 'lane', type: 'tab', label: 'lane' },
    { id: 'bb', type: 'lane-backbone', z: 'lane', name: '', source: modelDir('mobilenet-v2-0.35-features'), featureLayer: '', fit: 'cover', backend: 'auto' },
    { id: 'ds', type: 'lane-dataset', z: 'lane', name: '', folder: path.join(work, 'dataset'), modelsFolder: path.join(work, 'models'), maxPerLabel: 0, whenFull: 'refuse' },
    { id: 'camera', type: 'lane-source', z: 'lane', name: 'camera', mode: 'synthetic', flavours: FLAVOURS, seed: 7, rate: 3, autostart: true, x: 120, y: 80, wires: [['classify', 'console']] },
    // A demanding threshold, so some frames come out unsure and queue for labelling.
    { id: 'classify', type: 'lane-classify', z: 'lane', name: '', backbone: 'bb', dataset: 'ds', mode: 'trained', threshold: 0.995, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], x: 320, y: 80, wires: [['console']] },
    // Before the first model every frame fails in classify: caught here, so the log stays readable.
    { id: 'no-model', type: 'catch', z: 'lane', scope: ['classify'], uncaught: false, x: 320, y: 160, wires: [[]] },
    { id: 'console', type: 'lane-console', z: 'lane', name: 'Yoghurt lane', backbone: 'bb', dataset: 'ds', path: CONSOLE_PATH, frames: 40, rejects: 20, windowMinutes: 10, x: 520, y: 80, wires: [] },
  ];
}

async function startNodeRed(): Promise<RunningNodeRed> {
  const port = await freePort();
  return startNodeRedProcess({
    userDir: path.join(work, 'user'),
    port,
    flows: flow(),
    settings: {
      credentialSecret: false,
      nodesDir: [nodesPackage(path.join(work, 'nodes-package'), 'lane-vision-console-e2e')],
      adminAuth: {
        type: 'credentials',
        users: Object.entries(USERS).map(([username, u]) => ({ username, password: bcrypt.hashSync(u.password, 4), permissions: u.permissions })),
      },
      httpNodeAuth: { user: NODE_AUTH.user, pass: bcrypt.hashSync(NODE_AUTH.pass, 4) },
      telemetry: { enabled: false },
      editorTheme: { projects: { enabled: false }, tours: false },
      logging: { console: { level: 'warn', metrics: false, audit: false } },
    },
  });
}

function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  return waitForCondition(check, what, { log: () => nodeRed?.log, timeoutMs });
}

async function token(username: keyof typeof USERS): Promise<string> {
  const res = await fetch(`${nodeRed.url}/auth/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_id: 'node-red-admin', grant_type: 'password', scope: USERS[username].permissions, username, password: USERS[username].password }),
  });
  assert.equal(res.status, 200, `token for ${username}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

function write(action: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(`${nodeRed.url}/lane-vision/lane-console/console/${action}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

before(async () => {
  work = tempDir('lane-console-e2e-');
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  nodeRed = await startNodeRed();
  // Up when the console answers (reads need the httpNodeAuth user) and its backbone is loaded.
  await waitFor(async () => {
    const res = await fetch(`${nodeRed.url}${CONSOLE_PATH}/api/state`, { headers: { Authorization: basic } });
    if (!res.ok) return undefined;
    const state = (await res.json()) as { backbone: { state: string; message?: string } };
    if (state.backbone.state === 'error') throw new Error(state.backbone.message);
    return state.backbone.state === 'ready' ? true : undefined;
  }, 'the console and its backbone');
});

after(async () => {
  await nodeRed?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('reads need the httpNodeAuth user; writes need lane-vision.write, the custom header and the same origin', async () => {
  const page = await fetch(`${nodeRed.url}${CONSOLE_PATH}/`);
  assert.equal(page.status, 401, 'httpNodeAuth guards the page');
  const events = await fetch(`${nodeRed.url}${CONSOLE_PATH}/api/state`);
  assert.equal(events.status, 401, 'and what it reads');
  const served = await fetch(`${nodeRed.url}${CONSOLE_PATH}/`, { headers: { Authorization: basic } });
  assert.equal(served.status, 200);
  assert.match(served.headers.get('content-security-policy') ?? '', /default-src 'self'/);

  const header = { 'X-Lane-Vision': '1' };
  assert.equal((await write('stop-capture', {}, header)).status, 401, 'no token: refused');
  const viewer = await token('viewer');
  assert.equal((await write('stop-capture', {}, { ...header, Authorization: `Bearer ${viewer}` })).status, 401, 'read-only user: refused');

  const admin = await token('admin');
  const auth = { Authorization: `Bearer ${admin}` };
  const noHeader = await write('stop-capture', {}, auth);
  assert.equal(noHeader.status, 403);
  assert.match(((await noHeader.json()) as { error: string }).error, /X-Lane-Vision/);
  const crossSite = await write('stop-capture', {}, { ...auth, ...header, Origin: 'http://evil.example' });
  assert.equal(crossSite.status, 403);
  const fetchedCrossSite = await write('stop-capture', {}, { ...auth, ...header, 'Sec-Fetch-Site': 'cross-site' });
  assert.equal(fetchedCrossSite.status, 403);
  const ok = await write('stop-capture', {}, { ...auth, ...header, Origin: nodeRed.url, 'Sec-Fetch-Site': 'same-origin' });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { stopped: false });
  // The editor's camera button is guarded the same way, adminAuth or not.
  const toggle = (headers: Record<string, string>) =>
    fetch(`${nodeRed.url}/lane-vision/lane-source/camera/toggle`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: '{}' });
  assert.equal((await toggle(header)).status, 401, 'camera: no token');
  assert.equal((await toggle({ ...auth, Origin: 'http://evil.example' })).status, 403, 'camera: cross-site without the header');
  assert.equal((await toggle({ ...auth, ...header, Origin: 'http://evil.example' })).status, 403, 'camera: cross-site with the header');
  const stopped = await toggle({ ...auth, ...header, Origin: nodeRed.url });
  assert.equal(stopped.status, 200);
  assert.equal(((await stopped.json()) as { running: boolean }).running, false);
  const restarted = await toggle({ ...auth, ...header });
  assert.equal(((await restarted.json()) as { running: boolean }).running, true, 'the camera runs again for the tests below');
  const tooEarly = await write('train', {}, { ...auth, ...header });
  assert.equal(tooEarly.status, 409, 'nothing to train on yet');
  assert.match(((await tooEarly.json()) as { error: string }).error, /at least 2 labels/);
});

// #region the operator in Chromium

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function openSection(page: Page, name: string): Promise<void> {
  await page.click(`#tab-${name}`);
  await page.locator(`#${name}`).waitFor({ state: 'visible' });
}

/**
 * Selects `count` recent frames the source says show `flavour` (and not stored yet), then
 * clicks its label (or types it as a new one); the label then holds `total` frames.
 */
async function teachFlavour(page: Page, flavour: string, count: number, total: number, isNew: boolean): Promise<void> {
  const tiles = page.locator(`#teach-frames .tile[data-truth="${flavour}"]:not([data-stored])`);
  await waitFor(async () => ((await tiles.count()) >= count ? true : undefined), `${count} ${flavour} frames on the page`);
  const ids = await tiles.evaluateAll((els, n) => els.slice(0, n).map((el) => (el as HTMLElement).dataset.frame!), count);
  for (const id of ids) await page.click(`#teach-frames .tile[data-frame="${id}"]`);
  // The page redraws on the next animation frame.
  await page.waitForFunction((n) => document.querySelectorAll('#teach-frames .tile.selected').length === n, count);
  const selected = await page.locator('#teach-frames .tile.selected').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.frame));
  assert.deepEqual(selected.sort(), [...ids].sort(), 'the clicked frames, held still while picking');
  if (isNew) {
    await page.fill('#teach-new-label', flavour);
    await page.click('#teach-new button[type="submit"]');
  } else {
    await page.click(`#teach-labels .label-button[data-label="${flavour}"]`);
  }
  await page.locator(`#teach-labels .label-button[data-label="${flavour}"] .label-count`).filter({ hasText: new RegExp(`^${total}$`) }).waitFor();
  await page.locator(`#gallery .gallery-card[data-label="${flavour}"] .thumb`).nth(total - 1).waitFor();
  assert.equal(await page.locator(`#teach-frames .tile[data-stored="${flavour}"]`).count() >= count, true, 'taught frames are marked as stored');
}

async function trainAndWait(page: Page, version: number): Promise<void> {
  await openSection(page, 'train');
  await page.click('#train-start');
  await page.locator('#train-result-title', { hasText: `New model v${version}` }).waitFor({ timeout: 60_000 });
}

test('an operator teaches two flavours by clicking, trains, promotes and rolls back', { skip: fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, async () => {
  const admin = await token('admin');
  const context: BrowserContext = await chromium.launchPersistentContext(tempDir('lane-console-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1360, height: 900 },
    httpCredentials: { username: NODE_AUTH.user, password: NODE_AUTH.pass },
  });
  const problems: string[] = [];
  try {
    // What the editor leaves behind after logging in as admin at the same address.
    await context.addInitScript((accessToken) => {
      localStorage.setItem('auth-tokens', JSON.stringify({ access_token: accessToken, expires_in: 604800, token_type: 'Bearer' }));
    }, admin);
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    // A frame image replaced by a newer one before it loaded is aborted by the browser: not a problem.
    page.on('requestfailed', (req) => {
      if (req.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`);
    });

    await page.goto(`${nodeRed.url}${CONSOLE_PATH}`);
    assert.ok(page.url().endsWith(`${CONSOLE_PATH}/`), 'redirected to the trailing slash');
    await page.locator('#conn[data-status="live"]').waitFor();
    await page.locator('#live-strip .tile').nth(5).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#console-name').textContent(), 'Yoghurt lane');
    // The verdict appears with its frame's image, once that has loaded.
    await page.locator('#live-verdict', { hasText: 'not classified' }).waitFor();
    await shoot(page, '1-live-before-training');

    // Teach: select frames, click the label.
    await openSection(page, 'teach');
    await teachFlavour(page, FLAVOURS[0], PER_FLAVOUR, PER_FLAVOUR, true);
    await teachFlavour(page, FLAVOURS[1], PER_FLAVOUR, PER_FLAVOUR, true);
    const buttonColours = await page.locator('#teach-labels .label-button').evaluateAll((els) => els.map((el) => getComputedStyle(el).backgroundColor));
    assert.equal(new Set(buttonColours).size, FLAVOURS.length, `a colour per label: ${buttonColours}`);
    await shoot(page, '2-teach');

    // Train: progress, then the new model's hold-out figures.
    await trainAndWait(page, 1);
    const cells = await page.locator('#train-confusion tbody td').allTextContents();
    assert.equal(cells.length, FLAVOURS.length ** 2, 'a 2 x 2 confusion matrix');
    const held = cells.map(Number).reduce((a, b) => a + b, 0);
    assert.equal(held, FLAVOURS.length * PER_FLAVOUR, 'every taught frame scored once, by a model that did not train on its capture group');
    assert.equal(await page.locator('#train-perclass tbody tr').count(), FLAVOURS.length);
    assert.match((await page.locator('#train-compare').textContent()) ?? '', /new v1/);
    assert.ok((await page.locator('#train-curve polyline').count()) === 2, 'loss and accuracy curves');
    await shoot(page, '3-train-result');

    // Promote: the lane uses v1, classified frames show up live.
    await page.click('#train-promote');
    await page.locator('#vital-model', { hasText: 'model v1' }).waitFor();
    await openSection(page, 'live');
    await page.locator('#live-strip .tile .badge').first().waitFor({ timeout: 20_000 });
    // The large view follows once the classified frame's image has loaded.
    const verdict = (await page.locator('#live-verdict .big-label:not(.muted)').textContent({ timeout: 20_000 })) ?? '';
    assert.ok([...FLAVOURS, 'unknown'].includes(verdict), `a decided label, got ${verdict}`);
    await page.locator('#live-counts .count-row').first().waitFor({ timeout: 5_000 });
    await shoot(page, '4-live-with-model');

    // Similar: click the latest frame.
    await page.click('#live-current');
    await page.locator('#similar-grid .neighbour').first().waitFor({ timeout: 20_000 });
    const neighbourLabels = await page.locator('#similar-grid .neighbour').evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.label));
    assert.ok(neighbourLabels.length >= 5 && neighbourLabels.every((l) => FLAVOURS.includes(l!)), `stored frames with their labels: ${neighbourLabels}`);
    await shoot(page, '5-similar');

    // An unsure frame, labelled from its queue.
    await openSection(page, 'teach');
    const unsure = page.locator('#teach-rejects .tile[data-truth]');
    // The lane shows every flavour, trained or not: one the model turns away comes within a few dozen frames.
    await unsure.first().waitFor({ timeout: 60_000 });
    await shoot(page, '6-teach-unsure');
    const [frameId, truth] = await unsure.first().evaluate((el) => [(el as HTMLElement).dataset.frame!, (el as HTMLElement).dataset.truth!]);
    const before = Number(await page.locator(`#teach-labels .label-button[data-label="${truth}"] .label-count`).textContent());
    await page.click(`#teach-rejects .tile[data-frame="${frameId}"]`);
    await page.click(`#teach-labels .label-button[data-label="${truth}"]`);
    await page.locator(`#teach-labels .label-button[data-label="${truth}"] .label-count`).filter({ hasText: new RegExp(`^${before + 1}$`) }).waitFor();
    await page.locator(`#teach-rejects .tile[data-frame="${frameId}"]`).waitFor({ state: 'detached' });

    // A second version, promoted from the Models list, then one click back.
    await teachFlavour(page, FLAVOURS[1], 3, (FLAVOURS[1] === truth ? before + 1 : PER_FLAVOUR) + 3, false);
    await trainAndWait(page, 2);
    assert.match((await page.locator('#train-compare thead').textContent()) ?? '', /in use v1/, 'compared with the model in use');
    await page.locator('#train-confusion-inuse[data-version="1"]').waitFor();
    await shoot(page, '7-train-compared');
    await openSection(page, 'models');
    await page.click('#models-body tr[data-version="2"] button');
    await page.locator('#models-body tr.active[data-version="2"]').waitFor();
    await page.locator('#vital-model', { hasText: 'model v2' }).waitFor();
    await page.click('#models-rollback');
    await page.locator('#models-body tr.active[data-version="1"]').waitFor();
    await page.locator('#vital-model', { hasText: 'model v1' }).waitFor();
    assert.equal(await page.locator('#models-body tr').count(), 2);
    await shoot(page, '8-models-after-rollback');

    // The classify node follows the rollback without a redeploy.
    await openSection(page, 'live');
    await page.locator('#live-verdict .meta', { hasText: 'model v1' }).waitFor({ timeout: 20_000 });

    assert.deepEqual(problems, [], 'no script errors, CSP violations or failed requests');

    // The editor (logged in with the same token): the node's dialog links to the page.
    await page.goto(`${nodeRed.url}/`);
    await page.waitForFunction(() => (window as any).RED?.nodes?.node?.('console') !== undefined, undefined, { timeout: 30_000 });
    await page.evaluate(() => (window as any).RED.editor.edit((window as any).RED.nodes.node('console')));
    const link = page.locator('#lane-console-open');
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), `${CONSOLE_PATH}/`);
    await page.fill('#node-input-path', 'lanes/two');
    assert.equal(await link.getAttribute('href'), '/lanes/two/', 'the link follows the path being edited');
    await shoot(page, '9-editor-dialog');
  } catch (err) {
    await shoot(context.pages()[0], 'failure').catch(() => undefined);
    throw new Error(`${(err as Error).message}\npage problems: ${problems.join('\n') || 'none'}\nNode-RED: ${nodeRed.log.slice(-15).join('\n')}`);
  } finally {
    await context.close();
  }
});

// #endregion

// #region live view: image and verdict of one frame

interface FrameEvent {
  id: number;
  classified: boolean;
  label?: string;
}

/** The console's event stream as the page gets it, read here: frame id -> the runtime's latest view of it. */
function watchFrames(): { views: Map<number, FrameEvent>; stop(): void } {
  const views = new Map<number, FrameEvent>();
  const controller = new AbortController();
  (async () => {
    const res = await fetch(`${nodeRed.url}${CONSOLE_PATH}/events`, { headers: { Authorization: basic, Accept: 'text/event-stream' }, signal: controller.signal });
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data) continue;
        if (event === 'frame') views.set((JSON.parse(data) as FrameEvent).id, JSON.parse(data) as FrameEvent);
        if (event === 'state') for (const view of (JSON.parse(data) as { frames: FrameEvent[] }).frames) views.set(view.id, view);
      }
    }
  })().catch(() => undefined); // ended by stop()
  return { views, stop: () => controller.abort() };
}

test('the Live image and its verdict belong to one frame, for 50 successive classified frames', { skip: fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, async () => {
  const FRAMES_WANTED = 50;
  const stream = watchFrames();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  try {
    const context = await browser.newContext({ httpCredentials: { username: NODE_AUTH.user, password: NODE_AUTH.pass } });
    const page = await context.newPage();
    await page.goto(`${nodeRed.url}${CONSOLE_PATH}/#live`);
    await page.locator('#conn[data-status="live"]').waitFor();
    // Every change of the large view, seen right after the script that made it (before the next paint).
    // A script text: tsx would wrap a named function in helpers the page does not have.
    await page.evaluate(`
      window.seen = [];
      new MutationObserver(() => {
        const img = document.querySelector('#live-current');
        const verdict = document.querySelector('#live-verdict');
        if (!verdict.dataset.frameId) return;
        window.seen.push({
          imageFrame: img.dataset.frameId,
          imageUrlFrame: /frames\\/(\\d+)\\.jpg/.exec(img.currentSrc)?.[1],
          imageLoaded: img.complete && img.naturalWidth > 0,
          verdictFrame: verdict.dataset.frameId,
          label: verdict.querySelector('.big-label:not(.muted)')?.textContent ?? null,
        });
      }).observe(document.querySelector('#live-current-wrap'), { subtree: true, childList: true, attributes: true, characterData: true });
    `);
    await page.waitForFunction(
      (wanted) => new Set((window as unknown as { seen: { verdictFrame: string; label: string | null }[] }).seen.filter((s) => s.label !== null).map((s) => s.verdictFrame)).size >= wanted,
      FRAMES_WANTED,
      { timeout: 90_000 },
    );
    const seen = (await page.evaluate(() => (window as unknown as { seen: unknown[] }).seen)) as {
      imageFrame: string;
      imageUrlFrame: string;
      imageLoaded: boolean;
      verdictFrame: string;
      label: string | null;
    }[];
    const shownIds = seen.filter((s) => s.label !== null).map((s) => Number(s.verdictFrame));
    await waitFor(async () => (shownIds.every((id) => stream.views.get(id)?.classified) ? true : undefined), 'the runtime\'s results of the frames shown');
    let previous = 0;
    const classified = new Set<string>();
    for (const [i, s] of seen.entries()) {
      assert.equal(s.imageFrame, s.verdictFrame, `change ${i}: the image shown is of the verdict's frame`);
      assert.equal(s.imageUrlFrame, s.verdictFrame, `change ${i}: the image's URL is of the verdict's frame`);
      assert.ok(s.imageLoaded, `change ${i}: the frame's image had loaded when its verdict appeared`);
      assert.ok(Number(s.verdictFrame) >= previous, `change ${i}: never back to an older frame`);
      previous = Number(s.verdictFrame);
      if (s.label === null) continue;
      classified.add(s.verdictFrame);
      // What the runtime decided for that frame (its frame store, over the event stream).
      const view = stream.views.get(Number(s.verdictFrame));
      assert.ok(view?.classified, `frame ${s.verdictFrame} was classified by the runtime`);
      assert.equal(s.label, view.label, `frame ${s.verdictFrame}: the label shown is the runtime's`);
    }
    assert.ok(classified.size >= FRAMES_WANTED, `${classified.size} classified frames shown`);
  } finally {
    stream.stop();
    await browser.close();
  }
});

// #endregion

// #region similar frames

test('Similar shows how alike the stored frames are (not a confidence) and labels the frame asked about from one of them', { skip: fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, async () => {
  const admin = await token('admin');
  const context = await chromium.launchPersistentContext(tempDir('lane-console-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    httpCredentials: { username: NODE_AUTH.user, password: NODE_AUTH.pass },
  });
  const state = async () =>
    (await (await fetch(`${nodeRed.url}${CONSOLE_PATH}/api/state`, { headers: { Authorization: basic } })).json()) as {
      dataset: { counts: Record<string, number> };
      frames: { id: number; stored?: string }[];
    };
  try {
    await context.addInitScript((accessToken) => {
      localStorage.setItem('auth-tokens', JSON.stringify({ access_token: accessToken, expires_in: 604800, token_type: 'Bearer' }));
    }, admin);
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${nodeRed.url}${CONSOLE_PATH}/#live`);
    await page.locator('#live-current[data-frame-id]').waitFor();
    await page.click('#live-current');
    const neighbours = page.locator('#similar-grid .neighbour');
    await neighbours.first().waitFor({ timeout: 20_000 });
    // The frame clicked (the live view moves on three times a second, so read it here).
    const frameId = Number(await page.locator('#similar-query').getAttribute('data-frame-id'));
    const shown = await page.locator('#similar-grid .neighbour .similarity').allTextContents();
    assert.ok(shown.length >= 5);
    for (const text of shown) assert.match(text, /^similarity -?[01]\.\d\d$/, `a similarity, not a percentage: ${text}`);
    assert.match((await page.locator('#similar-summary').textContent()) ?? '', /not a confidence/);
    await shoot(page, '10-similar-label-as');

    const label = (await neighbours.first().getAttribute('data-label'))!;
    const before = (await state()).dataset.counts[label];
    const button = neighbours.first().locator('.label-as');
    assert.equal(await button.textContent(), `label as ${label}`);
    await button.click();
    const after = await waitFor(async () => {
      const now = await state();
      return now.dataset.counts[label] === before + 1 ? now : undefined;
    }, `one more "${label}" frame`);
    assert.equal(after.frames.find((f) => f.id === frameId)?.stored, label, 'the frame asked about is the one stored, under the label chosen');
    await page.locator('#similar-grid .label-as:disabled').first().waitFor();
  } finally {
    await context.close();
  }
});

// #endregion
