/**
 * Stable integer codes for labels. A PLC reads "code 3" from a register, so a label must
 * keep its code across retrains, a new label takes the next unused code, and a code once
 * given is never handed to another label (a removed label keeps it, should it come back).
 */
import { validateLabel } from '../dataset/labels.js';
import { LaneVisionError } from '../errors.js';
import type { LabelCode } from './types.js';

/** 0 stays free so a PLC can read it as "no decision". */
export const FIRST_LABEL_CODE = 1;

export interface LabelCodeRegistry {
  /** Every label ever seen, with its code. */
  codes: LabelCode[];
  /** The code the next new label gets; above every code ever given. */
  nextCode: number;
}

export function emptyLabelCodeRegistry(): LabelCodeRegistry {
  return { codes: [], nextCode: FIRST_LABEL_CODE };
}

/** Refuses duplicate labels and any label the dataset would refuse (the reserved "unknown" included). */
export function validateLabels(labels: readonly unknown[]): asserts labels is readonly string[] {
  if (!Array.isArray(labels) || labels.length === 0) {
    throw new LaneVisionError('LABELS_INVALID', 'A model needs at least one label');
  }
  const seen = new Set<string>();
  for (const label of labels) {
    if (typeof label !== 'string' || label.trim() === '') {
      throw new LaneVisionError('LABELS_INVALID', `Label ${JSON.stringify(label)} is not a non-empty text`);
    }
    try {
      validateLabel(label);
    } catch (err) {
      throw new LaneVisionError('LABELS_INVALID', (err as Error).message);
    }
    if (seen.has(label)) throw new LaneVisionError('LABELS_INVALID', `Label "${label}" appears twice`);
    seen.add(label);
  }
}

/**
 * Codes for `labels` (same order), and the registry after giving new labels theirs.
 * Pure: the caller persists the returned registry.
 */
export function assignLabelCodes(
  labels: readonly string[],
  registry: LabelCodeRegistry = emptyLabelCodeRegistry(),
): { classes: LabelCode[]; registry: LabelCodeRegistry; added: string[] } {
  validateLabels(labels);
  const known = new Map(registry.codes.map((c) => [c.label, c.code]));
  const used = Math.max(FIRST_LABEL_CODE - 1, ...registry.codes.map((c) => c.code));
  let nextCode = Math.max(registry.nextCode, used + 1, FIRST_LABEL_CODE);
  const codes = [...registry.codes];
  const added: string[] = [];
  const classes = labels.map((label) => {
    let code = known.get(label);
    if (code === undefined) {
      code = nextCode++;
      known.set(label, code);
      codes.push({ label, code });
      added.push(label);
    }
    return { label, code };
  });
  return { classes, registry: { codes, nextCode }, added };
}

/**
 * Joins codes found in several places (the registry file and each version's metadata)
 * into one registry; a label seen with two codes means the store was edited by hand.
 */
export function mergeLabelCodes(registry: LabelCodeRegistry, found: readonly LabelCode[]): LabelCodeRegistry {
  const byLabel = new Map(registry.codes.map((c) => [c.label, c.code]));
  const byCode = new Map(registry.codes.map((c) => [c.code, c.label]));
  const codes = [...registry.codes];
  let nextCode = Math.max(registry.nextCode, FIRST_LABEL_CODE);
  for (const { label, code } of found) {
    const had = byLabel.get(label);
    const owner = byCode.get(code);
    if (had !== undefined && had !== code) {
      throw new LaneVisionError('MODEL_CORRUPT', `Label "${label}" has code ${had} in one place and ${code} in another`);
    }
    if (owner !== undefined && owner !== label) {
      throw new LaneVisionError('MODEL_CORRUPT', `Code ${code} is given to both "${owner}" and "${label}"`);
    }
    if (had === undefined) {
      byLabel.set(label, code);
      byCode.set(code, label);
      codes.push({ label, code });
    }
    nextCode = Math.max(nextCode, code + 1);
  }
  return { codes, nextCode };
}
