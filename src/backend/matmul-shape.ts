// The dimensions of op(A)·op(B) as our GEMM kernels see them (the native BLAS one on wasm, the WGSL one
// on webgpu): numpy-style batch broadcasting, computed over flat batch indices.
import * as tf from '@tensorflow/tfjs-core';

const size = (s: number[]) => s.reduce((p, d) => p * d, 1);

/** The product's dimensions; `k` and `kb` are op(A)'s and op(B)'s inner sizes (the caller checks they agree). */
export interface MatMulShape {
  m: number;
  n: number;
  k: number;
  kb: number;
  /** The broadcast batch shape. */
  outer: number[];
  batch: number;
  batchA: number;
  batchB: number;
  /** Whether flat batch indexing is right: each side has all the batches or just one. */
  flatBatch: boolean;
}

/** Throws (tfjs' message) when the batch shapes do not broadcast. */
export function matMulShape(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): MatMulShape {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const [batch, batchA, batchB] = [size(outer), size(outerA), size(outerB)];
  return {
    m: transposeA ? a.shape[ra - 1] : a.shape[ra - 2],
    k: transposeA ? a.shape[ra - 2] : a.shape[ra - 1],
    kb: transposeB ? b.shape[rb - 1] : b.shape[rb - 2],
    n: transposeB ? b.shape[rb - 2] : b.shape[rb - 1],
    outer,
    batch,
    batchA,
    batchB,
    flatBatch: (batchA === batch || batchA === 1) && (batchB === batch || batchB === 1),
  };
}
