/**
 * `npm start`: runs the yoghurt-lane demo in a real Node-RED process.
 *
 * It prepares a Node-RED user directory (settings file, the example flow on first start
 * or with --reset), makes sure a backbone is on disk, spawns node-red/red.js on 127.0.0.1
 * and stops it cleanly on Ctrl-C / SIGTERM. The e2e test starts Node-RED through
 * `startDemo` below, so the demo and the test share one path.
 *
 * Settings reach the flow as environment variables of the Node-RED process (LANE_VISION_*,
 * always set by the launcher). The example flow reads them in its tab's environment (JSONata
 * with a default for each), and its nodes use `${NAME}` properties, which Node-RED replaces
 * when it creates each node. So the same flow runs after a plain Import ▸ Examples too.
 *
 *   npm start                  start (example flow copied into the user dir on first start)
 *   npm start -- --reset       restore the example flow and clear the demo's frames and models
 *
 * Environment: PORT (editor, default 1880), LANE_VISION_MQTT_PORT (default 1884),
 * LANE_VISION_DEMO_DIR (user dir, default <repo>/.node-red-data), LANE_VISION_BACKBONE
 * (folder, URL or preset), LANE_VISION_FRAMES (folder per class; default: synthetic lane),
 * LANE_VISION_CACHE (model download cache), LANE_VISION_TRAIN_DELAY (seconds before the example
 * flow's first training, default 20).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LaneVisionError, isLaneVisionError } from '../src/errors.js';
import { defaultCacheDir, downloadModel } from '../src/engine/download-cache.js';
import { resolveSource } from '../src/engine/model-source.js';
import { listLabelledImages } from '../src/lane-source/folder-replay.js';
import { DEFAULT_TOPIC_TEMPLATE, buildLaneTopics, type LaneTopics } from '../src/events/topics.js';

// #region options

export const DEFAULT_HTTP_PORT = 1880;
export const DEFAULT_MQTT_PORT = 1884;
/** The preset used when neither LANE_VISION_BACKBONE nor the shared models folder gives one. */
export const DEFAULT_BACKBONE_PRESET = 'mobilenet-v2-0.35';
/** Next to the repo in the development set-up (see ../shared/models/README.md). */
export const SHARED_BACKBONE = path.join('..', 'shared', 'models', 'mobilenet-v2-0.35-features');
export const DEMO_FLOW_EXAMPLE = 'yoghurt-lane.json';
/** Known to anyone reading this file: it only keeps a local demo's credentials file readable across restarts. */
export const DEMO_CREDENTIAL_SECRET = 'lane-vision-local-demo';
/** The demo's own data (captured frames, models) below the user dir; --reset clears exactly this. */
export const DEMO_DATA_FOLDER = 'lane-vision-demo';
const FLOW_FILE = 'flows.json';
const SETTINGS_FILE = 'lane-vision-demo.settings.js';
const HOST = '127.0.0.1';

export interface DemoOptions {
  /** The package root: Node-RED loads the nodes from here (its package.json `node-red` section). */
  repoRoot: string;
  httpPort: number;
  mqttPort: number;
  userDir: string;
  /** Restore the example flow and clear the demo's frames and models. */
  reset: boolean;
  /** Backbone as given (LANE_VISION_BACKBONE); undefined = shared folder, else the default preset. */
  backbone?: string;
  /** Folder of class folders to replay; undefined = the synthetic yoghurt lane. */
  frames?: string;
  /** The flow copied into the user dir on first start / reset. */
  flowTemplate: string;
  /** Extra environment for the Node-RED process (tests pass a short train delay here). */
  extraEnv?: Record<string, string>;
  /** 'inherit' shows Node-RED's log in the terminal; 'pipe' keeps it in `RunningDemo.log`. */
  output: 'inherit' | 'pipe';
}

/** The package root: the nearest folder above this file holding our package.json (works from scripts/ and dist/scripts/). */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const pkgFile = path.join(dir, 'package.json');
    if (fs.existsSync(pkgFile)) {
      const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { name?: string };
      if (pkg.name === 'node-red-contrib-lane-vision') return dir;
    }
    if (path.dirname(dir) === dir) {
      throw new LaneVisionError('DEMO_SETUP_FAILED', `Cannot find the node-red-contrib-lane-vision package above ${from}.`);
    }
  }
}

