#!/usr/bin/env node
/**
 * postinstall: make sure ONNX Runtime's CPU binaries (inside the onnxruntime-node npm package)
 * are there after a palette install, with nothing fetched from outside the npm registry.
 *
 * Why: on Linux x64 onnxruntime-node's own postinstall downloads CUDA libraries from NuGet
 * unless ONNXRUNTIME_NODE_INSTALL=skip is set, and a dependency cannot set that for the user
 * directory it is installed into. Offline (or behind a registry mirror) that download fails,
 * npm then drops the optional dependency and the backbone falls back to tfjs. So when
 * that download is ahead, this installs the same version from the npm registry with
 * --ignore-scripts into native-deps/, where src/engine/onnx/runtime.ts looks second. Plain JavaScript, no dependencies: it runs before anything is built.
 * Never fails the install: without ONNX Runtime the nodes run on tfjs and say so.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const packageDir = path.resolve(__dirname, '..');
const targetDir = path.join(packageDir, 'native-deps');
const PACKAGE = 'onnxruntime-node';

function say(text) {
  process.stderr.write(`lane-vision: ${text}\n`);
}

/**
 * True when onnxruntime-node's own postinstall is about to download from outside the npm
 * registry: npm runs every postinstall of the tree in one pass, this one first, so its
 * failure (and npm dropping the package) cannot be waited for here.
 */
function cudaDownloadAhead() {
  const flags = [process.env.ONNXRUNTIME_NODE_INSTALL, process.env.npm_config_onnxruntime_node_install, process.env.ONNXRUNTIME_NODE_INSTALL_CUDA, process.env.npm_config_onnxruntime_node_install_cuda];
  if (flags.includes('skip')) return false;
  let ortDir;
  try {
    ortDir = path.dirname(require.resolve(`${PACKAGE}/package.json`, { paths: [packageDir] }));
  } catch {
    return true; // not there at all (dropped by an earlier npm run): fetch it
  }
  try {
    const metadata = require(path.join(ortDir, 'script', 'install-metadata.js'));
    const platform = `${process.platform}/${process.arch}`;
    const needed = metadata.requirements[platform] || [];
    // Already downloaded (an earlier, online install) counts as nothing ahead.
    return needed.some((name) => Object.keys(metadata.manifests[`${platform}:${name}`] || {}).some((file) => !fs.existsSync(path.join(ortDir, 'bin', 'napi-v6', platform, file))));
  } catch {
    return false; // another layout: its script knows best
  }
}

/** Only this platform's binding is ever loaded: the others are ~250 MB of disk. */
function dropOtherPlatforms(ortDir) {
  const binDir = path.join(ortDir, 'bin', 'napi-v6');
  if (!fs.existsSync(binDir)) return;
  for (const platform of fs.readdirSync(binDir)) {
    for (const arch of fs.readdirSync(path.join(binDir, platform))) {
      if (platform !== process.platform || arch !== process.arch) fs.rmSync(path.join(binDir, platform, arch), { recursive: true, force: true });
    }
  }
}

function main() {
  // `npm install` / `npm ci` inside the repo itself: the repo's .npmrc already skips CUDA.
  const json = process.env.npm_package_json;
  if (json && process.env.npm_config_local_prefix && path.dirname(json) === process.env.npm_config_local_prefix) return;
  if (process.env.LANE_VISION_SKIP_ONNX_INSTALL === '1') return;
  if (!cudaDownloadAhead()) return;
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
  const range = (manifest.optionalDependencies || {})[PACKAGE];
  const npmCli = process.env.npm_execpath;
  if (!range || !npmCli) return;
  fs.mkdirSync(targetDir, { recursive: true });
  fs.writeFileSync(path.join(targetDir, 'package.json'), JSON.stringify({ name: 'lane-vision-native-deps', private: true }));
  say(`${PACKAGE}'s install script is about to download CUDA libraries from outside the npm registry (npm drops the package where that fails); installing its CPU build from the npm registry without install scripts into ${targetDir}`);
  const result = spawnSync(
    process.execPath,
    [npmCli, 'install', `${PACKAGE}@${range}`, '--prefix', targetDir, '--global=false', '--ignore-scripts', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--omit=dev', '--loglevel=error'],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } },
  );
  if (result.status === 0) {
    dropOtherPlatforms(path.join(targetDir, 'node_modules', PACKAGE));
    say(`${PACKAGE} installed into ${targetDir}`);
  }
  else say(`${PACKAGE} could not be installed (exit ${result.status}); the backbone will run on TensorFlow.js. Fix: ONNXRUNTIME_NODE_INSTALL=skip npm install ${PACKAGE} in the Node-RED user directory`);
}

try {
  main();
} catch (err) {
  say(`ONNX Runtime set-up skipped: ${err && err.message ? err.message : String(err)}`);
}
