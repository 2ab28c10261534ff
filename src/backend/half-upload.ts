// Float16 weights straight into a float32 backend tensor, converted by the backend itself.
//
// Released checkpoints are float16; widening 1.5 G values in JavaScript costs ~10 ns each here (about half of
// a full-size load). On tfjs-node the bits go to TensorFlow untouched (zero-copy, as int32 pairs), where
// Bitcast → Cast(half → float) runs natively and multi-threaded; the JavaScript copy of the weights is never
// made. This reads tfjs-node's binding (4.22.0); any other backend, or an unexpected binding, gets null and
// the caller widens in JavaScript.
import * as tf from '@tensorflow/tfjs';

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
  createTensor(shape: number[], dtype: number, values: Int32Array): number;
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
