// Tiny DiT and MMDiT wrappers (random-weight test models) with their cross-attention inputs, shared by the
// streaming and host-placement tests.
import * as tf from '@tensorflow/tfjs';
import { DiTWrapper } from '../../src/models/dit.ts';
import { MMDiTWrapper } from '../../src/models/mmdit.ts';

/** Latent frames of the tiny models' input (the MMDiT's `_latent_seq_len` is one more). */
export const TINY_FRAMES = 6;

export function tinyDiT(depth: number): DiTWrapper {
  return DiTWrapper.fromConfig({
    io_channels: 4, embed_dim: 64, depth, num_heads: 2, cond_token_dim: 8, project_cond_tokens: true,
    transformer_type: 'continuous_transformer',
  });
}

export function tinyMMDiT(depth: number): MMDiTWrapper {
  return MMDiTWrapper.fromConfig({
    io_channels: 4, embed_dim: 16, depth, num_heads: 4, cond_token_dim: 8, project_cond_tokens: false,
    transformer_type: 'continuous_transformer', _latent_seq_len: TINY_FRAMES + 1,
  });
}

/** Cross-attention tokens for tinyDiT ([1, 5, 8]) and tinyMMDiT ([1, 384, 768]). */
export const tinyDiTCond = (): tf.Tensor3D => tf.randomNormal([1, 5, 8], 0, 1, 'float32', 1) as tf.Tensor3D;
export const tinyMMDiTCond = (): tf.Tensor3D => tf.randomNormal([1, 384, 768], 0, 1, 'float32', 2) as tf.Tensor3D;
