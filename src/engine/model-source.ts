/**
 * Turns the `source` of a BackboneSpec into where the files are: a local folder, or
 * model.json URLs to download (presets and TF Hub / Kaggle URLs resolved the way tfjs does).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LaneVisionError } from '../errors.js';
import { type BackbonePreset, findPreset, presetNames } from './presets.js';

export type ResolvedSource =
  | { kind: 'folder'; path: string }
  | { kind: 'url'; /** model.json URLs, first choice first */ modelJsonUrls: string[]; preset?: BackbonePreset };

/** tfjs `loadGraphModel(url, {fromTFHub: true})` asks TF Hub for this file (tfjs-converter getTFHubUrl). */
const TFHUB_MODEL_FILE = 'model.json?tfjs-format=file';

function isModelHubUrl(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return (
    host === 'tfhub.dev' ||
    host.endsWith('.tfhub.dev') ||
    ((host === 'www.kaggle.com' || host === 'kaggle.com') && url.pathname.startsWith('/models/'))
  );
}

/**
 * The model.json URL for a model URL: TF Hub / Kaggle model URLs get
 * `/model.json?tfjs-format=file` appended (as tfjs's fromTFHub does), folder URLs get
 * `/model.json`, and anything ending in `.json` is used as it is.
 */
export function resolveModelJsonUrl(modelUrl: string): string {
  let url: URL;
  try {
    url = new URL(modelUrl);
  } catch (err) {
    throw new LaneVisionError('MODEL_INVALID', `"${modelUrl}" is not a valid URL`, { cause: err });
  }
  if (url.pathname.toLowerCase().endsWith('.json')) return url.toString();
  if (isModelHubUrl(url)) {
    const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}/`;
    return base + TFHUB_MODEL_FILE;
  }
  url.pathname = url.pathname.replace(/\/+$/, '') + '/model.json';
  return url.toString();
}

/**
 * Where a file listed in model.json lives, relative to the model.json URL: same folder, same
 * query string (TF Hub needs `?tfjs-format=file` on every file). Mirrors tfjs's http handler.
 */
export function siblingUrl(modelJsonUrl: string, file: string): string {
  const lastSlash = modelJsonUrl.lastIndexOf('/');
  const lastQuery = modelJsonUrl.lastIndexOf('?');
  const prefix = modelJsonUrl.substring(0, lastSlash + 1);
  const suffix = lastQuery > lastSlash ? modelJsonUrl.substring(lastQuery) : '';
  return prefix + file + suffix;
}

export function isModelHubModelJsonUrl(modelJsonUrl: string): boolean {
  try {
    return isModelHubUrl(new URL(modelJsonUrl));
  } catch {
    return false;
  }
}

export function resolveSource(source: string): ResolvedSource {
  const text = typeof source === 'string' ? source.trim() : '';
  if (!text) throw new LaneVisionError('MODEL_NOT_FOUND', 'No model source given: name a preset, a model folder or a URL');
  if (/^https?:\/\//i.test(text)) return { kind: 'url', modelJsonUrls: [resolveModelJsonUrl(text)] };
  if (/^file:/i.test(text)) {
    try {
      return { kind: 'folder', path: fileURLToPath(text) };
    } catch (err) {
      throw new LaneVisionError('MODEL_INVALID', `"${text}" is not a valid file:// URL`, { cause: err });
    }
  }
  const preset = findPreset(text);
  if (preset) return { kind: 'url', modelJsonUrls: preset.urls.map(resolveModelJsonUrl), preset };
  // A Windows drive path ("C:\...") is a path, not a URL scheme.
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(text)) {
    throw new LaneVisionError(
      'MODEL_INVALID',
      `Unsupported model source "${text}": use a preset (${presetNames().join(', ')}), a folder path, file:// or http(s)://`,
    );
  }
  return { kind: 'folder', path: path.resolve(text) };
}
