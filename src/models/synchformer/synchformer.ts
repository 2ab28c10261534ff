// Synchformer as AudioX uses it: only the video feature extractor (`vfeat_extractor` = MotionFormer with
// extract_features, factorize_space_time, TransformerEncoderLayer spatial aggregation, Identity temporal
// aggregation, no global representation). docs/REFERENCE.md §6.3. The state dict of
// `synchformer_state_dict.pth` is filtered to `vfeat_extractor.*` keys before a strict load (see `load`).
import * as tf from '@tensorflow/tfjs';
import { Module, type LoadReport } from '../../nn/module.ts';
import { UNLIMITED_BUDGET, type MemoryBudget } from '../../nn/runtime.ts';
import type { TensorSource } from '../../io/safetensors.ts';
import { MOTIONFORMER_DIVIDED_224_16X4, MotionFormer, type MotionFormerConfig } from './motionformer.ts';

/** The yaml overrides the fixtures use (`VIT.EMBED_DIM`, `VIT.DEPTH`, `VIT.NUM_HEADS`, …) in config terms. */
export interface SynchformerVitOverrides {
  EMBED_DIM?: number;
  DEPTH?: number;
  NUM_HEADS?: number;
  MLP_RATIO?: number;
}

export class Synchformer extends Module {
  readonly vfeat_extractor: MotionFormer;
  /** What feature extraction plans against (encodeVideoWithSync); loadModel sets the runtime's budget. */
  budget: MemoryBudget = UNLIMITED_BUDGET;
  constructor(config: MotionFormerConfig = MOTIONFORMER_DIVIDED_224_16X4) {
    super();
    this.vfeat_extractor = this.module('vfeat_extractor', new MotionFormer(config));
  }

  static fromVitOverrides(o: SynchformerVitOverrides = {}): Synchformer {
    const base = MOTIONFORMER_DIVIDED_224_16X4;
    return new Synchformer({
      ...base,
      embed_dim: o.EMBED_DIM ?? base.embed_dim,
      depth: o.DEPTH ?? base.depth,
      num_heads: o.NUM_HEADS ?? base.num_heads,
      mlp_ratio: o.MLP_RATIO ?? base.mlp_ratio,
    });
  }

  get embedDim(): number {
    return this.vfeat_extractor.config.embed_dim;
  }

  /** Like the reference's load_state_dict: keys outside `vfeat_extractor.` (audio branch, heads…) are ignored. */
  load(source: TensorSource, prefix = ''): LoadReport {
    const others = source.keys().filter((k) => k.startsWith(prefix) && !k.startsWith(`${prefix}vfeat_extractor.`));
    return this.loadStateDict(source, { prefix, ignorePrefixes: others });
  }

  /** vis [B, S, T, C, H, W] → [B, S, t, D] (the reference's permute to (B, S, C, T, H, W) is folded into the patch embedding). */
  forward(vis: tf.Tensor): tf.Tensor4D {
    if (vis.rank !== 6) throw new Error(`Synchformer: expected [B, S, T, C, H, W], got [${vis.shape}]`);
    const [b, s, t, c, h, w] = vis.shape;
    return tf.tidy(() => {
      const out = this.vfeat_extractor.forward(vis.reshape([b * s, t, c, h, w]) as tf.Tensor5D);
      return out.reshape([b, s, out.shape[1], out.shape[2]]) as tf.Tensor4D;
    });
  }
}
