/**
 * Which labels of a lane are reject classes, as the operator marked them in the console:
 * a small JSON file beside the model versions, so the marks survive restarts and apply to
 * the next training started there.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';

export const REJECT_LABELS_FILE = 'reject-labels.json';

export async function readRejectLabels(modelsDir: string): Promise<string[]> {
  try {
    const parsed = JSON.parse(await fs.readFile(path.join(modelsDir, REJECT_LABELS_FILE), 'utf8')) as { rejectLabels?: unknown };
    return Array.isArray(parsed.rejectLabels) ? parsed.rejectLabels.filter((l): l is string => typeof l === 'string') : [];
  } catch {
    return []; // none marked yet (or an unreadable file: no marks rather than no lane)
  }
}

export async function writeRejectLabels(modelsDir: string, labels: readonly string[]): Promise<void> {
  await fs.mkdir(modelsDir, { recursive: true });
  await writeFileAtomic(path.join(modelsDir, REJECT_LABELS_FILE), JSON.stringify({ rejectLabels: [...new Set(labels)].sort() }, null, 2) + '\n');
}
