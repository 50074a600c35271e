/**
 * ONNX export: the backbone converted by the project's own tfjs → ONNX converter
 * (src/engine/onnx), followed by the head as MatMul + Add (+ Relu) + Softmax, in one model
 * any ONNX Runtime runs (opset ONNX_OPSET). Input `image`: float32 NHWC [batch, h, w, 3]
 * in the backbone's input range; output `probabilities` [batch, labels].
 */
import type { ModelFiles } from '../engine/model-files.js';
import type { InputRange } from '../engine/types.js';
import { appendBackboneFeatures } from '../engine/onnx/convert.js';
import { GraphBuilder, attr } from '../engine/onnx/onnx-graph.js';
import { ONNX_OPSET, encodeOnnxModel } from '../engine/onnx/onnx-proto.js';
import type { ExportHeadLayers } from './head-layers.js';

export const ONNX_EXPORT_INPUT = 'image';
export const ONNX_EXPORT_OUTPUT = 'probabilities';
export { ONNX_OPSET };

/** Below this norm a feature vector counts as zero (predictHead returns zeros for it, so does x / eps). */
const NORM_FLOOR = 1e-12;

export interface OnnxExportInput {
  files: ModelFiles;
  featureLayer: string;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  head: ExportHeadLayers;
  labels: readonly string[];
  docString: string;
  metadata: Record<string, string>;
}

export async function exportOnnx(input: OnnxExportInput): Promise<Uint8Array> {
  const g = new GraphBuilder();
  const inputName = g.uniqueName(ONNX_EXPORT_INPUT);
  const outputName = g.uniqueName(ONNX_EXPORT_OUTPUT);
  const image = g.toNchw({ name: inputName, rank: 4, layout: 'plain' }, 'the input');
  let x = await appendBackboneFeatures(g, { files: input.files, featureLayer: input.featureLayer, inputSize: input.inputSize, inputRange: input.inputRange }, image);
  if (input.head.normalise) {
    const norm = g.node('ReduceL2', [x], { axes: attr.ints([1]), keepdims: attr.int(1) }, 'head_norm');
    const floored = g.node('Max', [norm, g.floatConstant('head_norm_floor', [], [NORM_FLOOR])], {}, 'head_norm_floored');
    x = g.node('Div', [x, floored], {}, 'head_normalised');
  }
  input.head.layers.forEach((layer, i) => {
    const last = i === input.head.layers.length - 1;
    const product = g.node('MatMul', [x, g.floatConstant(`head_${i}_kernel`, [layer.inputSize, layer.outputSize], layer.kernel)], {}, `head_${i}_matmul`);
    const biased = g.node('Add', [product, g.floatConstant(`head_${i}_bias`, [layer.outputSize], layer.bias)], {}, `head_${i}_logits`);
    if (last) g.nodeTo('Softmax', [biased], outputName, { axis: attr.int(-1) });
    else x = layer.activation === 'relu' ? g.node('Relu', [biased], {}, `head_${i}_relu`) : biased;
  });
  const { width, height } = input.inputSize;
  const model = g.finish(
    [{ name: inputName, type: 'float32', dims: ['batch', height, width, 3] }],
    [{ name: outputName, type: 'float32', dims: ['batch', input.labels.length] }],
    {
      graphName: 'lane-vision-export',
      producer: { name: 'lane-vision', version: '1' },
      docString: input.docString,
      metadata: { ...input.metadata, labels: JSON.stringify(input.labels) },
    },
  );
  return encodeOnnxModel(model);
}
