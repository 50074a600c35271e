/**
 * Whether a stored head fits a loaded backbone. A head predicts garbage on features from
 * another network, another layer, another frame size or another pixel scaling, so a
 * classifier asks this before it uses a model version.
 *
 * Equal engine ids (src/engine/backbone-id.ts) mean the same features. The same network
 * can also arrive another way: the same files from another folder or URL, the preset an
 * import recognised, or the same weight bytes under another model.json (`fingerprintWeights`);
 * those fit too, when the features come from the same layer.
 */
import { parseBackboneId } from '../engine/backbone-id.js';
import type { InputRange } from '../engine/types.js';
import type { BackboneDescriptor } from './types.js';

/** What `backboneCompatibility` needs of a loaded backbone; an engine `Backbone` can be passed as it is. */
export interface LoadedBackboneIdentity {
  id: string;
  featureSize: number;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  preset?: string;
  /** `fingerprintWeights` of its weights, when known (the engine does not report it yet). */
  weightsFingerprint?: string;
}

export interface BackboneCompatibility {
  /** The head can classify this backbone's features. */
  fits: boolean;
  /** The ids are equal: the very backbone the head was trained on. */
  exact: boolean;
  /** Why it fits without being exact, or why it does not fit. */
  reason?: string;
}

/**
 * Whether a head stored with `descriptor` fits `backbone`: exact when the ids are equal;
 * fits (not exact) when feature size, input size and range match and the backbone is the
 * same network with the features taken at the same layer; never when the feature sizes
 * differ.
 */
export function backboneCompatibility(descriptor: BackboneDescriptor, backbone: LoadedBackboneIdentity): BackboneCompatibility {
  const refuse = (why: string): BackboneCompatibility => ({
    fits: false,
    exact: false,
    reason: `The model was trained on backbone ${descriptor.id}, not on the loaded ${backbone.id}: ${why}`,
  });
  const fits = (why: string): BackboneCompatibility => ({ fits: true, exact: false, reason: why });

  if (descriptor.featureSize !== backbone.featureSize) {
    return refuse(`its head takes ${descriptor.featureSize} features, the backbone gives ${backbone.featureSize}`);
  }
  if (descriptor.id === backbone.id) return { fits: true, exact: true };
  const want = descriptor.inputSize;
  const have = backbone.inputSize;
  if (want.width !== have.width || want.height !== have.height) {
    return refuse(`it was trained on ${want.width}x${want.height} frames, the backbone takes ${have.width}x${have.height}`);
  }
  if (descriptor.inputRange !== backbone.inputRange) {
    return refuse(`it was trained with pixels scaled to ${descriptor.inputRange}, the backbone scales them to ${backbone.inputRange}`);
  }

  const stored = parseBackboneId(descriptor.id);
  const loaded = parseBackboneId(backbone.id);
  const layers = [descriptor.featureLayer, stored?.featureLayer, ...(descriptor.featureLayerAliases ?? [])].filter(
    (name): name is string => typeof name === 'string' && name !== '',
  );
  const sameLayer = loaded !== undefined && layers.some((name) => sameLayerName(name, loaded.featureLayer));
  const otherLayer = (): BackboneCompatibility =>
    refuse(`the same network, but its features come from layer ${loaded?.featureLayer ?? '(unknown)'} instead of ${layers[0] ?? '(unknown)'}`);

  if (stored && loaded && stored.weights === loaded.weights) {
    return sameLayer ? fits(`the same model files (weights ${loaded.weights}), loaded from ${loaded.origin} instead of ${stored.origin}`) : otherLayer();
  }
  if (descriptor.weightsFingerprint && backbone.weightsFingerprint === descriptor.weightsFingerprint) {
    return sameLayer ? fits(`the same weights (sha256 ${descriptor.weightsFingerprint.slice(0, 16)}…) under another model.json`) : otherLayer();
  }
  // A preset stands for its weights only where the descriptor claims it without having
  // loaded it; a head trained on a preset download keeps to that download's fingerprint.
  const preset = descriptor.preset;
  if (preset && backbone.preset === preset && stored?.origin !== `preset:${preset}`) {
    return sameLayer ? fits(`preset ${preset}, whose features the model was made on`) : otherLayer();
  }
  if (stored?.origin.startsWith('preset:') && stored.origin === loaded?.origin) {
    return refuse(`the files of ${stored.origin} differ from those it was trained on (weights ${loaded.weights}, not ${stored.weights})`);
  }
  if (descriptor.weightsFingerprint && !backbone.weightsFingerprint) {
    return refuse('other model files, and the backbone reports no weights fingerprint to show they hold the same network');
  }
  return refuse('they are different networks (other weights)');
}

/**
 * Layer names as the engine reports them: a layer inside a nested model is `model/layer`,
 * so "model2/out_relu" and "out_relu" name the same layer; "a/x" and "b/x" do not.
 */
function sameLayerName(a: string, b: string): boolean {
  return a === b || a.endsWith(`/${b}`) || b.endsWith(`/${a}`);
}
