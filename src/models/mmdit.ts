// MMDiffusionTransformer (audiox/models/dit.py) + ContinuousMMDiTTransformer (transformer.py), the
// diffusion model of AudioX-MAF-MMDiT, and its MMDiTWrapper. docs/REFERENCE.md §3, quirks 2, 3, 5–8, 16, 17.
//
// Roles are inverted w.r.t. a usual DiT: the 384 multimodal tokens, resampled to the latent length,
// drive a per-token adaLN modulation, and the timestep embedding is the (single-token)
// cross-attention context. Only the latent stream ([time token; latents]) is updated.
import * as tf from '@tensorflow/tfjs';
import { Conv1d, Module, ModuleList, Sequential, type WeightDerivation } from '../nn/index.ts';
import { disposeRotary, interleavedRotaryTables, type RotaryTables } from '../nn/rotary.ts';
import { FourierFeatures } from './dit.ts';
import { TransposedLinear } from '../nn/relaid-layers.ts';
import { siluProjection } from './transformer.ts';
import { MMDitSingleBlock } from './mmdit-blocks.ts';
import { cfgCondBatch, combineCfg, doubleBatch } from './cfg.ts';
import type { DiffusionBackboneConfig, DiffusionCond, DiffusionModel } from './diffusion-types.ts';

/** Width of the multimodal tokens (hard-coded in the reference). */
export const MM_TOKEN_DIM = 768;
/** Number of multimodal tokens: 128 video + 128 text + 128 audio (hard-coded in the reference). */
export const MM_CONTEXT_LENGTH = 384;

/** `model.diffusion.config` of an `mmdit` model (the reference's constructor kwargs). */
export interface MMDiTConfig extends DiffusionBackboneConfig {
  /** Unused by the reference. */
  fusion_depth?: number;
  _latent_seq_len?: number;
  mlp_ratio?: number;
  kernel_size?: number;
  [key: string]: unknown;
}


export interface ContinuousMMDiTOptions {
  dimIn: number;
  dimOut: number;
  /** The `dim_heads` argument, which the reference uses as the block's head COUNT (quirk 6). */
  dimHeads: number;
  latentSeqLen?: number;
  mlpRatio?: number;
  kernelSize?: number;
}

export class ContinuousMMDiTTransformer extends Module {
  readonly project_in: TransposedLinear;
  readonly project_out: TransposedLinear;
  readonly layers: ModuleList<MMDitSingleBlock>;
  readonly proj_mm_tokens: TransposedLinear | null;
  readonly proj_mm_seq_len: TransposedLinear | null;
  readonly latentSeqLen: number;
  readonly nheads: number;
  readonly headDim: number;
  private rope: RotaryTables | null = null;

  constructor(
    readonly dim: number,
    readonly depth: number,
    opts: ContinuousMMDiTOptions,
  ) {
    super();
    const { latentSeqLen = 237, mlpRatio = 4.0, kernelSize = 3 } = opts;
    if (kernelSize % 2 !== 1) throw new Error(`ContinuousMMDiTTransformer: kernel_size must be odd (got ${kernelSize})`);
    this.latentSeqLen = latentSeqLen;
    this.nheads = opts.dimHeads;
    this.headDim = dim / this.nheads;
    if (!Number.isInteger(this.headDim) || this.headDim % 2 !== 0) {
      throw new Error(`ContinuousMMDiTTransformer: embed_dim ${dim} with ${this.nheads} heads gives head dim ${this.headDim}; it must be an even integer`);
    }
    this.project_in = this.module('project_in', new TransposedLinear(opts.dimIn, dim, { bias: false }));
    this.project_out = this.module('project_out', new TransposedLinear(dim, opts.dimOut, { bias: false }));
    const padding = (kernelSize - 1) / 2;
    this.layers = this.module(
      'layers',
      new ModuleList(Array.from({ length: depth }, () => new MMDitSingleBlock(dim, this.nheads, { mlpRatio, kernelSize, padding, crossAttend: true }))),
    );
    this.proj_mm_tokens = dim !== MM_TOKEN_DIM ? this.module('proj_mm_tokens', new TransposedLinear(MM_TOKEN_DIM, dim)) : null;
    this.proj_mm_seq_len = latentSeqLen !== MM_CONTEXT_LENGTH ? this.module('proj_mm_seq_len', new TransposedLinear(MM_CONTEXT_LENGTH, latentSeqLen)) : null;
  }

  /** latent_rot: a non-persistent buffer (not in the state dict), computed once the weights are set. */
  private get latentRot(): RotaryTables {
    if (!this.rope) this.computeRope();
    return this.rope!;
  }

  override derivation(): WeightDerivation {
    return { mode: 'computed', sources: [], derive: () => this.computeRope() };
  }

