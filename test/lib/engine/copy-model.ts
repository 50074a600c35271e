import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { modelDir } from '../../support/shared.js';

/**
 * Copies a shared model folder to a scratch place (never into the repo), made writable:
 * the shared files are read-only, and copies must be deletable and damageable.
 */
export async function copyModel(name: string, to: string): Promise<string> {
  await fs.cp(modelDir(name), to, { recursive: true });
  for (const file of await fs.readdir(to)) await fs.chmod(path.join(to, file), 0o644);
  await fs.chmod(to, 0o755);
  return to;
}
