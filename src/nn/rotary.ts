// Rotary position embeddings: one application for both conventions the models use. Each rotates channel
// pairs by position-dependent angles, x' = x·cos + R(x)·sin, where R is a signed permutation of the head
// channels applied as one small 2-D matmul (exact: ±1 products, the other terms zero; a plain matmul where
// slices, reverses or concats over 4-D views are slow generic kernels on wasm). Only the tables differ:
//   rotate-half (NeoX; the DiT's `apply_rotary_pos_emb`, docs/REFERENCE.md §2.5) pairs channel j with j + rot/2
//   over the first `rot` channels of each head, the rest pass through;
//   interleaved (GPT-J; the MMDiT's `apply_rope`, §3.3) pairs channels (2f, 2f+1) over the whole head.
import * as tf from '@tensorflow/tfjs';

/** cos and sin broadcast against the rotated tensor, and the permutation R [dh, dh]. */
export interface RotaryTables {
  /** cos θ, broadcastable against x. */
  cos: tf.Tensor;
  /** sin θ, broadcastable against x. */
  sin: tf.Tensor;
  /** The pairing of channels as a signed permutation R [dh, dh]: x·R turns each rotated pair (a, b) into (−b, a). */
  rotate: tf.Tensor2D;
}

/** x·cos + (x·R)·sin on x [..., dh] (the tables broadcast over the leading axes). */
export function applyRotary<T extends tf.Tensor>(x: T, r: RotaryTables): T {
  return tf.tidy(() => {
    const d = x.shape[x.rank - 1];
    if (r.rotate.shape[0] !== d) throw new Error(`applyRotary: tables for head dim ${r.rotate.shape[0]}, input [${x.shape}]`);
    const rotated = tf.matMul(x.reshape([-1, d]), r.rotate).reshape(x.shape);
    return x.mul(r.cos).add(rotated.mul(r.sin)) as T;
  });
}

/** Frees the tables. */
export function disposeRotary(r: RotaryTables): void {
  tf.dispose([r.cos, r.sin, r.rotate]);
}

/**
 * Rotate-half tables from `freqs` [L, rot] (RotaryEmbedding.freqs: θ repeated over both halves) for heads of
 * `dimHeads` channels: cos 1 / sin 0 past `rot`. Shaped [L, dh], or [L, 1, dh] with `headsAfterLength`
 * (for x [B, L, H, dh]).
 */
export function rotateHalfTables(freqs: tf.Tensor2D, dimHeads: number, opts: { headsAfterLength?: boolean } = {}): RotaryTables {
  const [length, rot] = freqs.shape;
  if (rot % 2 !== 0 || rot > dimHeads) throw new Error(`rotateHalfTables: ${rot} rotated channels do not fit heads of ${dimHeads}`);
  return tf.tidy(() => {
    const pad = (t: tf.Tensor2D, v: number): tf.Tensor2D => (rot === dimHeads ? t : tf.concat([t, tf.fill([length, dimHeads - rot], v)], 1));
    const half = rot / 2;
    const p = new Float32Array(dimHeads * dimHeads); // (u·R)[j] = −u[j+half] (j < half), u[j−half] (half ≤ j < rot)
    for (let j = 0; j < half; j++) p[(j + half) * dimHeads + j] = -1;
    for (let j = half; j < rot; j++) p[(j - half) * dimHeads + j] = 1;
    const shape = (t: tf.Tensor2D): tf.Tensor => (opts.headsAfterLength ? t.expandDims(1) : t);
    return { cos: shape(pad(tf.cos(freqs), 1)), sin: shape(pad(tf.sin(freqs), 0)), rotate: tf.tensor2d(p, [dimHeads, dimHeads]) };
  });
}

/**
 * Interleaved tables [L, dh] as compute_rope_rotations(length, dim, theta): θ[p, f] = p · theta^(−2f/dim) for
 * the pairs (2f, 2f+1), every step rounded to float32 as the reference computes it (autocast off). R swaps
 * each pair; `sin` carries the sign of the pair's first element.
 */
export function interleavedRotaryTables(length: number, dim: number, theta = 10000, freqScaling = 1.0): RotaryTables {
  if (dim % 2 !== 0) throw new Error(`interleavedRotaryTables: head dim ${dim} must be even`);
  const f32 = Math.fround;
  const half = dim / 2;
  const cos = new Float32Array(length * dim);
  const sin = new Float32Array(length * dim);
  for (let f = 0; f < half; f++) {
    const freq = f32(f32(1 / f32(theta ** f32((2 * f) / dim))) * freqScaling);
    for (let p = 0; p < length; p++) {
      const a = f32(p * freq);
      const c = f32(Math.cos(a));
      const s = f32(Math.sin(a));
      cos[p * dim + 2 * f] = c;
      cos[p * dim + 2 * f + 1] = c;
      sin[p * dim + 2 * f] = -s;
      sin[p * dim + 2 * f + 1] = s;
    }
  }
  const swap = new Float32Array(dim * dim);
  for (let i = 0; i < dim; i++) swap[i * dim + (i ^ 1)] = 1;
  return { cos: tf.tensor2d(cos, [length, dim]), sin: tf.tensor2d(sin, [length, dim]), rotate: tf.tensor2d(swap, [dim, dim]) };
}
