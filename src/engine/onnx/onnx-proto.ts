/**
 * Writes the ONNX protobuf (`onnx.proto`, IR version 7) for the small subset of it the
 * converter emits. Written by hand because no protobuf library is installed in this
 * project: `protobufjs` (with these messages declared from onnx.proto) is the well-kept
 * replacement, requested in the lane report; until then this one file is the whole encoder.
 *
 * Subset (field numbers from onnx/onnx.proto; nothing else is ever written):
 *   ModelProto          ir_version=1 producer_name=2 producer_version=3 doc_string=6 graph=7
 *                       opset_import=8 metadata_props=14
 *   OperatorSetIdProto  domain=1 version=2
 *   StringStringEntry   key=1 value=2
 *   GraphProto          node=1 name=2 initializer=5 input=11 output=12
 *   NodeProto           input=1 output=2 name=3 op_type=4 attribute=5
 *   AttributeProto      name=1 f=2 i=3 s=4 ints=8 type=20
 *   TensorProto         dims=1 data_type=2 name=8 raw_data=9 (little-endian, as ONNX requires)
 *   ValueInfoProto      name=1 type=2
 *   TypeProto           tensor_type=1;  TypeProto.Tensor elem_type=1 shape=2
 *   TensorShapeProto    dim=1;  Dimension dim_value=1 dim_param=2
 * Repeated scalars are written unpacked (proto2 default); readers accept either form.
 */

export const ONNX_IR_VERSION = 7;
export const ONNX_OPSET = 13;

/** TensorProto.DataType values used here. */
export const OnnxDataType = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7 } as const;
export type OnnxElementType = keyof typeof OnnxDataType;

/** AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type OnnxAttribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: readonly number[] };

export interface OnnxNode {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attributes: Record<string, OnnxAttribute>;
}

/** Initializer data: float weights, int64 shapes, and the int8 / uint8 / int32 tensors of a quantised model. */
export type OnnxTensorData = Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array;

export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  type: OnnxElementType;
  data: OnnxTensorData;
}

export interface OnnxValueInfo {
  name: string;
  type: OnnxElementType;
  /**
   * Fixed sizes, or a name for a size known only at run time (the batch); absent: shape not
   * stated (intermediate values exposed for calibration).
   */
  dims?: readonly (number | string)[];
}

export interface OnnxModel {
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  producer: { name: string; version: string };
  docString?: string;
  metadata?: Record<string, string>;
}

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_BYTES = 2;
const utf8 = new TextEncoder();

/** Append-only protobuf writer: fields are written in order; nested messages are finished writers. */
class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private varint(value: bigint): void {
    // int64 fields hold negative numbers as their 64-bit two's complement.
    let v = value < 0n ? value + (1n << 64n) : value;
    const bytes: number[] = [];
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v > 0n);
    this.push(Uint8Array.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    this.varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_BYTES);
    this.varint(BigInt(value.length));
    this.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** Embeds a nested message without flattening it: weights are copied once, by the final `finish`. */
  message(field: number, inner: ProtoWriter): this {
    this.tag(field, WIRE_BYTES);
    this.varint(BigInt(inner.length));
    for (const chunk of inner.chunks) this.push(chunk);
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }
}

function encodeAttribute(name: string, attribute: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (attribute.kind) {
    case 'float':
      return w.float(2, attribute.value).int(20, AttributeType.FLOAT);
    case 'int':
      return w.int(3, attribute.value).int(20, AttributeType.INT);
    case 'string':
      return w.string(4, attribute.value).int(20, AttributeType.STRING);
    case 'ints':
      for (const i of attribute.value) w.int(8, i);
      return w.int(20, AttributeType.INTS);
  }
}

function encodeNode(node: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name).string(4, node.op);
  for (const [name, attribute] of Object.entries(node.attributes)) w.message(5, encodeAttribute(name, attribute));
  return w;
}

/** Raw little-endian bytes of a typed array (copied only on big-endian hosts). */
function littleEndianBytes(data: OnnxTensorData): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return view;
  const out = new Uint8Array(view.length);
  const width = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < view.length; i += width) for (let b = 0; b < width; b++) out[i + b] = view[i + width - 1 - b];
  return out;
}

function encodeTensor(tensor: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of tensor.dims) w.int(1, d);
  return w.int(2, OnnxDataType[tensor.type]).string(8, tensor.name).bytes(9, littleEndianBytes(tensor.data));
}

function encodeValueInfo(info: OnnxValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, OnnxDataType[info.type]);
  if (info.dims) {
    const shape = new ProtoWriter();
    for (const d of info.dims) {
      shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
    }
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, info.name).message(2, new ProtoWriter().message(1, tensorType));
}

/** Serialises a model to the bytes of a `.onnx` file. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const graph = new ProtoWriter();
  for (const node of model.nodes) graph.message(1, encodeNode(node));
  graph.string(2, model.graphName);
  for (const tensor of model.initializers) graph.message(5, encodeTensor(tensor));
  for (const input of model.inputs) graph.message(11, encodeValueInfo(input));
  for (const output of model.outputs) graph.message(12, encodeValueInfo(output));

  const w = new ProtoWriter()
    .int(1, ONNX_IR_VERSION)
    .string(2, model.producer.name)
    .string(3, model.producer.version);
  if (model.docString) w.string(6, model.docString);
  w.message(7, graph).message(8, new ProtoWriter().string(1, '').int(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  return w.finish();
}
