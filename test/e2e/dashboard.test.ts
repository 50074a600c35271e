/**
 * The Dashboard 2 example end to end: a real Node-RED process runs examples/dashboard-lane.json
 * as shipped (Dashboard 2 installed in its user directory, as a user would from the palette),
 * its camera replaying real photos of three products, on the real MobileNetV2-0.35 backbone.
 * A real Chromium opens /dashboard, presses the dashboard's *Train now* button, and the
 * widgets fill: counts per label, reject rate, confidence, frames/s, the last frame and the
 * model version, read from the DOM and from screenshots taken before and after.
 * Screenshots go to test-artifacts/dashboard/. Needs `npm run build` first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { classImages, groceryTrainDir, modelDir, YOGHURT_CLASSES } from '../support/shared.js';
import { freePort, nodesPackage, readExample, repoRoot, startNodeRedProcess, tempDir, waitForCondition, type RunningNodeRed } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'dashboard');
/** Three products, a few photos each: enough for a model, quick to capture at 3 frames/s. */
const PRODUCTS = YOGHURT_CLASSES.slice(0, 3);
const PHOTOS_PER_PRODUCT = 4;
/** Frames per product in the dataset before the test presses Train now (lane-train needs 2). */
const NEEDED_PER_PRODUCT = 3;
const DASHBOARD_PACKAGE = path.dirname(require.resolve('@flowfuse/node-red-dashboard/package.json'));

let work: string;
let nodeRed: RunningNodeRed | undefined;
let browser: Browser | undefined;

/** A folder per product with a few real photos (symlinks into shared/), for the example's folder camera. */
function photoFolder(dir: string): string {
  for (const product of PRODUCTS) {
    fs.mkdirSync(path.join(dir, product), { recursive: true });
    for (const photo of classImages(groceryTrainDir, product).slice(0, PHOTOS_PER_PRODUCT)) {
      fs.symlinkSync(photo, path.join(dir, product, path.basename(photo)));
    }
  }
  return dir;
}

async function startNodeRed(): Promise<RunningNodeRed> {
  const port = await freePort();
  const userDir = path.join(work, 'user');
  // Where Manage palette ▸ Install puts Dashboard 2 (Node-RED also finds the devDependency next to itself; the user directory's copy wins).
  fs.mkdirSync(path.join(userDir, 'node_modules', '@flowfuse'), { recursive: true });
  fs.symlinkSync(DASHBOARD_PACKAGE, path.join(userDir, 'node_modules', '@flowfuse', 'node-red-dashboard'), 'dir');
  return startNodeRedProcess({
    userDir,
    port,
    flows: readExample('dashboard-lane.json'),
    settings: {
      credentialSecret: false,
      nodesDir: [nodesPackage(path.join(work, 'nodes-package'), 'lane-vision-dashboard-e2e')],
      telemetry: { enabled: false },
      editorTheme: { projects: { enabled: false }, tours: false },
      logging: { console: { level: 'warn', metrics: false, audit: false } },
    },
    env: {
      ...process.env,
      LANE_VISION_BACKBONE: modelDir('mobilenet-v2-0.35-features'),
      LANE_VISION_FRAMES: photoFolder(path.join(work, 'photos')),
      // The test trains with the dashboard's button, not the example's timer.
      LANE_VISION_TRAIN_DELAY: '3600',
    },
  });
}

function waitFor<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  return waitForCondition(check, what, { log: () => nodeRed?.log, timeoutMs });
}

/** Frames the example's capture node stored per product (lane-dataset: a folder per label). */
function storedPerProduct(): number[] {
  const dataset = path.join(work, 'user', 'lane-vision-dashboard', 'dataset');
  return PRODUCTS.map((product) => {
    const dir = path.join(dataset, product);
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).length : 0;
  });
}

/** The example's first series colour (#2e7d32): bars and lines are drawn in it, axes and grid are grey. */
const SERIES_RGB = [0x2e, 0x7d, 0x32];

/** Pixels of a PNG in the series colour: what a chart draws for its data, and nothing else does inside a chart. */
async function seriesPixels(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  let count = 0;
  for (let i = 0; i < data.length; i += info.channels) {
    if (Math.abs(data[i] - SERIES_RGB[0]) + Math.abs(data[i + 1] - SERIES_RGB[1]) + Math.abs(data[i + 2] - SERIES_RGB[2]) < 40) count++;
  }
  return count;
}

/** Pixels that differ between two same-sized PNGs. */
async function differingPixels(a: Buffer, b: Buffer): Promise<number> {
  const [one, two] = await Promise.all([a, b].map((png) => sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true })));
  assert.deepEqual([one.info.width, one.info.height], [two.info.width, two.info.height], 'screenshots of one size');
  let differing = 0;
  for (let i = 0; i < one.data.length; i += one.info.channels) {
    if (Math.abs(one.data[i] - two.data[i]) + Math.abs(one.data[i + 1] - two.data[i + 1]) + Math.abs(one.data[i + 2] - two.data[i + 2]) > 30) differing++;
  }
  return differing;
}

