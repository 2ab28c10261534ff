// Float16 weights straight into a float32 backend tensor, converted by the backend itself.
//
// Released checkpoints are float16; widening 1.5 G values in JavaScript costs ~10 ns each here (about half of
// a full-size load). On tfjs-node the bits go to TensorFlow untouched (zero-copy, as int32 pairs), where
// Bitcast → Cast(half → float) runs natively and multi-threaded; the JavaScript copy of the weights is never
// made. This reads tfjs-node's binding (4.22.0). With the native addon, views (row slices, transposes) are
// widened and re-laid in one native pass: into memory TensorFlow adopts (tensorflow), into a new tensor's
// wasm heap memory (wasm), or into host arrays that become host-resident tensors (wasm, the 'host'
// placement). Any other backend, or an unexpected binding, gets null and the caller widens in JavaScript.
import * as tf from '@tensorflow/tfjs-core';
import { heapF32, loadBlasAddon, type BlasAddon, type WasmBackendLike } from './blas.ts';
import { adoptHostArrays, hostTensorsAvailable } from './host-tensors.ts';

const TF_HALF = 19; // TF_DataType in tensorflow/c/tf_datatype.h (not exported by the binding)

interface OpAttr {
  name: string;
  type: number;
  value: number | boolean;
}
interface OutputMeta {
  id: number;
  shape: number[];
  dtype: number;
}
interface TfjsNodeBinding {
  TF_INT32: number;
  TF_FLOAT: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_BOOL: number;
  createTensor(shape: number[], dtype: number, values: Int32Array | Float32Array): number;
  executeOp(name: string, attrs: OpAttr[], inputs: number[], numOutputs: number): OutputMeta[];
  deleteTensor(id: number): void;
}
interface TfjsNodeBackend {
  binding: TfjsNodeBinding;
  createOutputTensor(meta: OutputMeta): tf.Tensor;
}

function nodeBackend(): TfjsNodeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const be = tf.backend() as unknown as Partial<TfjsNodeBackend>;
  const b = be.binding;
  if (!b || typeof b.executeOp !== 'function' || typeof b.createTensor !== 'function' || typeof be.createOutputTensor !== 'function') {
    return null;
  }
  return be as TfjsNodeBackend;
}

/**
 * A float32 tensor of `shape` from IEEE half `bits`, converted by the active backend, or null where the
 * backend has no native path (the caller then widens in JavaScript). `bits` must not be modified afterwards
 * while the returned tensor's producer may still read it (the conversion is synchronous, so in practice: not
 * during this call).
 */
export function halfToFloatTensor(bits: Uint16Array, shape: readonly number[]): tf.Tensor | null {
  const be = nodeBackend();
  const n = bits.length;
  if (!be || n === 0 || n % 2 !== 0) return null;
  const b = be.binding;
  const pairs = bits.byteOffset % 4 === 0 ? new Int32Array(bits.buffer, bits.byteOffset, n / 2) : new Int32Array(bits.slice().buffer);
  const type = (name: string, value: number): OpAttr => ({ name, type: b.TF_ATTR_TYPE, value });
  const packed = b.createTensor([n / 2], b.TF_INT32, pairs);
  let half: OutputMeta;
  try {
    [half] = b.executeOp('Bitcast', [type('T', b.TF_INT32), type('type', TF_HALF)], [packed], 1);
  } finally {
    b.deleteTensor(packed);
  }
  let wide: OutputMeta;
  try {
    [wide] = b.executeOp('Cast', [type('SrcT', TF_HALF), type('DstT', b.TF_FLOAT), { name: 'Truncate', type: b.TF_ATTR_BOOL, value: false }], [half.id], 1);
  } finally {
    b.deleteTensor(half.id);
  }
  const flat = be.createOutputTensor(wide); // [n/2, 2]
  const out = tf.reshape(flat, [...shape]);
  flat.dispose();
  return out;
}

/** One layout of a [rows, …] tensor: rows [start, start + count) of the first axis, then (2-D only) transposed. */
export interface RelayoutView {
  rows?: readonly [number, number];
  transpose?: boolean;
}

/** Throws unless `view` is a layout of a tensor of `shape` (both re-layout paths check with this). */
export function checkView(shape: readonly number[], view: RelayoutView): void {
  if (view.rows) {
    const [start, count] = view.rows;
    const rows = shape[0] ?? 0;
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= rows)) {
      throw new Error(`rows [${start}, ${start}+${count}) are outside a tensor of shape [${shape}]`);
    }
  }
  if (view.transpose && shape.length !== 2) throw new Error(`a transposed view needs a 2-D tensor, got [${shape}]`);
}

let halfTable: Float32Array | null = null;

/**
 * The 65536-entry half → float table the reader widens with in JavaScript; the native conversion uses the
 * same table, so every path gives the same bits. Set once by the safetensors reader.
 */
export function setHalfTable(table: Float32Array): void {
  if (table.length !== 65536) throw new Error(`a half table has 65536 entries, got ${table.length}`);
  halfTable = table;
}

/**
 * Float32 tensors of the given layouts of a row-major tensor (half bits or float32 values), each converted
 * and re-laid in one native pass straight into memory TensorFlow then owns without a copy (tfjs-node binds
 * the typed array) — no torch-layout tensor, no TensorFlow Cast, Slice or Transpose. Null where that path is
 * not available (another backend, no addon, no table for half bits): the caller re-lays with tf ops.
 */
