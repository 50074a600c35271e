/**
 * Runs the real `lane-vision` command line in a child process, as a user would, and
 * collects its exit code and both output streams.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const mainScript = path.join(repoRoot, 'src', 'cli', 'main.ts');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `lane-vision ...args`; `env` is added to this process's environment. */
export function runLaneVision(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mainScript, ...args], {
      cwd: repoRoot,
      env: { ...process.env, DEBUG: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lane-vision ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** stdout as JSON lines; fails with the raw text when a line is not JSON. */
export function jsonLines(run: CliRun): Record<string, any>[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, any>;
      } catch {
        throw new Error(`stdout line is not JSON: ${line}\n(stderr: ${run.stderr})`);
      }
    });
}

/** stderr lines that are ours, without tfjs's own one-time advice banner. */
export function ownStderrLines(run: CliRun): string[] {
  return run.stderr.split('\n').filter((line) => line.startsWith('lane-vision') || line.startsWith('backend:'));
}
