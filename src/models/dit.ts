// DiffusionTransformer and DiTWrapper (audiox/models/dit.py, diffusion.py; docs/REFERENCE.md §2): Fourier
// timestep embedding prepended as a token, conditioning tokens through to_cond_embed, 1×1 residual
// convs around a ContinuousTransformer, and classifier-free guidance inside the forward.
import * as tf from '@tensorflow/tfjs';
import { Module, Sequential, type Parameter } from '../nn/module.ts';
import { Conv1d } from '../nn/layers.ts';
import { ContinuousTransformer, siluProjection } from './transformer.ts';
import { cfgCondBatch, combineCfg, doubleBatch } from './cfg.ts';
import type { DiffusionBackboneConfig, DiffusionCond, DiffusionModel } from './diffusion-types.ts';

/** `model.diffusion.config` of a `dit` model, with the reference's keys and defaults. */
export interface DiTConfig extends DiffusionBackboneConfig {
  condition_mask_type?: null;
  global_cond_type?: 'prepend' | 'adaLN';
  /** Popped by the reference factory (quirk 25); ignored here. */
  video_fps?: number;
}

const KNOWN_KEYS = new Set([
  'io_channels', 'patch_size', 'embed_dim', 'cond_token_dim', 'project_cond_tokens', 'global_cond_dim',
  'project_global_cond', 'input_concat_dim', 'prepend_cond_dim', 'depth', 'num_heads', 'transformer_type',
  'condition_mask_type', 'global_cond_type', 'video_fps',
]);

/** FourierFeatures(1, 256): t [B, 1] → [cos(2π·t·wᵀ), sin(2π·t·wᵀ)] [B, 256]. */
export class FourierFeatures extends Module {
  readonly weight: Parameter;
  constructor(readonly outFeatures = 256) {
    super();
    this.weight = this.param('weight', [outFeatures / 2, 1]);
  }
  forward(t: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      // (2π·t) @ wᵀ with an inner dimension of 1: one rounded product per entry, as in torch.
      const f = t.mul(2 * Math.PI).mul(this.weight.value.reshape([1, -1]));
      return tf.concat([tf.cos(f), tf.sin(f)], -1) as tf.Tensor2D;
    });
  }
}


export class DiffusionTransformer extends Module implements DiffusionModel {
  readonly ioChannels: number;
  readonly embedDim: number;
  readonly condTokenDim: number;
  readonly globalCondDim: number;
  readonly globalCondType: 'prepend' | 'adaLN';
  readonly timestepFeatures: FourierFeatures;
  readonly toTimestepEmbed: Sequential;
  readonly toCondEmbed: Sequential | null = null;
  readonly toGlobalEmbed: Sequential | null = null;
  readonly transformer: ContinuousTransformer;
  readonly preprocessConv: Conv1d;
  readonly postprocessConv: Conv1d;

  constructor(config: DiTConfig) {
    super();
    const unknown = Object.keys(config).filter((k) => !KNOWN_KEYS.has(k));
    if (unknown.length) throw new Error(`DiffusionTransformer: unsupported config keys ${unknown.join(', ')}`);
    const c = config;
    const transformerType = c.transformer_type ?? 'x-transformers';
    if (transformerType !== 'continuous_transformer') {
      throw new Error(`DiffusionTransformer: transformer_type "${transformerType}" is not supported (only "continuous_transformer")`);
    }
    for (const [key, ok] of [
      ['patch_size', (c.patch_size ?? 1) === 1],
      ['input_concat_dim', (c.input_concat_dim ?? 0) === 0],
      ['prepend_cond_dim', (c.prepend_cond_dim ?? 0) === 0],
    ] as const) {
      if (!ok) throw new Error(`DiffusionTransformer: ${key} = ${c[key]} is not supported (unused by AudioX)`);
    }
    this.ioChannels = c.io_channels ?? 32;
    this.embedDim = c.embed_dim ?? 768;
    this.condTokenDim = c.cond_token_dim ?? 0;
    this.globalCondDim = c.global_cond_dim ?? 0;
    this.globalCondType = c.global_cond_type ?? 'prepend';
    const numHeads = c.num_heads ?? 8;
    const D = this.embedDim;

    this.timestepFeatures = this.module('timestep_features', new FourierFeatures(256));
    this.toTimestepEmbed = this.module('to_timestep_embed', siluProjection(256, D, true));
    const condEmbedDim = this.condTokenDim > 0 ? ((c.project_cond_tokens ?? true) ? D : this.condTokenDim) : 0;
    if (this.condTokenDim > 0) {
      this.toCondEmbed = this.module('to_cond_embed', siluProjection(this.condTokenDim, condEmbedDim, false));
    }
    if (this.globalCondDim > 0) {
      const g = (c.project_global_cond ?? true) ? D : this.globalCondDim;
      this.toGlobalEmbed = this.module('to_global_embed', siluProjection(this.globalCondDim, g, false));
    }
    this.transformer = this.module(
      'transformer',
      new ContinuousTransformer({
        dim: D,
        depth: c.depth ?? 12,
        dimHeads: Math.floor(D / numHeads),
        dimIn: this.ioChannels,
        dimOut: this.ioChannels,
        crossAttend: this.condTokenDim > 0,
        condTokenDim: condEmbedDim,
        globalCondDim: this.globalCondType === 'adaLN' ? D : undefined,
      }),
    );
    this.preprocessConv = this.module('preprocess_conv', new Conv1d(this.ioChannels, this.ioChannels, 1, { bias: false }));
    this.postprocessConv = this.module('postprocess_conv', new Conv1d(this.ioChannels, this.ioChannels, 1, { bias: false }));
  }