export function relayoutTensors(data: Uint16Array | Float32Array, shape: readonly number[], views: readonly RelayoutView[]): tf.Tensor[] | null {
  if (!data.length || !nativeRelayout(data instanceof Uint16Array ? 'F16' : 'F32')) return null;
  const table = data instanceof Uint16Array ? halfTable : null;
  const be = nodeBackend();
  return be ? relaidTensors(be, data, shape, views, table) : relaidHeapTensors(data, shape, views, table);
}

/**
 * On wasm: each view widened and re-laid by the addon straight into the heap memory of a new tensor (one
 * native pass, as on tensorflow: no JavaScript widening, no staging copy, no wasm Slice or Transpose).
 */
function relaidHeapTensors(data: Uint16Array | Float32Array, shape: readonly number[], views: readonly RelayoutView[], table: Float32Array | null): tf.Tensor[] {
  const addon = loadBlasAddon()!;
  const be = tf.backend() as unknown as WasmBackendLike & { disposeData(id: object): boolean };
  const rows = shape[0] ?? 1;
  const cols = shape.length ? data.length / rows : 1;
  for (const v of views) checkView(shape, v);
  const out: tf.Tensor[] = [];
  try {
    for (const v of views) {
      const [start, count] = v.rows ?? [0, rows];
      const viewShape = v.transpose ? [shape[1], count] : shape.length ? [count, ...shape.slice(1)] : [];
      const info = be.makeOutput(viewShape, 'float32');
      try {
        addon.relayout(data, heapF32(be, info), cols, start, count, v.transpose ?? false, table);
      } catch (e) {
        be.disposeData(info.dataId);
        throw e;
      }
      out.push(tf.engine().makeTensorFromTensorInfo(info, tf.backend()));
    }
  } catch (e) {
    tf.dispose(out);
    throw e;
  }
  return out;
}

/**
 * Host-resident float32 tensors (host-tensors.ts) of the given layouts of a row-major tensor (half bits or
 * float32 values), each converted and re-laid by the addon in one native pass straight into the host array
 * that becomes its storage: nothing on the wasm heap, no JavaScript widening, no wasm transpose. Null where
 * that path is not available (not wasm with host tensors, no addon, no table for half bits).
 */
export function relayoutHostTensors(data: Uint16Array | Float32Array, shape: readonly number[], views: readonly RelayoutView[]): tf.Tensor[] | null {
  const half = data instanceof Uint16Array;
  const addon = loadBlasAddon();
  if (!addon || !data.length || (half && !halfTable) || !hostTensorsAvailable()) return null;
  if (data.length % (shape[0] ?? 1) !== 0) throw new Error(`${data.length} values do not fill a tensor of shape [${shape}]`);
  const rows = shape[0] ?? 1;
  const cols = shape.length ? data.length / rows : 1;
  const arrays = views.map((v) => {
    checkView(shape, v);
    const [start, count] = v.rows ?? [0, rows];
    const viewShape = v.transpose ? [shape[1], count] : shape.length ? [count, ...shape.slice(1)] : [];
    const dst = new Float32Array(count * cols);
    addon.relayout(data, dst, cols, start, count, v.transpose ?? false, half ? halfTable : null);
    return { data: dst, shape: viewShape };
  });
  return adoptHostArrays(arrays);
}

/** Whether `relayoutHostTensors` re-lays natively now (then it only reads its input during the call). */
export function nativeHostRelayout(): boolean {
  return hostTensorsAvailable() && loadBlasAddon() !== null;
}

/**
 * Whether `relayoutTensors` (and `halfToFloatTensor`) re-lay `dtype` natively: then they only read their
 * input during the call (a reader may reuse its buffer).
 */
export function nativeRelayout(dtype: 'F16' | 'F32'): boolean {
  return (nodeBackend() !== null || tf.getBackend() === 'wasm') && (dtype === 'F32' || halfTable !== null) && loadBlasAddon() !== null;
}

function relaidTensors(
  be: TfjsNodeBackend,
  data: Uint16Array | Float32Array,
  shape: readonly number[],
  views: readonly RelayoutView[],
  table: Float32Array | null,
): tf.Tensor[] {
  const addon = loadBlasAddon()!;
  const rows = shape[0] ?? 1;
  const cols = shape.length ? data.length / rows : 1;
  const out: tf.Tensor[] = [];
  try {
    for (const v of views) {
      checkView(shape, v);
      const [start, count] = v.rows ?? [0, rows];
      const viewShape = v.transpose ? [shape[1], count] : shape.length ? [count, ...shape.slice(1)] : [];
      const dst = alignedF32(addon, count * cols);
      addon.relayout(data, dst, cols, start, count, v.transpose ?? false, table);
      const id = be.binding.createTensor(viewShape, be.binding.TF_FLOAT, dst);
      out.push(be.createOutputTensor({ id, shape: viewShape, dtype: be.binding.TF_FLOAT }));
    }
  } catch (e) {
    tf.dispose(out);
    throw e;
  }
  return out;
}

/**
 * A Float32Array of n floats starting on a 64-byte boundary: TensorFlow adopts such memory as the tensor's
 * own (tfjs-node binds the array), while it copies anything less aligned — a second full copy of the weights.
 */
function alignedF32(addon: BlasAddon, n: number): Float32Array {
  const buf = new ArrayBuffer(n * 4 + 64);
  const skew = addon.misalignment(new Uint8Array(buf, 0, 1));
  return new Float32Array(buf, (64 - skew) % 64, n);
}
