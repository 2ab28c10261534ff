// Custom kernels that nn ops may take as a fast path. nn only knows their names; a backend layer
// (src/backend/) registers an implementation for its backend through tfjs (`tf.registerKernel`) when it
// has one, and the op falls back to stock tf ops otherwise. nn never asks which backend runs.
import * as tf from '@tensorflow/tfjs-core';

/**
 * Channels-last SnakeBeta y = x + invB · sin(a·x)² in one pass: inputs `x` [..., C], `a`, `invB` [C]
 * (float32), output like `x`.
 */
export const SNAKE_BETA_NWC = 'AudioxSnakeBetaNWC';

/**
 * Moves a float32 weight out of the backend's tensor memory into host memory: input `x`, output a tensor
 * with the same values that only the backend's matrix-product (weight operand) and 1-D convolution
 * (filter) kernels read, in place; other ops refuse it. Its bytes are reported as `tf.memory().hostBytes`
 * and do not count against the backend's budget (see `backendBytes` in runtime.ts).
 */
export const TO_HOST = 'AudioxToHost';

/** Whether some backend layer registered `kernelName` for the backend now running tfjs ops. */
export function kernelRegistered(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.engine().backendName) !== undefined;
}

/**
 * Fused scaled dot-product attention softmax(q·kᵀ·scale + mask)·v: inputs `q` [B, H, Lq, D], `k`, `v`
 * [B, Hkv, Lk, D] (float32; H a multiple of Hkv, groups of consecutive query heads share a kv head),
 * optional additive float32 `mask` broadcastable to [B, H, Lq, Lk]; attr `scale`; output like `q`.
 */
export const ATTENTION = 'AudioxAttention';

/**
 * Layer norm over the last axis, (x − mean)/√(var + eps) (· weight) (+ bias): inputs `x` [..., C]
 * float32, optional `weight`, `bias` [C]; attr `eps`; output like `x`.
 */
export const LAYER_NORM = 'AudioxLayerNorm';

/**
 * Divided space-time attention (MotionFormer) on the packed qkv projection: input `qkv` [N, 1 + F·P, 3·H·hd]
 * (q, k, v blocks of H·hd, head h at h·hd; token 0 the CLS token, token 1 + f·P + p patch (f, p)); attrs
 * `heads`, `frames` (F), `positions` (P), `axis` ('time' | 'space'), `scale`. The CLS query attends to all
 * tokens; patch (f, p) attends to the CLS token and its group (the same p over all frames for 'time', the
 * same f over all positions for 'space'), softmax(q·kᵀ·scale)·v. Output [N, 1 + F·P, H·hd], heads merged.
 */
export const DIVIDED_ATTENTION = 'AudioxDividedAttention';

/** Exact GELU 0.5·x·(1 + erf(x/√2)): input `x` float32, output like `x`. */
export const GELU = 'AudioxGelu';