function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name]?.trim();
  if (!text) return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LaneVisionError('DEMO_CONFIG_INVALID', `${name}=${text} is not a port number (1-65535).`);
  }
  return port;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value && value.trim() ? value.trim() : undefined;
}

/** Options of `npm start` from its environment and arguments. */
export function demoOptionsFrom(env: NodeJS.ProcessEnv, argv: readonly string[], repoRoot = findRepoRoot()): DemoOptions {
  const unknown = argv.filter((arg) => arg !== '--reset');
  if (unknown.length > 0) {
    throw new LaneVisionError('DEMO_CONFIG_INVALID', `Unknown argument ${unknown.join(' ')}; the only option is --reset.`);
  }
  const userDir = nonEmpty(env.LANE_VISION_DEMO_DIR);
  return {
    repoRoot,
    httpPort: portFrom(env, 'PORT', DEFAULT_HTTP_PORT),
    mqttPort: portFrom(env, 'LANE_VISION_MQTT_PORT', DEFAULT_MQTT_PORT),
    userDir: userDir ? path.resolve(userDir) : path.join(repoRoot, '.node-red-data'),
    reset: argv.includes('--reset'),
    backbone: nonEmpty(env.LANE_VISION_BACKBONE),
    frames: nonEmpty(env.LANE_VISION_FRAMES),
    flowTemplate: path.join(repoRoot, 'examples', DEMO_FLOW_EXAMPLE),
    output: 'inherit',
  };
}

// #endregion
// #region backbone and frames

export interface BackboneChoice {
  /** What the flow's backbone node gets: an absolute folder, a URL or a preset name. */
  source: string;
  /** Why this one, for the start-up message. */
  origin: string;
}

function backboneHelp(): string {
  return [
    'Give the demo a backbone in one of these ways:',
    '  LANE_VISION_BACKBONE=/path/to/model-folder npm start   (a TensorFlow.js model: model.json + weight files)',
    `  LANE_VISION_BACKBONE=${DEFAULT_BACKBONE_PRESET} npm start  (a preset, downloaded once from its official URL; needs internet)`,
    `  or copy a model cache folder into ${defaultCacheDir()} (LANE_VISION_CACHE moves it).`,
  ].join('\n');
}

/**
 * Which backbone the demo uses, made available on disk: LANE_VISION_BACKBONE, else the shared
 * MobileNetV2 0.35 folder next to the repo, else the default preset through the download
 * cache (downloaded now, so a missing network shows up here and not later inside Node-RED).
 */
export async function prepareBackbone(options: Pick<DemoOptions, 'repoRoot' | 'backbone'>): Promise<BackboneChoice> {
  if (options.backbone) {
    const source = resolveSource(options.backbone);
    if (source.kind === 'folder') {
      if (!fs.existsSync(path.join(source.path, 'model.json'))) {
        throw new LaneVisionError('DEMO_BACKBONE_MISSING', `LANE_VISION_BACKBONE=${options.backbone}: there is no model.json in ${source.path}.\n${backboneHelp()}`);
      }
      return { source: source.path, origin: 'LANE_VISION_BACKBONE' };
    }
    await downloadFirst(source.modelJsonUrls, `LANE_VISION_BACKBONE=${options.backbone}`);
    return { source: options.backbone, origin: 'LANE_VISION_BACKBONE, in the model cache' };
  }
  const shared = path.resolve(options.repoRoot, SHARED_BACKBONE);
  if (fs.existsSync(path.join(shared, 'model.json'))) {
    return { source: shared, origin: 'the shared models folder next to the repo' };
  }
  const preset = resolveSource(DEFAULT_BACKBONE_PRESET);
  if (preset.kind !== 'url') throw new Error(`preset ${DEFAULT_BACKBONE_PRESET} is missing from the preset table`);
  await downloadFirst(preset.modelJsonUrls, `the default preset ${DEFAULT_BACKBONE_PRESET}`);
  return { source: DEFAULT_BACKBONE_PRESET, origin: `default preset, official URL, cached in ${defaultCacheDir()}` };
}