  /**
   * One pass of the network, the reference's `_forward`: x [B, io, T], t [B], crossAttnCond
   * [B, S, cond_token_dim], globalCond [B, g] or [B, k, g] → [B, io, T].
   */
  forwardOnce(x: tf.Tensor3D, t: tf.Tensor1D, crossAttnCond?: tf.Tensor3D, globalCond?: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const context = crossAttnCond && this.toCondEmbed ? (this.toCondEmbed.forward(crossAttnCond) as tf.Tensor3D) : undefined;
      const temb = this.toTimestepEmbed.forward(this.timestepFeatures.forward(t.expandDims(1) as tf.Tensor2D)); // [B, D]
      // torch broadcasting: proj [B, D] + temb [B, 1, D] → [B, B, D] (quirk 19; docs/REFERENCE.md §2.3 step 3).
      const g = globalCond && this.toGlobalEmbed ? this.toGlobalEmbed.forward(globalCond).add(temb.expandDims(1)) : temb;
      let prepend: tf.Tensor3D | undefined;
      let adaCond: tf.Tensor | undefined;
      if (this.globalCondType === 'prepend') prepend = (g.rank === 2 ? g.expandDims(1) : g) as tf.Tensor3D;
      else adaCond = g;
      const P = prepend ? prepend.shape[1] : 0;

      const h = x.add(this.preprocessConv.forward(x)).transpose([0, 2, 1]) as tf.Tensor3D; // [B, T, io]
      const out = this.transformer.forward(h, { prepend, context, globalCond: adaCond }); // [B, P+T, io]
      const [b, l, c] = out.shape;
      const y = out.slice([0, P, 0], [b, l - P, c]).transpose([0, 2, 1]) as tf.Tensor3D; // [B, io, T]
      return y.add(this.postprocessConv.forward(y)) as tf.Tensor3D;
    });
  }

  /** The reference `DiffusionTransformer.forward` (CFG inside; docs/REFERENCE.md §2.3, quirks 2, 3). */
  forward(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond = {}): tf.Tensor3D {
    this.checkInputs(x, t, cond);
    const cfgScale = cond.cfgScale ?? 1;
    const scalePhi = cond.scalePhi ?? 0;
    const c = cond.crossAttnCond as tf.Tensor3D | undefined;
    const g = cond.globalCond;
    // crossAttnMask is discarded (quirk 2); rescaleCfg and negativeGlobalCond are ignored as in the reference.
    if (cfgScale === 1 || !c) return this.forwardOnce(x as tf.Tensor3D, t as tf.Tensor1D, c, g);
    return tf.tidy(() => {
      // Null condition: zeros, or the negative condition with its masked-out tokens zeroed.
      const out = this.forwardOnce(
        doubleBatch(x) as tf.Tensor3D,
        doubleBatch(t) as tf.Tensor1D,
        cfgCondBatch(c, cond.negativeCrossAttnCond, cond.negativeCrossAttnMask) as tf.Tensor3D,
        g ? doubleBatch(g) : undefined,
      );
      return combineCfg(out, cfgScale, scalePhi) as tf.Tensor3D;
    });
  }

  private checkInputs(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond): void {
    const name = 'DiffusionTransformer';
    if (x.rank !== 3 || x.shape[1] !== this.ioChannels) {
      throw new Error(`${name}: x must be [B, ${this.ioChannels}, T], got [${x.shape}]`);
    }
    const B = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== B) throw new Error(`${name}: t must be [${B}], got [${t.shape}]`);
    const c = cond.crossAttnCond;
    if (c) {
      if (!this.toCondEmbed) throw new Error(`${name}: crossAttnCond given but the model has cond_token_dim = 0`);
      if (c.rank !== 3 || c.shape[0] !== B || c.shape[2] !== this.condTokenDim) {
        throw new Error(`${name}: crossAttnCond must be [${B}, S, ${this.condTokenDim}], got [${c.shape}]`);
      }
      const n = cond.negativeCrossAttnCond;
      if (n && n.shape.join() !== c.shape.join()) {
        throw new Error(`${name}: negativeCrossAttnCond [${n.shape}] must match crossAttnCond [${c.shape}]`);
      }
      const m = cond.negativeCrossAttnMask;
      if (n && m && (m.rank !== 2 || m.shape[0] !== B || m.shape[1] !== c.shape[1])) {
        throw new Error(`${name}: negativeCrossAttnMask must be [${B}, ${c.shape[1]}], got [${m.shape}]`);
      }
    }
    const g = cond.globalCond;
    if (g) {
      if (!this.toGlobalEmbed) throw new Error(`${name}: globalCond given but the model has global_cond_dim = 0`);
      if ((g.rank !== 2 && g.rank !== 3) || g.shape[0] !== B || g.shape[g.rank - 1] !== this.globalCondDim) {
        throw new Error(`${name}: globalCond must be [${B}, ${this.globalCondDim}] or [${B}, k, ${this.globalCondDim}], got [${g.shape}]`);
      }
    }
    if (cond.batchCfg === false) throw new Error(`${name}: batchCfg must be true (the reference asserts it)`);
  }
}

/**
 * DiTWrapper: the DiffusionTransformer as child `model` (so `model.model.*` under the conditioned
 * wrapper). The reference halves every parameter at init (quirk 17); irrelevant once loaded.
 */
export class DiTWrapper extends Module implements DiffusionModel {
  readonly model: DiffusionTransformer;
  constructor(config: DiTConfig) {
    super();
    this.model = this.module('model', new DiffusionTransformer(config));
  }
  static fromConfig(config: DiTConfig): DiTWrapper {
    return new DiTWrapper(config);
  }
  forward(x: tf.Tensor, t: tf.Tensor, cond: DiffusionCond = {}): tf.Tensor3D {
    return this.model.forward(x, t, cond);
  }
}
