// The calling convention shared by the diffusion backbones (DiT, MMDiT) and the samplers: the
// reference's `DiTWrapper.forward(x, t, cross_attn_cond=…, …, cfg_scale=…, scale_phi=…)` as keywords.
import type * as tf from '@tensorflow/tfjs';

/**
 * The `model.diffusion.config` keys both backbones (`dit`, `mmdit`) take from the reference's
 * `DiffusionTransformer` / `MMDiffusionTransformer` constructors; each extends it with its own.
 */
export interface DiffusionBackboneConfig {
  io_channels?: number;
  patch_size?: number;
  embed_dim?: number;
  cond_token_dim?: number;
  project_cond_tokens?: boolean;
  global_cond_dim?: number;
  project_global_cond?: boolean;
  input_concat_dim?: number;
  prepend_cond_dim?: number;
  depth?: number;
  num_heads?: number;
  transformer_type?: string;
  global_cond_type?: string;
}

/**
 * Conditioning of one denoiser call. Tensors are borrowed (never disposed by the model).
 * Classifier-free guidance runs inside the model (docs/REFERENCE.md §2.3, quirk 3).
 */
export interface DiffusionCond {
  /** [B, S, cond_token_dim] conditioning tokens. */
  crossAttnCond?: tf.Tensor;
  /** [B, S]; accepted but ignored: the reference discards the cross-attention mask (quirk 2). */
  crossAttnMask?: tf.Tensor;
  /** [B, global_cond_dim] or [B, 1, global_cond_dim] (docs/REFERENCE.md §2.3 step 3). */
  globalCond?: tf.Tensor;
  /** Replaces the all-zero null condition of the CFG uncond half; same shape as crossAttnCond. */
  negativeCrossAttnCond?: tf.Tensor;
  /** [B, S] (bool or 0/1): negative tokens where it is false are zeroed — the one mask that IS applied. */
  negativeCrossAttnMask?: tf.Tensor;
  /** Accepted but ignored: the reference duplicates `globalCond` for the uncond half. */
  negativeGlobalCond?: tf.Tensor;
  /** Guidance scale (default 1 = a single conditional pass). */
  cfgScale?: number;
  /** CFG rescale mix (default 0 = off); std over the channel axis, Bessel-corrected. */
  scalePhi?: number;
  /** Accepted but ignored, as in the reference (`scale_phi` is the knob). */
  rescaleCfg?: boolean;
  /** Must be true (default); the reference asserts it. */
  batchCfg?: boolean;
}

/** A v-/flow-predicting backbone: x [B, io, T], t [B] → [B, io, T] (a new tensor owned by the caller). */
export interface DiffusionModel {
  forward(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond): tf.Tensor;
}
