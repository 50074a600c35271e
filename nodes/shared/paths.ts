/** Where Node-RED nodes keep their files: the user directory, and folder settings relative to it. */
import * as os from 'node:os';
import * as path from 'node:path';

/** Node-RED's user directory; the runtime always sets it, embedded runtimes may not (then Node-RED's default). */
export function userDirOf(settings: { userDir?: string } | undefined): string {
  return settings?.userDir || path.join(os.homedir(), '.node-red');
}

/** A folder setting as an absolute path: relative ones live in the user directory, next to the flows. */
export function resolveInUserDir(userDir: string, folder: string): string {
  return path.resolve(userDir, folder);
}