before(async () => {
  work = tempDir('lane-dashboard-e2e-');
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  nodeRed = await startNodeRed();
  await waitFor(async () => ((await fetch(`${nodeRed!.url}/dashboard/`)).ok ? true : undefined), 'the dashboard to be served');
});

after(async () => {
  await browser?.close();
  await nodeRed?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the Dashboard 2 example shows live counts, reject rate, confidence, throughput, the last frame and the model after Train now', { skip: fs.existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM}` }, async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  try {
    await page.goto(`${nodeRed!.url}/dashboard/lane`);
    const trainButton = page.locator('.lane-train-button button');
    await trainButton.waitFor({ state: 'visible', timeout: 30_000 });
    const countsChart = page.locator('.lane-counts');
    await countsChart.waitFor({ state: 'visible' });
    // No model yet: classify skips the frames, so lane-stats has sent nothing.
    assert.equal((await page.locator('.lane-model').innerText()).includes('v1'), false);
    assert.equal(await page.locator('.lane-frame img').count(), 0, 'no frame before the first result');
    const countsBefore = await countsChart.screenshot();
    const throughputBefore = await page.locator('.lane-throughput').screenshot();
    const pageBefore = await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-before.png') });

    await waitFor(async () => (storedPerProduct().every((n) => n >= NEEDED_PER_PRODUCT) ? true : undefined), `${NEEDED_PER_PRODUCT} frames of each product captured`);
    await trainButton.click();

    // The widgets fill only from results of the model the button trained.
    await page.locator('.lane-model', { hasText: 'v1' }).waitFor({ timeout: 60_000 });
    const frameCount = async (): Promise<number> => Number(/(\d+)\s*$/.exec((await page.locator('.lane-total').innerText()).trim())?.[1] ?? 0);
    const firstCount = await waitFor(async () => ((await frameCount()) > 0 ? frameCount() : undefined), 'a frame count above 0');
    // Live: the next emissions count the frames classified since.
    await waitFor(async () => ((await frameCount()) > firstCount ? true : undefined), `the frame count to grow past ${firstCount}`);
    const frame = page.locator('.lane-frame img');
    await frame.waitFor({ state: 'visible' });
    await page.waitForFunction(() => {
      const img = document.querySelector('.lane-frame img') as HTMLImageElement | null;
      return img !== null && img.complete && img.naturalWidth > 0;
    });
    assert.match((await frame.getAttribute('src')) ?? '', /^data:image\/jpeg;base64,/);
    const caption = await page.locator('.lane-frame p').innerText();
    assert.ok([...PRODUCTS, 'unknown'].some((label) => caption.includes(label)), `the frame's label in "${caption}"`);
    // Gauges print their value in percent: a model's mean confidence is above 0; a reject rate is some percentage.
    const gaugeValue = async (selector: string): Promise<number> => Number(/(\d+(?:\.\d+)?)%/.exec(await page.locator(selector).innerText())?.[1]);
    await waitFor(async () => ((await gaugeValue('.lane-confidence')) > 0 ? true : undefined), 'a confidence above 0 %');
    const rejectRate = await gaugeValue('.lane-reject');
    assert.ok(rejectRate >= 0 && rejectRate <= 100, `reject rate ${rejectRate} %`);

    // Screenshots: the charts draw their data in the series colour, which was nowhere in them before.
    const throughputChart = page.locator('.lane-throughput');
    assert.equal(await seriesPixels(countsBefore), 0, 'no bars before data');
    assert.equal(await seriesPixels(throughputBefore), 0, 'no line before data');
    const countsAfter = await countsChart.screenshot({ path: path.join(ARTIFACTS, 'counts-chart.png') });
    assert.ok((await seriesPixels(countsAfter)) > 1000, 'the counts chart shows bars');
    // A line needs two points: wait for the next emission rather than for time.
    const throughputAfter = await waitFor(async () => {
      const shot = await throughputChart.screenshot();
      return (await seriesPixels(shot)) > 100 ? shot : undefined;
    }, 'the throughput chart to draw a line');
    fs.writeFileSync(path.join(ARTIFACTS, 'throughput-chart.png'), throughputAfter);
    const pageAfter = await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-live.png') });
    const changed = await differingPixels(pageBefore, pageAfter);
    assert.ok(changed > 20_000, `the dashboard looks different with data: ${changed} pixels changed`);
    assert.deepEqual(problems, []);
  } catch (err) {
    if (err instanceof Error) err.message += `\nNode-RED output:\n${nodeRed?.log.slice(-30).join('\n')}`;
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failed.png') }).catch(() => undefined);
    throw err;
  }
});
