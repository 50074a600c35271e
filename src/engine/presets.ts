/**
 * Named backbones with their official download locations and input conventions.
 * Pure data: the loader reads this table and nothing else knows about presets.
 *
 * Sources checked (not guessed):
 * - MobileNet V1 layers models: tfjs-models storage, as loaded by Teachable Machine's image
 *   library for `version: 1` (googlecreativelab/teachablemachine-community,
 *   libraries/image/src/custom-mobilenet.ts: `mobilenet_v1_${alpha}_224/model.json`, alpha
 *   "0.25" | "0.50" | "0.75" | "1.0", training layer `conv_pw_13_relu`). Keras MobileNet
 *   weights: inputs scaled to [-1,1]; 1000-class softmax output.
 * - MobileNet V2: the exact URLs Teachable Machine uses for `version: 2`
 *   (`teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha.toFixed(2)}_224_no_top`,
 *   alpha 0.35 | 0.50 | 0.75 | 1.00, training layer `out_relu` + global average pool, inputs
 *   in [-1,1]). The 1280-d output does not shrink with alpha (Keras keeps the last conv at 1280).
 * - MobileNet V3 small/large feature vectors and Inception V3: TF Hub TF.js deployments
 *   (tensorflow/tfhub.dev assets/docs/google/models/imagenet/.../default/tfjs/1.md). TF Hub
 *   image models take [0,1] inputs; V3 small gives 1024-d, V3 large 1280-d, Inception V3
 *   2048-d at 299x299 (`inception_v3/feature_vector/3` is the default module of the classic
 *   `retrain.py` image-retraining example). tfhub.dev now redirects to Kaggle Models; for V3
 *   the Kaggle addresses (`mobilenet-v3/TfJs/<variant>/1`, as in the TF.js transfer-learning
 *   codelab) are listed as second choice.
 * - EfficientNet-Lite: TF Hub publishes lite0..lite4 only as TF Lite and TF SavedModel, no
 *   TF.js conversion, so there is no preset; a converted folder loads like any other model.
 */
import type { InputRange, ModelFormat } from './types.js';

export interface BackbonePreset {
  readonly name: string;
  readonly description: string;
  /** model.json locations (or TF Hub / Kaggle model URLs), first choice first. */
  readonly urls: readonly string[];
  readonly format: ModelFormat;
  readonly inputSize: { readonly width: number; readonly height: number };
  readonly inputRange: InputRange;
  /** Layer (layers model) or node (graph model) giving features; absent = the model output. */
  readonly featureLayer?: string;
  /** Length of the feature vector as documented; checked against the model at load. */
  readonly featureSize: number;
  /** Output classes of the model's own classifier, if it has one. */
  readonly classes?: 'imagenet-1000' | 'imagenet-1001';
}

const TFJS_MODELS = 'https://storage.googleapis.com/tfjs-models/tfjs';
const TEACHABLE_MACHINE = 'https://storage.googleapis.com/teachable-machine-models';

function mobilenetV1(alpha: '0.25' | '0.50' | '0.75' | '1.0', featureSize: number): BackbonePreset {
  return {
    name: `mobilenet-v1-${alpha === '1.0' ? '1.00' : alpha}`,
    description: `MobileNet V1 alpha ${alpha}, 224x224, ImageNet classifier (tfjs-models, Teachable Machine V1 backbone)`,
    urls: [`${TFJS_MODELS}/mobilenet_v1_${alpha}_224/model.json`],
    format: 'layers',
    inputSize: { width: 224, height: 224 },
    inputRange: '[-1,1]',
    featureLayer: 'conv_pw_13_relu',
    featureSize,
    classes: 'imagenet-1000',
  };
}

function mobilenetV2(alpha: '0.35' | '0.50' | '0.75' | '1.00'): BackbonePreset {
  return {
    name: `mobilenet-v2-${alpha}`,
    description: `MobileNet V2 alpha ${alpha}, 224x224, no top (the backbone Teachable Machine trains on)`,
    urls: [`${TEACHABLE_MACHINE}/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha}_224_no_top/model.json`],
    format: 'layers',
    inputSize: { width: 224, height: 224 },
    inputRange: '[-1,1]',
    featureLayer: 'out_relu',
    featureSize: 1280,
  };
}

function tfHubFeatureVector(
  name: string,
  description: string,
  tfHubPath: string,
  kagglePath: string | undefined,
  size: number,
  featureSize: number,
): BackbonePreset {
  const tfHub = `https://tfhub.dev/google/tfjs-model/imagenet/${tfHubPath}`;
  return {
    name,
    description,
    urls: kagglePath ? [tfHub, `https://www.kaggle.com/models/google/${kagglePath}`] : [tfHub],
    format: 'graph',
    inputSize: { width: size, height: size },
    inputRange: '[0,1]',
    featureSize,
  };
}

export const BACKBONE_PRESETS: readonly BackbonePreset[] = [
  mobilenetV1('0.25', 256),
  mobilenetV1('0.50', 512),
  mobilenetV1('0.75', 768),
  mobilenetV1('1.0', 1024),
  mobilenetV2('0.35'),
  mobilenetV2('0.50'),
  mobilenetV2('0.75'),
  mobilenetV2('1.00'),
  tfHubFeatureVector(
    'mobilenet-v3-small',
    'MobileNet V3 small 1.0, 224x224, ImageNet feature vector (TF Hub / Kaggle, graph model)',
    'mobilenet_v3_small_100_224/feature_vector/5/default/1',
    'mobilenet-v3/TfJs/small-100-224-feature-vector/1',
    224,
    1024,
  ),
  tfHubFeatureVector(
    'mobilenet-v3-large',
    'MobileNet V3 large 1.0, 224x224, ImageNet feature vector (TF Hub / Kaggle, graph model)',
    'mobilenet_v3_large_100_224/feature_vector/5/default/1',
    'mobilenet-v3/TfJs/large-100-224-feature-vector/1',
    224,
    1280,
  ),
  tfHubFeatureVector(
    'inception-v3',
    'Inception V3, 299x299, ImageNet feature vector (TF Hub / Kaggle, graph model; the classic retraining backbone)',
    'inception_v3/feature_vector/3/default/1',
    undefined, // Kaggle renumbered its versions; only the tfhub.dev address (which redirects) is documented
    299,
    2048,
  ),
];

/** The preset called `name` (case-insensitive; "mobilenet-v1-1.0" and "-1.00" both work). */
export function findPreset(name: string): BackbonePreset | undefined {
  const wanted = name.trim().toLowerCase();
  return BACKBONE_PRESETS.find((p) => p.name === wanted || p.name === wanted.replace(/-1\.0$/, '-1.00'));
}

export function presetNames(): string[] {
  return BACKBONE_PRESETS.map((p) => p.name);
}