  private computeRope(): void {
    this.onDispose();
    const r = interleavedRotaryTables(this.latentSeqLen, this.headDim);
    this.rope = { cos: tf.keep(r.cos), sin: tf.keep(r.sin), rotate: tf.keep(r.rotate) };
  }

  protected override onDispose(): void {
    if (this.rope) disposeRotary(this.rope);
    this.rope = null;
  }

  /** x [B, T, dim_in], prepend [B, 1, D] (timestep token), context [B, 384, 768] → [B, 1+T, dim_out]. */
  forward(x: tf.Tensor, prepend: tf.Tensor, context: tf.Tensor): tf.Tensor {
    const rope = this.latentRot;
    return tf.tidy(() => {
      let h = tf.concat([prepend, this.project_in.forward(x)], 1); // [B, Lr, D]
      let mm = this.proj_mm_tokens ? this.proj_mm_tokens.forward(context) : context; // [B, 384, D]
      // proj_mm_seq_len mixes along the token axis: applied to [B, D, 384] → [B, D, Lr].
      if (this.proj_mm_seq_len) mm = this.proj_mm_seq_len.forward(mm.transpose([0, 2, 1])).transpose([0, 2, 1]);
      const timeToken = prepend; // [B, 1, D], the cross-attention context of every block
      for (const block of this.layers.items) h = block.forward(h, mm, rope, timeToken);
      return this.project_out.forward(h);
    });
  }
}

export class MMDiffusionTransformer extends Module {
  readonly timestep_features: FourierFeatures;
  readonly to_timestep_embed: Sequential;
  readonly to_cond_embed: Sequential | null;
  readonly to_global_embed: Sequential | null;
  readonly preprocess_conv: Conv1d;
  readonly postprocess_conv: Conv1d;
  readonly transformer: ContinuousMMDiTTransformer;
  readonly ioChannels: number;
  readonly patchSize: number;
  readonly latentSeqLen: number;

  constructor(cfg: MMDiTConfig = {}) {
    super();
    const io = cfg.io_channels ?? 32;
    const p = cfg.patch_size ?? 1;
    const d = cfg.embed_dim ?? 768;
    const condTokenDim = cfg.cond_token_dim ?? 0;
    const globalDim = cfg.global_cond_dim ?? 0;
    const numHeads = cfg.num_heads ?? 8;
    const transformerType = cfg.transformer_type ?? 'x-transformers';
    const unsupported = (what: string) => new Error(`MMDiffusionTransformer: ${what} is not supported`);
    if (transformerType !== 'continuous_transformer') throw unsupported(`transformer_type "${transformerType}" (only "continuous_transformer")`);
    if ((cfg.global_cond_type ?? 'prepend') !== 'prepend') throw unsupported(`global_cond_type "${cfg.global_cond_type}" (the reference crashes without a prepended token)`);
    if ((cfg.input_concat_dim ?? 0) > 0) throw unsupported('input_concat_dim > 0');
    if ((cfg.prepend_cond_dim ?? 0) > 0) throw unsupported('prepend_cond_dim > 0');
    this.ioChannels = io;
    this.patchSize = p;
    this.latentSeqLen = cfg._latent_seq_len ?? 237;

    this.timestep_features = this.module('timestep_features', new FourierFeatures(256));
    this.to_timestep_embed = this.module('to_timestep_embed', siluProjection(256, d, true));
    // to_cond_embed exists in the checkpoint but is never applied (quirk 8).
    const condEmbedDim = (cfg.project_cond_tokens ?? true) ? d : condTokenDim;
    this.to_cond_embed = condTokenDim > 0 ? this.module('to_cond_embed', siluProjection(condTokenDim, condEmbedDim, false)) : null;
    const globalEmbedDim = (cfg.project_global_cond ?? true) ? d : globalDim;
    this.to_global_embed = globalDim > 0 ? this.module('to_global_embed', siluProjection(globalDim, globalEmbedDim, false)) : null;
    this.transformer = this.module(
      'transformer',
      new ContinuousMMDiTTransformer(d, cfg.depth ?? 12, {
        dimIn: io * p,
        dimOut: io * p,
        dimHeads: Math.floor(d / numHeads),
        latentSeqLen: this.latentSeqLen,
        mlpRatio: cfg.mlp_ratio,
        kernelSize: cfg.kernel_size,
      }),
    );
    this.preprocess_conv = this.module('preprocess_conv', new Conv1d(io, io, 1, { bias: false }));
    this.postprocess_conv = this.module('postprocess_conv', new Conv1d(io, io, 1, { bias: false }));
  }

  /** Latent frames the model accepts: `_latent_seq_len − 1` (times patch_size). */
  get latentLength(): number {
    return (this.latentSeqLen - 1) * this.patchSize;
  }