async function downloadFirst(urls: readonly string[], what: string): Promise<void> {
  const problems: string[] = [];
  for (const url of urls) {
    try {
      await downloadModel(url);
      return;
    } catch (err) {
      problems.push(`${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new LaneVisionError('DEMO_BACKBONE_MISSING', `Cannot get ${what}:\n  ${problems.join('\n  ')}\n${backboneHelp()}`);
}

export interface FramesChoice {
  /** Absolute folder to replay, or undefined for the synthetic lane. */
  folder?: string;
  description: string;
}

/** Checks LANE_VISION_FRAMES holds labelled images before Node-RED starts. */
export async function prepareFrames(frames: string | undefined): Promise<FramesChoice> {
  if (!frames) return { description: 'the synthetic yoghurt lane (6 flavours, true label on msg.label)' };
  const folder = path.resolve(frames);
  let images;
  try {
    images = await listLabelledImages(folder);
  } catch (err) {
    const reason = isLaneVisionError(err) ? err.message : String(err);
    throw new LaneVisionError('DEMO_FRAMES_INVALID', `LANE_VISION_FRAMES=${frames}: ${reason}. Give a folder with one sub-folder of images per class.`, { cause: err });
  }
  const classes = new Set(images.map((image) => image.label).filter((label) => label !== undefined));
  return { folder, description: `replaying ${images.length} images of ${classes.size} classes from ${folder}` };
}

// #endregion
// #region user directory

/** The generated settings file: local-only editor, no login, the repo as the nodes' package. */
export function settingsFileText(options: Pick<DemoOptions, 'repoRoot' | 'httpPort'>): string {
  const settings = {
    uiHost: HOST,
    uiPort: options.httpPort,
    flowFile: FLOW_FILE,
    // Fixed and public: fine for a demo on 127.0.0.1, never for a lane (set your own).
    credentialSecret: DEMO_CREDENTIAL_SECRET,
    // Node-RED scans a nodesDir that is a package with a `node-red` section as that module
    // (@node-red/registry localfilesystem.js), so no symlink or npm install is needed.
    nodesDir: [options.repoRoot],
    // No adminAuth: anyone who can reach 127.0.0.1 on this machine can edit the flows.
    telemetry: { enabled: false },
    // No projects, and no "what's new" tour over the demo flow.
    editorTheme: { projects: { enabled: false }, tours: false },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
  return [
    '// Generated by `npm start` (scripts/start-demo.ts) on every start: edit the script, not this file.',
    `module.exports = ${JSON.stringify(settings, null, 2)};`,
    '',
  ].join('\n');
}

export interface PreparedUserDir {
  settingsFile: string;
  flowFile: string;
  /** True when the example flow was (re)installed on this start. */
  flowInstalled: boolean;
  /** Folders --reset removed. */
  cleared: string[];
}

function readFlow(file: string): Record<string, unknown>[] {
  const flow = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(flow)) throw new LaneVisionError('DEMO_FLOW_INVALID', `${file} is not a Node-RED flow export (a JSON array).`);
  return flow as Record<string, unknown>[];
}

/** Writes the settings file; copies the example flow on first start or reset; reset also clears the demo data. */
export function prepareUserDir(options: Pick<DemoOptions, 'repoRoot' | 'httpPort' | 'userDir' | 'reset' | 'flowTemplate'>): PreparedUserDir {
  fs.mkdirSync(options.userDir, { recursive: true });
  const settingsFile = path.join(options.userDir, SETTINGS_FILE);
  fs.writeFileSync(settingsFile, settingsFileText(options));
  const flowFile = path.join(options.userDir, FLOW_FILE);
  const cleared: string[] = [];
  if (options.reset) {
    const data = path.join(options.userDir, DEMO_DATA_FOLDER);
    if (fs.existsSync(data)) {
      fs.rmSync(data, { recursive: true, force: true });
      cleared.push(data);
    }
    // The credentials belong to the flow being replaced.
    fs.rmSync(path.join(options.userDir, 'flows_cred.json'), { force: true });
  }
  const flowInstalled = options.reset || !fs.existsSync(flowFile);
  if (flowInstalled) {
    readFlow(options.flowTemplate); // refuse to install something that is not a flow
    fs.copyFileSync(options.flowTemplate, flowFile);
  }
  return { settingsFile, flowFile, flowInstalled, cleared };
}

/** Page paths of the flow's lane-console nodes (for the start-up message). */
export function consolePathsOf(flowFile: string): string[] {
  try {
    return readFlow(flowFile)
      .filter((node) => node.type === 'lane-console' && typeof node.path === 'string' && !node.path.includes('${'))
      .map((node) => `/${String(node.path).trim().replace(/^\/+/, '')}`);
  } catch {
    return [];
  }
}

/** The station topics of the first lane-broker in the flow (for the start-up message). */
export function laneTopicsOf(flowFile: string): LaneTopics | undefined {
  try {
    const broker = readFlow(flowFile).find((node) => node.type === 'lane-broker');
    if (!broker) return undefined;
    const text = (value: unknown, fallback: string) => (typeof value === 'string' && value.trim() && !value.includes('${') ? value.trim() : fallback);
    return buildLaneTopics(
      { line: text(broker.line, 'line'), station: text(broker.station, 'station') },
      text(broker.topicTemplate, DEFAULT_TOPIC_TEMPLATE),
    );
  } catch {
    return undefined; // the message is a convenience; a hand-edited flow must not stop the start
  }
}

// #endregion
// #region Node-RED process

/** Fails early with a clear message when something else already listens on the port. */
export async function assertPortFree(port: number, what: string, envName: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new LaneVisionError(
          'DEMO_PORT_IN_USE',
          err.code === 'EADDRINUSE'
            ? `${what} port ${port} on ${HOST} is already in use (another Node-RED or MQTT broker?). Stop it or set ${envName}=<port>.`
            : `Cannot use ${what} port ${port} on ${HOST}: ${err.message}`,
          { cause: err },
        ),
      );
    });
    probe.listen(port, HOST, () => probe.close(() => resolve()));
  });
}

export interface RunningDemo {
  readonly child: ChildProcess;
  readonly editorUrl: string;
  readonly mqttUrl: string;
  readonly backbone: BackboneChoice;
  readonly frames: FramesChoice;
  readonly userDir: PreparedUserDir;
  /** Node-RED's output so far when started with output 'pipe' (the last ~2000 lines). */
  readonly log: string[];
  /** Resolves once the admin API answers; rejects if Node-RED exits or does not come up. */
  readonly ready: Promise<void>;
  /** Resolves with Node-RED's exit code (null when ended by a signal). */
  readonly exited: Promise<number | null>;
  /** Asks Node-RED to stop (SIGTERM: it closes every node, then exits); kills it after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

const READY_TIMEOUT_MS = 60_000;

/** The Node-RED entry point shipped with the node-red package (resolved, never guessed). */
export function nodeRedEntry(): string {
  return require.resolve('node-red/red.js');
}

async function waitUntilReady(url: string, exited: Promise<number | null>, log: string[]): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (gone) {
      const tail = log.slice(-20).join('\n');
      throw new LaneVisionError('DEMO_NODE_RED_FAILED', `Node-RED exited during start-up.${tail ? `\n${tail}` : ' See its output above.'}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new LaneVisionError('DEMO_NODE_RED_FAILED', `Node-RED did not answer on ${url} within ${READY_TIMEOUT_MS / 1000} s.`);
}

/**
 * Prepares everything and spawns Node-RED. Check failures (ports, backbone, frames) throw
 * LaneVisionError before any process starts.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  await assertPortFree(options.httpPort, 'The editor', 'PORT');
  await assertPortFree(options.mqttPort, 'The MQTT', 'LANE_VISION_MQTT_PORT');
  const backbone = await prepareBackbone(options);
  const frames = await prepareFrames(options.frames);
  const userDir = prepareUserDir(options);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...options.extraEnv,
    // Always set, so the flow's ${...} properties never see an unset variable.
    LANE_VISION_BACKBONE: backbone.source,
    LANE_VISION_FRAMES: frames.folder ?? '',
    LANE_VISION_MQTT_PORT: String(options.mqttPort),
  };
  const args = [nodeRedEntry(), '--settings', userDir.settingsFile, '--userDir', options.userDir, '--port', String(options.httpPort)];
  const child = spawn(process.execPath, args, { cwd: options.userDir, env, stdio: ['ignore', options.output, options.output] });
  const log: string[] = [];
  if (options.output === 'pipe') {
    const keep = (chunk: Buffer) => {
      log.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      if (log.length > 2000) log.splice(0, log.length - 2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', (err) => {
      log.push(`cannot start Node-RED: ${err.message}`);
      resolve(null);
    });
  });
  const editorUrl = `http://${HOST}:${options.httpPort}/`;
  const ready = waitUntilReady(`${editorUrl}flows`, exited, log);
  ready.catch(() => undefined); // the caller awaits it; keep an early failure from being "unhandled"

  let stopping: Promise<number | null> | undefined;
  return {
    child,
    editorUrl,
    mqttUrl: `mqtt://${HOST}:${options.mqttPort}`,
    backbone,
    frames,
    userDir,
    log,
    ready,
    exited,
    stop(graceMs = 20_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return exited;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      })();
      return stopping;
    },
  };
}

// #endregion
// #region command line

/** The example flow's first-training delay (its tab variable LANE_TRAIN_DELAY reads this, default 20). */
function trainDelaySeconds(): string {
  return process.env.LANE_VISION_TRAIN_DELAY?.trim() || '20';
}

function startMessage(demo: RunningDemo): string {
  const topics = laneTopicsOf(demo.userDir.flowFile);
  const mqttPort = new URL(demo.mqttUrl).port;
  const lines = [
    '',
    `Lane Vision demo is running (Node-RED pid ${demo.child.pid}).`,
    `  Editor       ${demo.editorUrl}`,
    `               no login: a local demo, listening on ${HOST} only. Do not expose it.`,
    ...consolePathsOf(demo.userDir.flowFile).map((page) => `  Console      ${new URL(page.slice(1), demo.editorUrl).toString()}  (operator page: watch, teach, train, roll back)`),
    `  Frames       ${demo.frames.description}`,
    `  Backbone     ${demo.backbone.source}`,
    `               (${demo.backbone.origin})`,
    `  MQTT broker  ${demo.mqttUrl} (embedded in Node-RED by the lane-broker node)`,
  ];
  if (topics) {
    lines.push(
      `               results   ${topics.result}`,
      `               training  ${topics.training}   model ${topics.model}   state ${topics.state}`,
      `               commands  ${topics.commandFilter}`,
      `               watch:    npx mqtt sub -h ${HOST} -p ${mqttPort} -t '${topics.result.replace(/\/[^/]+$/, '/#')}' -v`,
    );
  }
  lines.push(
    '  Watch        the Debug sidebar (bug icon, top right of the editor): each frame the lane sorts, and training progress.',
    '               The first 4 frames of each flavour are stored with their true label; training starts by itself about',
    `               ${trainDelaySeconds()} s after start (and again every 10 s while a label has fewer than 2 frames), or press "train now".`,
    '  Teach        later frames are stored only when you ask: in the console (Teach: pick frames, click a label), or over MQTT:',
    topics
      ? `               npx mqtt pub -h ${HOST} -p ${mqttPort} -t '${topics.commandFilter.replace(/\+$/, 'capture')}' -m '{"label":"peach","count":3}'`
      : '               cmd/capture with {"label": "peach", "count": 3}',
    '               then train again: the new examples go into the next model.',
    `  Data         ${demo.userDir.flowFile} and the captured frames / models in ${path.join(path.dirname(demo.userDir.flowFile), DEMO_DATA_FOLDER)}`,
    "               `npm start -- --reset` restores the example flow and clears them.",
    '  Ctrl-C stops Node-RED.',
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  let options: DemoOptions;
  let demo: RunningDemo;
  try {
    options = demoOptionsFrom(process.env, process.argv.slice(2));
    console.log(`Lane Vision demo: preparing ${options.userDir}${options.reset ? ' (reset)' : ''} ...`);
    demo = await startDemo(options);
  } catch (err) {
    console.error(`\nLane Vision demo cannot start: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
    return;
  }
  if (demo.userDir.flowInstalled) console.log(`Installed the example flow ${options.flowTemplate} as ${demo.userDir.flowFile}.`);
  for (const folder of demo.userDir.cleared) console.log(`Cleared ${folder}.`);
  // One stop whatever arrives: a Ctrl-C in a terminal reaches this process twice under
  // `npm start` (from the terminal and forwarded by npm) and Node-RED directly as well.
  let announced = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (!announced) console.log(`\nStopping Node-RED (${signal}) ...`);
      announced = true;
      void demo.stop();
    });
  }
  // If this process dies some other way, do not leave Node-RED running.
  process.on('exit', () => {
    if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill('SIGTERM');
  });
  try {
    await demo.ready;
    console.log(startMessage(demo));
  } catch (err) {
    console.error(`\nLane Vision demo: ${err instanceof Error ? err.message : String(err)}`);
    await demo.stop();
    process.exitCode = 1;
    return;
  }
  const code = await demo.exited;
  console.log(`Node-RED stopped${code ? ` (exit code ${code})` : ''}.`);
  process.exitCode = code ?? 0;
}

if (require.main === module) void main();

// #endregion
