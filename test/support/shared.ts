/**
 * Where the real weights and photos live. They are referenced, never copied into the repo.
 * Override with LANE_VISION_SHARED (the folder holding `models/` and `datasets/`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const sharedDir = path.resolve(process.env.LANE_VISION_SHARED ?? path.join(__dirname, '..', '..', '..', 'shared'));
export const modelsDir = path.join(sharedDir, 'models');
export const groceryDir = path.join(sharedDir, 'datasets', 'grocery-packages');
export const groceryTrainDir = path.join(groceryDir, 'train');
export const groceryValDir = path.join(groceryDir, 'val');

export const YOGHURT_CLASSES = [
  'Arla-Mild-Vanilla-Yoghurt',
  'Arla-Natural-Mild-Low-Fat-Yoghurt',
  'Arla-Natural-Yoghurt',
  'Valio-Vanilla-Yoghurt',
  'Yoggi-Strawberry-Yoghurt',
  'Yoggi-Vanilla-Yoghurt',
] as const;

export function modelDir(name: string): string {
  const dir = path.join(modelsDir, name);
  if (!fs.existsSync(path.join(dir, 'model.json'))) {
    throw new Error(`Shared model ${name} not found at ${dir}; set LANE_VISION_SHARED`);
  }
  return dir;
}

/** Image files of one class, sorted so tests repeat. */
export function classImages(splitDir: string, className: string): string[] {
  const dir = path.join(splitDir, className);
  return fs
    .readdirSync(dir)
    .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

export function classNames(splitDir: string): string[] {
  return fs
    .readdirSync(splitDir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}