  /** With CFG (cfgScale ≠ 1) as in §2.3/§3.1: x [B, io, T], t [B] → [B, io, T]. */
  forward(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond): tf.Tensor {
    const c = cond.crossAttnCond;
    if (!c) throw new Error('MMDiffusionTransformer: crossAttnCond [B, 384, 768] is required (the multimodal tokens drive every block)');
    if (cond.globalCond) {
      throw new Error('MMDiffusionTransformer: global conditioning is not supported (the reference breaks on a global embed; released configs have global_cond_ids = [])');
    }
    this.checkInputs(x, t, c);
    const cfgScale = cond.cfgScale ?? 1.0;
    // Cross-attention masks are discarded (quirk 2).
    if (cfgScale === 1.0) return this.forwardOnce(x, t, c);
    return tf.tidy(() => {
      const out = this.forwardOnce(doubleBatch(x), doubleBatch(t), cfgCondBatch(c, cond.negativeCrossAttnCond, cond.negativeCrossAttnMask));
      return combineCfg(out, cfgScale, cond.scalePhi ?? 0);
    });
  }

  /** The reference's `_forward`: one pass without CFG. */
  forwardOnce(x: tf.Tensor, t: tf.Tensor, crossAttnCond: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, io, len] = x.shape;
      const p = this.patchSize;
      const timestepEmbed = this.to_timestep_embed.forward(this.timestep_features.forward(t.reshape([-1, 1]) as tf.Tensor2D)); // [B, D]
      const prepend = timestepEmbed.expandDims(1); // [B, 1, D], prepend_length 1
      let h = this.preprocess_conv.forward(x as tf.Tensor3D).add(x); // [B, io, T]
      h = h.transpose([0, 2, 1]); // [B, T, io]
      if (p > 1) h = h.reshape([b, len / p, p, io]).transpose([0, 1, 3, 2]).reshape([b, len / p, io * p]); // b (t p) c -> b t (c p)
      const y = this.transformer.forward(h, prepend, crossAttnCond); // [B, 1+T/p, io·p]
      let out = y.transpose([0, 2, 1]).slice([0, 0, 1], [b, io * p, len / p]); // drop the timestep token
      if (p > 1) out = out.reshape([b, io, p, len / p]).transpose([0, 1, 3, 2]).reshape([b, io, len]); // b (c p) t -> b c (t p)
      return this.postprocess_conv.forward(out as tf.Tensor3D).add(out);
    });
  }

  private checkInputs(x: tf.Tensor, t: tf.Tensor, c: tf.Tensor): void {
    const b = x.shape[0];
    if (x.rank !== 3 || x.shape[1] !== this.ioChannels) throw new Error(`MMDiffusionTransformer: x must be [B, ${this.ioChannels}, T], got [${x.shape}]`);
    if (x.shape[2] !== this.latentLength) {
      throw new Error(
        `MMDiffusionTransformer: the latent length must be exactly _latent_seq_len − 1 = ${this.latentLength} frames ` +
          `(_latent_seq_len ${this.latentSeqLen} includes the timestep token), got ${x.shape[2]}; ` +
          'the MMDiT only runs at the sample_size it was trained for',
      );
    }
    if (t.size !== b) throw new Error(`MMDiffusionTransformer: t must have one value per batch item ([${b}]), got [${t.shape}]`);
    if (c.rank !== 3 || c.shape[0] !== b || c.shape[1] !== MM_CONTEXT_LENGTH || c.shape[2] !== MM_TOKEN_DIM) {
      throw new Error(
        `MMDiffusionTransformer: the conditioning must be exactly [${b}, ${MM_CONTEXT_LENGTH}, ${MM_TOKEN_DIM}] ` +
          `(128 video + 128 text + 128 audio tokens), got [${c.shape}]`,
      );
    }
  }
}

/**
 * MMDiTWrapper: child `model` (keys `model.model.*` under the conditioned wrapper). Same call as
 * the DiT wrapper so one sampler drives both. `rescaleCfg` is ignored, `batchCfg` must be true.
 */
export class MMDiTWrapper extends Module implements DiffusionModel {
  readonly model: MMDiffusionTransformer;
  constructor(cfg: MMDiTConfig = {}) {
    super();
    this.model = this.module('model', new MMDiffusionTransformer(cfg));
  }
  static fromConfig(cfg: MMDiTConfig): MMDiTWrapper {
    return new MMDiTWrapper(cfg);
  }
  forward(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond): tf.Tensor {
    if (cond.batchCfg === false) throw new Error('MMDiTWrapper: batchCfg must be true (as in the reference)');
    return this.model.forward(x, t, cond);
  }
}
