/**
 * Groups of frames that must stay on one side of a validation split. A camera takes the
 * same pack many times in a row; with those near-duplicates on both sides, a hold-out
 * measures memory, not how the model does on the next shift (measured on the grocery
 * photos: a random split said 93-97 % where photos of another session got 56-77 %).
 *
 * - Capture sessions (shifts, days) are groups when the data has more than one: validation
 *   then holds out whole sessions, which is what predicts a new one.
 * - Otherwise frames of one label are linked when they look more alike than the closest
 *   frames of two different labels usually do (the median, over frames, of the cosine to
 *   the nearest frame of another label), and each connected set is a group. No label may
 *   end up as one group holding more than half its frames: its threshold then rises until
 *   none does, so every fold still trains on every label.
 */
import { tensorValues, tf } from '../engine/backend.js';
import { LaneVisionError } from '../errors.js';
import { createRandom, shuffleInPlace } from '../random.js';
import { stackFeatures } from '../training/vectors.js';

export interface FrameGroups {
  /** Group id of each frame, 0.. (frames of different labels never share a group). */
  group: Int32Array;
  count: number;
  /** How the groups were made. */
  kind: 'sessions' | 'near-duplicates';
  /** near-duplicates: the similarity above which frames were linked (before any per-label rise). */
  threshold?: number;
  /** sessions: the session of each frame; folds then hold out whole sessions across all labels. */
  sessions?: readonly string[];
}

/** A label's largest group may hold at most this share of its frames. */
const MAX_GROUP_SHARE = 0.5;
const THRESHOLD_STEP = 0.01;
/** Rows of the similarity product computed at once (bounds its memory at about 4M floats). */
const BLOCK_CELLS = 4_000_000;

/**
 * Groups by capture session when `sessions` names at least two, else by near-duplicates
 * of the features (any vectors; they are normalised here).
 */
export function groupFrames(features: readonly Float32Array[], labels: readonly number[], sessions?: readonly (string | undefined)[]): FrameGroups {
  if (features.length !== labels.length) throw new LaneVisionError('EVALUATION_INPUT_INVALID', `${features.length} feature vectors but ${labels.length} labels`);
  const named = sessions?.filter((s): s is string => typeof s === 'string' && s !== '') ?? [];
  if (sessions && new Set(named).size >= 2) return sessionGroups(labels, sessions);
  return nearDuplicateGroups(features, labels);
}

function sessionGroups(labels: readonly number[], sessions: readonly (string | undefined)[]): FrameGroups {
  const ids = new Map<string, number>();
  const group = new Int32Array(labels.length);
  labels.forEach((label, i) => {
    const key = `${label}\u0000${sessions[i] ?? ''}`;
    if (!ids.has(key)) ids.set(key, ids.size);
    group[i] = ids.get(key)!;
  });
  return { group, count: ids.size, kind: 'sessions', sessions: labels.map((_, i) => sessions[i] ?? '') };
}

export function nearDuplicateGroups(features: readonly Float32Array[], labels: readonly number[]): FrameGroups {
  const count = features.length;
  const featureSize = count > 0 ? features[0].length : 0;
  const members = new Map<number, number[]>();
  labels.forEach((label, i) => (members.get(label) ?? members.set(label, []).get(label)!).push(i));
  const positionInLabel = new Int32Array(count);
  for (const list of members.values()) list.forEach((frame, position) => (positionInLabel[frame] = position));
  // Same-label similarities kept per label (sum of squared label sizes); the nearest other-label one per frame.
  const sameLabel = new Map<number, Float32Array>([...members].map(([label, list]) => [label, new Float32Array(list.length * list.length)]));
  const nearestOther = new Float32Array(count).fill(-1);
  if (count > 0) {
    const all = tf.tensor2d(stackFeatures(features, true), [count, featureSize]);
    const allTransposed = tf.transpose(all);
    try {
      const rows = Math.max(1, Math.floor(BLOCK_CELLS / count));
      for (let start = 0; start < count; start += rows) {
        const end = Math.min(count, start + rows);
        const block = tensorValues(() => tf.matMul(tf.slice(all, [start, 0], [end - start, featureSize]), allTransposed));
        for (let i = start; i < end; i++) {
          const row = block.subarray((i - start) * count, (i - start + 1) * count);
          const own = labels[i];
          const list = members.get(own)!;
          const matrix = sameLabel.get(own)!;
          const base = positionInLabel[i] * list.length;
          list.forEach((j, position) => (matrix[base + position] = row[j]));
          let best = -1;
          for (let j = 0; j < count; j++) if (labels[j] !== own && row[j] > best) best = row[j];
          nearestOther[i] = best;
        }
      }
    } finally {
      tf.dispose([all, allTransposed]);
    }
  }
  const threshold = median(Array.from(nearestOther).filter((s) => s > -1)) ?? 1;
  const group = new Int32Array(count);
  let next = 0;
  for (const [label, list] of [...members].sort((a, b) => a[0] - b[0])) {
    const components = linkedSets(sameLabel.get(label)!, list.length, threshold);
    const ids = new Map<number, number>();
    components.forEach((root, position) => {
      if (!ids.has(root)) ids.set(root, next++);
      group[list[position]] = ids.get(root)!;
    });
  }
  return { group, count: next, kind: 'near-duplicates', threshold };
}

