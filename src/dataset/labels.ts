/**
 * Labels become folder names, so every label passes these rules before it touches the
 * file system. Nodes, MQTT commands, the console, folder datasets and model imports call
 * `validateLabel` too, so a bad label is refused with the same message wherever it comes from.
 */
import { UNKNOWN_LABEL } from '../classify/types.js';
import { LaneVisionError } from '../errors.js';

/** Longest label in UTF-8 bytes: well under the 255-byte file-name limit of common file systems. */
export const MAX_LABEL_BYTES = 128;

/** The manifest sits next to the label folders, so no label may take its name. */
export const MANIFEST_FILE_NAME = 'lane-vision-dataset.json';

// Windows refuses these as file names, with or without an extension ("nul.txt" too).
const WINDOWS_RESERVED = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])$/i;
// Characters Windows forbids in names; refused everywhere so a dataset copies across systems.
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;
// C0/C1 controls (NUL included), line/paragraph separators, and bidi overrides that make a
// label display differently from what it is.
const INVISIBLE_OR_CONTROL = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function invalid(label: unknown, rule: string): LaneVisionError {
  const shown = typeof label === 'string' ? JSON.stringify(label.length > 60 ? `${label.slice(0, 60)}…` : label) : String(label);
  return new LaneVisionError('LABEL_INVALID', `Label ${shown} is not allowed: ${rule}.`);
}

/**
 * Checks a label and returns it in Unicode NFC form (so "é" typed two ways is one label).
 * Throws LaneVisionError LABEL_INVALID naming the rule that failed.
 */
export function validateLabel(label: unknown): string {
  if (typeof label !== 'string') throw invalid(label, 'a label must be text');
  if (LONE_SURROGATE.test(label)) throw invalid(label, 'it contains broken Unicode (a lone surrogate)');
  const name = label.normalize('NFC');
  if (name.length === 0) throw invalid(label, 'it is empty');
  if (name.trim().length === 0) throw invalid(label, 'it is only whitespace');
  if (name.includes('\0')) throw invalid(label, 'it contains a NUL character');
  if (INVISIBLE_OR_CONTROL.test(name)) throw invalid(label, 'it contains control or invisible direction characters');
  if (name.includes('/') || name.includes('\\')) throw invalid(label, 'it contains a path separator ("/" or "\\")');
  if (name.startsWith('.')) throw invalid(label, 'it starts with a dot (hidden folder, "." or "..")');
  if (WINDOWS_FORBIDDEN.test(name)) throw invalid(label, 'it contains one of < > : " | ? * (not allowed in Windows file names)');
  if (/^\s/u.test(name)) throw invalid(label, 'it starts with whitespace');
  if (/[\s.]$/u.test(name)) throw invalid(label, 'it ends with a dot or whitespace (Windows drops those)');
  const stem = name.split('.')[0].trimEnd();
  if (WINDOWS_RESERVED.test(stem)) throw invalid(label, `"${stem}" is a reserved device name on Windows`);
  if (name.toLowerCase() === MANIFEST_FILE_NAME) throw invalid(label, 'it is the name of the dataset manifest file');
  if (isReservedLabel(name)) throw invalid(label, `"${UNKNOWN_LABEL}" is reserved for frames a classifier does not accept`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_LABEL_BYTES) throw invalid(label, `it is ${bytes} bytes long in UTF-8; the limit is ${MAX_LABEL_BYTES}`);
  return name;
}

/**
 * True for the classifier's rejection label, in any letter case (folders named "Unknown"
 * and "unknown" are one folder on Windows and macOS, and a dashboard could not tell them apart).
 */
export function isReservedLabel(label: string): boolean {
  return label.normalize('NFC').toLowerCase() === UNKNOWN_LABEL;
}

/** The label a folder found on disk stands for, or why it is not one (e.g. ".git"). */
export function labelOfFolder(name: string): { label: string } | { reason: string } {
  try {
    return { label: validateLabel(name) };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}
