/**
 * A palette install behaves like the repo: the package as `npm pack` makes it is installed
 * with plain `npm install <tarball>` (what Node-RED's palette manager runs) into a fresh user
 * directory, with no .npmrc and no npm_config_* / ONNXRUNTIME_* variables, so nothing of the
 * repo's own set-up helps. ONNX Runtime's CPU binaries must come from the npm package itself
 * (no download from outside the npm registry), and a real `node-red` process started on that
 * user directory must run the backbone on ONNX Runtime.
 * Run `npm run build` first (the tarball ships dist/). Skipped when the npm registry is unreachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { modelDir } from '../support/shared.js';
import { freePort, isListening, repoRoot, tempDir } from './support.js';

const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const BACKBONE = modelDir('mobilenet-v1-0.25-imagenet');

/** The environment of a user who never saw this repo: no npm or ONNX Runtime settings inherited from `npm test`. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(npm_|ONNXRUNTIME_|LANE_VISION_)/i.test(name)) continue;
    env[name] = value;
  }
  return env;
}

async function registryReachable(env: NodeJS.ProcessEnv): Promise<boolean> {
  try {
    await run(npm, ['ping'], { env, timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

test('npm install of the packed tarball gets ONNX Runtime from npm only, and node-red runs the backbone on it', { timeout: 600_000 }, async (t) => {
  const env = cleanEnv();
  if (!(await registryReachable(env))) {
    t.skip('the npm registry is unreachable (npm ping failed): a palette install cannot be tried');
    return;
  }
  assert.ok(fs.existsSync(path.join(repoRoot, 'dist', 'nodes')), 'dist/ is missing: run npm run build first');
  const work = tempDir('lane-vision-palette-');
  const userDir = path.join(work, 'user');
  fs.mkdirSync(userDir);
  // The package.json Node-RED writes into a new user directory.
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', description: 'A Node-RED Project', version: '0.0.1', private: true }));
  let child: ReturnType<typeof spawn> | undefined;
  let output = '';
  let port = 0;
  try {
    // dist/ is already built: --ignore-scripts keeps `prepack` from building it again.
    const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repoRoot, env, maxBuffer: 64 * 1024 * 1024 });
    const [{ filename, files }] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    const shipped = new Set(files.map((file) => file.path));
    for (const required of ['LICENSE', 'README.md', 'package.json', 'docs/mqtt-events.md', 'dist/nodes/lane-backbone/lane-backbone.js', 'dist/nodes/lane-backbone/lane-backbone.html']) {
      assert.ok(shipped.has(required), `the tarball ships ${required}`);
    }
    assert.ok(![...shipped].some((file) => file.startsWith('test/') || file.startsWith('src/')), 'sources and tests stay out of the tarball');

    // npm >= 11.10 runs install scripts of registry packages it has no policy for (what the
    // palette installs), but not of a local tarball: approve ours, as `npm install-scripts
    // approve` would, so the tarball installs like the published package.
    const tarball = path.join(work, filename);
    const userPackage = JSON.parse(fs.readFileSync(path.join(userDir, 'package.json'), 'utf8'));
    fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ ...userPackage, allowScripts: { [`file:${tarball}`]: true } }));
    // The palette manager's command (@node-red/registry installer).
    const installed = await run(npm, ['install', '--no-audit', '--no-update-notifier', '--no-fund', '--save', '--omit=dev', '--engine-strict', '--foreground-scripts', tarball], {
      cwd: userDir,
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 540_000,
    });
    const installLog = installed.stdout + installed.stderr;
    assert.doesNotMatch(installLog, /^Downloading https?:/m, 'nothing was fetched from outside the npm registry');
    // Next to the package (its own install script skipped the download) or in the package's native-deps/.
    const places = [path.join(userDir, 'node_modules', 'onnxruntime-node'), path.join(userDir, 'node_modules', 'node-red-contrib-lane-vision', 'native-deps', 'node_modules', 'onnxruntime-node')];
    const ort = places.find((place) => fs.existsSync(path.join(place, 'package.json')));
    assert.ok(ort, `onnxruntime-node was installed:\n${installLog}`);
    assert.equal(fs.existsSync(path.join(ort, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so')), false, 'no CUDA provider was downloaded');

    // A flow whose classifier uses the backbone, so the backbone node loads it at start.
    const flow = [
      { id: 'tab', type: 'tab', label: 'palette install' },
      { id: 'bb', type: 'lane-backbone', name: 'backbone', source: BACKBONE, featureLayer: '', fit: 'cover', backend: 'auto', engine: 'auto' },
      { id: 'cls', type: 'lane-classify', z: 'tab', name: 'classify', backbone: 'bb', dataset: '', mode: 'backbone', threshold: 0.3, topK: 3, outputs: 1, x: 200, y: 100, wires: [[]] },
    ];
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));
    port = await freePort();
    fs.writeFileSync(path.join(userDir, 'settings.js'), `module.exports = ${JSON.stringify({ uiHost: '127.0.0.1', uiPort: port, flowFile: 'flows.json', credentialSecret: false, logging: { console: { level: 'info' } } })};`);
    const redJs = require.resolve('node-red/red.js', { paths: [repoRoot] });
    child = spawn(process.execPath, [redJs, '--userDir', userDir, '--settings', path.join(userDir, 'settings.js'), '--port', String(port)], { cwd: userDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const loaded = new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const line = /\[lane-backbone:backbone\] Backbone .* runs on (\S+)/.exec(output);
        if (line) resolve(line[1]);
        const failed = /\[error\] \[lane-backbone:backbone\].*/.exec(output);
        if (failed) reject(new Error(failed[0]));
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
      child!.once('exit', (code) => reject(new Error(`node-red exited (${code}) before the backbone loaded`)));
    });
    const runtime = await loaded;
    assert.match(runtime, /^onnxruntime\//, `the backbone runs on ONNX Runtime, not ${runtime}`);
    // No nodesDir in the settings: the palette's lane nodes come from the user directory's node_modules.
    const palette = (await (await fetch(`http://127.0.0.1:${port}/nodes`, { headers: { Accept: 'application/json' } })).json()) as { module: string; enabled: boolean }[];
    assert.ok(palette.filter((set) => set.module === 'node-red-contrib-lane-vision' && set.enabled).length >= 8, 'the lane nodes are in the palette');
    assert.doesNotMatch(output, /onnxruntime-node (is not installed|failed to load)/);
  } catch (err) {
    if (err instanceof Error && output) err.message += `\nNode-RED output:\n${output.split('\n').slice(-40).join('\n')}`;
    throw err;
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGINT');
      await exited;
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
  assert.equal(await isListening(port), false, 'Node-RED is gone and its port free');
});
