/**
 * The `lane-vision` command line: picks the subcommand, runs it, and turns any failure
 * into one line on stderr and an exit code (1: the work failed, 2: the command line is wrong).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isLaneVisionError } from '../errors.js';
import { UsageError } from './args.js';
import { PROGRAM, type Command } from './command.js';
import { adviseCommand } from './commands/advise.js';
import { classifyCommand } from './commands/classify.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { featuresCommand } from './commands/features.js';
import { grabCommand } from './commands/grab.js';
import { importTmCommand } from './commands/import-tm.js';
import { predictCommand } from './commands/predict.js';
import { trainCommand } from './commands/train.js';
import { versionsCommand } from './commands/versions.js';
import { oneLine, type CliStreams } from './output.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export const COMMANDS: readonly Command[] = [predictCommand, featuresCommand, adviseCommand, trainCommand, evalCommand, classifyCommand, versionsCommand, exportCommand, importTmCommand, grabCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `Usage: ${PROGRAM} <command> [options]

Teach a lane camera to sort products: run pretrained models, retrain a classifier
head from labelled images, score and use the stored models, grab camera frames.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Every command takes --backend auto|tensorflow|wasm|cpu, --json and --help; those that run
a backbone also take --engine auto|onnx|tfjs.
Run "${PROGRAM} <command> --help" for its options.
Exit codes: 0 done, 1 failed (one line on stderr says why), 2 wrong command line.`;
}

/** The version in our package.json, found by walking up: src/cli/ and dist/src/cli/ sit at different depths. */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'node-red-contrib-lane-vision' && pkg.version) return pkg.version;
    } catch {
      // no package.json here
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

/** Runs the command line `args` (without node and the script); resolves to the exit code. */
export async function runCli(args: readonly string[], streams: CliStreams = process): Promise<number> {
  const [name, ...rest] = args;
  let command: Command | undefined;
  try {
    if (name === undefined) throw new UsageError(undefined, 'missing command');
    if (name === '--help' || name === '-h' || name === 'help') {
      const topic = COMMANDS.find((c) => c.name === rest[0]);
      streams.stdout.write((topic ? topic.help : mainHelp()) + '\n');
      return EXIT_OK;
    }
    if (name === '--version' || name === '-V') {
      streams.stdout.write(packageVersion() + '\n');
      return EXIT_OK;
    }
    command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(undefined, name.startsWith('-') ? `missing command before ${name}` : `unknown command "${name}"`);
    // Help wins over everything else on the line, even options that would not parse.
    if (rest.some((arg) => arg === '--help' || arg === '-h')) {
      streams.stdout.write(command.help + '\n');
      return EXIT_OK;
    }
    return await command.run(rest, streams);
  } catch (err) {
    return reportFailure(err, command, streams);
  }
}

function reportFailure(err: unknown, command: Command | undefined, streams: CliStreams): number {
  const who = command ? `${PROGRAM} ${command.name}` : PROGRAM;
  if (err instanceof UsageError) {
    const help = err.command ? `${PROGRAM} ${err.command} --help` : `${PROGRAM} --help`;
    streams.stderr.write(`${who}: ${err.message} (see "${help}")\n`);
    return EXIT_USAGE;
  }
  const message = oneLine(err instanceof Error ? err.message : String(err));
  // The code lets scripts branch on the failure; unexpected errors carry none.
  streams.stderr.write(isLaneVisionError(err) ? `${who}: ${message} [${err.code}]\n` : `${who}: ${message}\n`);
  if (process.env.DEBUG && err instanceof Error && err.stack) streams.stderr.write(err.stack + '\n');
  return EXIT_FAILED;
}