/** Connected sets of `size` items linked above `threshold`, raised until no set holds more than MAX_GROUP_SHARE of them. */
function linkedSets(similarity: Float32Array, size: number, threshold: number): Int32Array {
  for (let t = threshold; ; t += THRESHOLD_STEP) {
    const parent = Int32Array.from({ length: size }, (_, i) => i);
    const find = (i: number): number => {
      while (parent[i] !== i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
      }
      return i;
    };
    for (let i = 0; i < size; i++) {
      for (let j = i + 1; j < size; j++) if (similarity[i * size + j] >= t) parent[find(i)] = find(j);
    }
    const roots = Int32Array.from({ length: size }, (_, i) => find(i));
    const sizes = new Map<number, number>();
    for (const root of roots) sizes.set(root, (sizes.get(root) ?? 0) + 1);
    if (size < 2 || Math.max(...sizes.values()) <= Math.max(1, MAX_GROUP_SHARE * size) || t > 1) return roots;
  }
}

/** Whole sessions per fold (the largest first, each to the emptiest fold): every label of a session is held out together. */
function sessionFolds(sessions: readonly string[], folds: number): Int32Array {
  const sizes = new Map<string, number>();
  for (const session of sessions) sizes.set(session, (sizes.get(session) ?? 0) + 1);
  const ordered = [...sizes].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const filled = new Array<number>(Math.min(folds, ordered.length)).fill(0);
  const foldOf = new Map<string, number>();
  for (const [session, size] of ordered) {
    const target = filled.indexOf(Math.min(...filled));
    filled[target] += size;
    foldOf.set(session, target);
  }
  return Int32Array.from(sessions, (session) => foldOf.get(session)!);
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = values.sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Up to `folds` folds of whole groups, balanced per label: each label's groups, largest
 * first (ties in seeded order), go to the fold holding the fewest of that label's frames.
 * Returns the fold of each frame; a label with fewer groups than folds is in fewer folds.
 */
export function groupedFolds(groups: FrameGroups, labels: readonly number[], folds: number, seed = 1): Int32Array {
  if (!Number.isInteger(folds) || folds < 2) throw new LaneVisionError('EVALUATION_INPUT_INVALID', `folds must be a whole number of 2 or more, got ${folds}`);
  const byLabel = new Map<number, Map<number, number[]>>();
  labels.forEach((label, i) => {
    const ofLabel = byLabel.get(label) ?? byLabel.set(label, new Map()).get(label)!;
    const id = groups.group[i];
    (ofLabel.get(id) ?? ofLabel.set(id, []).get(id)!).push(i);
  });
  const random = createRandom(seed);
  const fold = new Int32Array(labels.length);
  if (groups.sessions) return sessionFolds(groups.sessions, folds);
  // Each label starts filling at another fold, so small labels do not all land in fold 0.
  let offset = 0;
  for (const label of [...byLabel.keys()].sort((a, b) => a - b)) {
    const lists = shuffleInPlace([...byLabel.get(label)!.values()], random).sort((a, b) => b.length - a.length);
    const filled = new Array<number>(folds).fill(0);
    for (const list of lists) {
      let target = offset % folds;
      for (let k = 0; k < folds; k++) {
        const f = (offset + k) % folds;
        if (filled[f] < filled[target]) target = f;
      }
      filled[target] += list.length;
      for (const i of list) fold[i] = target;
    }
    offset++;
  }
  return fold;
}
