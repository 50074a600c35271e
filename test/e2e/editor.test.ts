/**
 * The demo seen in the Node-RED editor by a real Chromium: the deployed yoghurt lane and the
 * imported ImageNet, camera and dashboard examples have no node the editor marks invalid (so Deploy does not warn),
 * the palette has the lane nodes, and the page raises no script error. Screenshots go to
 * test-artifacts/demo/. Needs `npm run build` first and Chromium (CI installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';
import { demoOptionsFrom, startDemo, type RunningDemo } from '../../scripts/start-demo.js';
import { modelDir } from '../support/shared.js';
import { freePort, packageNodeTypes, readExample, repoRoot, tempDir } from './support.js';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'demo');
const skip = fs.existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN): editor test skipped.`;

interface EditorNode {
  id: string;
  type: string;
  valid: boolean;
  errors: unknown;
}

test('the editor shows the demo flow and the imported ImageNet example with every node valid', { skip, timeout: 90_000 }, async () => {
  const httpPort = await freePort();
  let mqttPort = await freePort();
  while (mqttPort === httpPort) mqttPort = await freePort();
  const userDir = tempDir('lane-vision-e2e-editor-');
  let demo: RunningDemo | undefined;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    demo = await startDemo({
      ...demoOptionsFrom({ PORT: String(httpPort), LANE_VISION_MQTT_PORT: String(mqttPort), LANE_VISION_DEMO_DIR: userDir, LANE_VISION_BACKBONE: modelDir('mobilenet-v2-0.35-features') }, [], repoRoot),
      output: 'pipe',
      // No training while the editor is looked at.
      extraEnv: { LANE_VISION_TRAIN_DELAY: '600', LANE_VISION_IMAGENET_BACKBONE: modelDir('mobilenet-v2-1.0-imagenet') },
    });
    await demo.ready;
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    await page.goto(demo.editorUrl);
    const example = readExample('yoghurt-lane.json');
    const expected = example.filter((node) => node.type !== 'tab' && !['lane-backbone', 'lane-dataset', 'lane-broker'].includes(node.type)).length;
    await page.waitForFunction(`(() => {
      let seen = 0;
      try { RED.nodes.eachNode(() => { seen++; }); } catch { return false; }
      return seen === ${expected};
    })()`, undefined, { timeout: 30_000 });

    // Import ▸ Examples does RED.view.importNodes with the example's JSON.
    await page.evaluate(`RED.view.importNodes(${JSON.stringify(readExample('imagenet-as-is.json'))})`);
    await page.evaluate(`RED.view.importNodes(${JSON.stringify(readExample('camera-sorter.json'))})`);
    // Dashboard 2 is a devDependency: the demo's Node-RED finds it next to itself, as a user's palette install would be found.
    await page.evaluate(`RED.view.importNodes(${JSON.stringify(readExample('dashboard-lane.json'))})`);
    await page.waitForTimeout(500);

    // Passed as text: tsx would add helpers (__name) to a function that the page does not have.
    const nodes = (await page.evaluate(`(() => {
      const all = [];
      const keep = (n) => all.push({ id: n.id, type: n.type, valid: n.valid, errors: n.validationErrors });
      RED.nodes.eachNode(keep);
      RED.nodes.eachConfig(keep);
      return all;
    })()`)) as EditorNode[];
    assert.equal(nodes.filter((node) => node.type === 'lane-classify').length, 4, 'the ImageNet, camera and dashboard examples were imported next to the lane');
    assert.ok(nodes.some((node) => node.type === 'ui-chart'), 'Dashboard 2 widgets are known to the editor');
    const invalid = nodes.filter((node) => node.valid === false);
    assert.deepEqual(invalid, [], 'nodes the editor marks invalid');
    const laneTypes = Object.keys(packageNodeTypes());
    for (const type of laneTypes) assert.ok(nodes.some((node) => node.type === type), `${type} is in the editor`);
    // Every lane node type is known to the editor (an unknown one would show as "unknown").
    assert.ok(!nodes.some((node) => node.type === 'unknown'), 'no unknown nodes');

    const palette = (await page.evaluate(`Array.from(document.querySelectorAll('.red-ui-palette-node[data-palette-type]')).map((el) => el.getAttribute('data-palette-type'))`)) as string[];
    for (const type of laneTypes.filter((t) => !['lane-backbone', 'lane-dataset', 'lane-broker'].includes(t))) {
      assert.ok(palette.includes(type), `${type} in the palette`);
    }
    assert.deepEqual(pageErrors, []);

    // Edit dialogs: a ${ENV} value in a dropdown is shown, not blank; old flows get their typedInput types.
    const dialog = async (id: string, read: string): Promise<unknown> => {
      await page.evaluate(`RED.editor.edit(RED.nodes.node(${JSON.stringify(id)}))`);
      await page.waitForSelector('#node-dialog-ok', { state: 'visible' });
      await page.waitForTimeout(300);
      const value = await page.evaluate(read);
      await page.click('#node-dialog-cancel');
      await page.waitForSelector('#node-dialog-ok', { state: 'detached' });
      return value;
    };
    assert.equal(await dialog('imagenet-as-is.source', `$('#node-input-mode').val()`), '${LANE_FRAMES_MODE}');
    assert.deepEqual(
      await dialog('imagenet-as-is.classify', `[$('#node-input-threshold').typedInput('type'), $('#node-input-threshold').typedInput('value'), $('#node-input-property').typedInput('type'), $('#node-input-property').typedInput('value'), $('#node-input-outputProperty').typedInput('value')]`),
      ['num', '0.3', 'msg', 'payload', 'payload'],
      'a flow from before the typedInputs: the threshold is a number, the image and label in msg.payload',
    );
    assert.deepEqual(pageErrors, []);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.evaluate(`RED.workspaces.show('yoghurt-lane')`);
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(ARTIFACTS, 'editor-yoghurt-lane.png') });
  } catch (err) {
    if (err instanceof Error && demo) err.message += `\nNode-RED output:\n${demo.log.slice(-30).join('\n')}`;
    throw err;
  } finally {
    await browser.close();
    const code = await demo?.stop();
    fs.rmSync(userDir, { recursive: true, force: true });
    assert.equal(code, 0);
  }
});
