// MotionFormer video branch of Synchformer (audiox/models/synchformer/{motionformer,vit_helper,video_model_builder}.py;
// docs/REFERENCE.md §6.3): divided space-time ViT (config divided_224_16x4.yaml, POS_EMBED "separate"), features
// extracted per segment, spatial aggregation by a CLS-pooled TransformerEncoderLayer, temporal aggregation Identity.
// Children carry the reference's state-dict names (relative to `vfeat_extractor.`).
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, type Parameter } from '../../nn/module.ts';
import type { WeightDerivation } from '../../nn/residency.ts';
import { LayerNorm, Linear } from '../../nn/layers.ts';
import { TransformerEncoderLayer } from '../../nn/mha.ts';
import * as F from '../../nn/functional.ts';

export interface MotionFormerConfig {
  /** VIT.EMBED_DIM (768) */
  embed_dim: number;
  /** VIT.DEPTH (12) */
  depth: number;
  /** VIT.NUM_HEADS (12) */
  num_heads: number;
  /** VIT.MLP_RATIO (4) */
  mlp_ratio: number;
  /** VIT.PATCH_SIZE (16) */
  patch_size: number;
  /** VIT.PATCH_SIZE_TEMP (2) */
  patch_size_temp: number;
  /** VIT.TEMPORAL_RESOLUTION (8): token frames per segment = frames / patch_size_temp. */
  temporal_resolution: number;
  /** DATA.TRAIN_CROP_SIZE (224) */
  img_size: number;
  /** VIT.CHANNELS (3) */
  channels: number;
  /** VIT.QKV_BIAS (true) */
  qkv_bias: boolean;
}

/** divided_224_16x4.yaml as patched by the reference. */
export const MOTIONFORMER_DIVIDED_224_16X4: MotionFormerConfig = {
  embed_dim: 768,
  depth: 12,
  num_heads: 12,
  mlp_ratio: 4,
  patch_size: 16,
  patch_size_temp: 2,
  temporal_resolution: 8,
  img_size: 224,
  channels: 3,
  qkv_bias: true,
};

const LN_EPS = 1e-6;

/** Conv2d patch embedding: in the state dict, unused by the video path (patch_embed_3d is used). */
class PatchEmbed extends Module {
  readonly proj: Module;
  constructor(c: MotionFormerConfig) {
    super();
    this.proj = this.module('proj', new WeightOnly([c.embed_dim, c.channels, c.patch_size, c.patch_size], true));
  }
}

class WeightOnly extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(shape: number[], bias: boolean) {
    super();
    this.weight = this.param('weight', shape);
    this.bias = bias ? this.param('bias', [shape[0]]) : null;
  }
}

/**
 * Conv3d(C → D, kernel = stride = (kt, P, P)) as a matmul over non-overlapping tubelets.
 * Input frames-first [N, T, C, H, W] (the reference permutes to [N, C, T, H, W] first; the token order is the
 * same): output [N, t·h·w, D], token index t·(h·w) + y·w + x.
 */
export class PatchEmbed3D extends Module {
  readonly proj: WeightOnly;
  private flat: tf.Tensor2D | null = null;
  constructor(readonly c: MotionFormerConfig) {
    super();
    this.proj = this.module('proj', new WeightOnly([c.embed_dim, c.channels, c.patch_size_temp, c.patch_size, c.patch_size], true));
  }
  override derivation(): WeightDerivation {
    return {
      mode: 'copy',
      sources: [this.proj.weight],
      derive: () => {
        this.flat?.dispose();
        // [D, C, kt, P, P] → [kt·C·P·P, D] (tubelet order below; pre-transposed: wasm matmuls are slow with transposeB).
        this.flat = tf.keep(
          tf.tidy(() => this.proj.weight.value.transpose([0, 2, 1, 3, 4]).reshape([this.c.embed_dim, -1]).transpose() as tf.Tensor2D),
        );
      },
    };
  }
  protected override onDispose(): void {
    this.flat?.dispose();
    this.flat = null;
  }
  forward(x: tf.Tensor5D): tf.Tensor3D {
    if (!this.flat) throw new Error(`${this.path || 'PatchEmbed3D'}: weights not loaded`);
    const [n, T, c, H, W] = x.shape;
    const { patch_size: p, patch_size_temp: kt, embed_dim: d } = this.c;
    const [t, h, w] = [T / kt, H / p, W / p];
    return tf.tidy(() => {
      // [N·t, kt·C, h, P, w, P] → [N·t, h·w, kt·C, P·P] in two rank-4 transposes (much faster on wasm than one rank-6).
      const rows = x.reshape([n * t * kt * c * h, p, w, p]).transpose([0, 2, 1, 3]); // [(N t kt C h), w, P, P]
      const tubelets = rows
        .reshape([n * t, kt * c, h * w, p * p])
        .transpose([0, 2, 1, 3])
        .reshape([n * t * h * w, kt * c * p * p]);
      return tf.matMul(tubelets, this.flat!).add(this.proj.bias!.value).reshape([n, t * h * w, d]) as tf.Tensor3D;
    });
  }
}

export type { DividedAxis } from '../../nn/functional.ts';

/**
 * DividedAttention: the CLS query attends to all 1 + F·P keys; every patch query attends to the CLS key plus the
 * tokens of its group (time: its F frames at the same position; space: the P positions of its frame).
 */
export class DividedAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(
    readonly dim: number,
    readonly heads: number,
    qkvBias: boolean,
  ) {
    super();
    this.qkv = this.module('qkv', new Linear(dim, dim * 3, { bias: qkvBias }));
    this.proj = this.module('proj', new Linear(dim, dim));
  }

  /** x [N, 1 + F·P, D] → [N, 1 + F·P, D] */
  forward(x: tf.Tensor3D, axis: F.DividedAxis, frames: number, positions: number): tf.Tensor3D {
    return tf.tidy(() => {
      const heads = F.dividedAttention(this.qkv.forward(x) as tf.Tensor3D, { heads: this.heads, frames, positions, axis });
      return this.proj.forward(heads) as tf.Tensor3D;
    });
  }
}

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = this.module('fc1', new Linear(dim, hidden));
    this.fc2 = this.module('fc2', new Linear(hidden, dim));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(F.gelu(this.fc1.forward(x))));
  }
}

/** x += TimeAttn(norm3 x); x += SpaceAttn(norm1 x); x += MLP(norm2 x). */
export class DividedSpaceTimeBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: DividedAttention;
  readonly timeattn: DividedAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly norm3: LayerNorm;
  constructor(c: MotionFormerConfig) {
    super();
    const d = c.embed_dim;
    this.norm1 = this.module('norm1', new LayerNorm(d, { eps: LN_EPS }));
    this.attn = this.module('attn', new DividedAttention(d, c.num_heads, c.qkv_bias));
    this.timeattn = this.module('timeattn', new DividedAttention(d, c.num_heads, c.qkv_bias));
    this.norm2 = this.module('norm2', new LayerNorm(d, { eps: LN_EPS }));
    this.mlp = this.module('mlp', new Mlp(d, d * c.mlp_ratio));
    this.norm3 = this.module('norm3', new LayerNorm(d, { eps: LN_EPS }));
  }
  forward(x: tf.Tensor3D, frames: number, positions: number): tf.Tensor3D {
    return tf.tidy(() => {
      let h = x.add(this.timeattn.forward(this.norm3.forward(x) as tf.Tensor3D, 'time', frames, positions));
      h = h.add(this.attn.forward(this.norm1.forward(h) as tf.Tensor3D, 'space', frames, positions));
      return h.add(this.mlp.forward(this.norm2.forward(h))) as tf.Tensor3D;
    });
  }
}

/**
 * SpatialTransformerEncoderLayer: nn.TransformerEncoderLayer(norm_first, GELU, eps 1e-6) over each frame's patches
 * with its own prepended `cls_token`; returns the CLS output per frame. Only the CLS row of the output is used, so
 * only that row is computed (LayerNorm, attention queries and MLP are per token: the result is identical).
 */
export class SpatialTransformerEncoderLayer extends TransformerEncoderLayer {
  readonly cls_token: Parameter;
  constructor(dModel: number, nhead: number, dimFeedforward: number) {
    super(dModel, nhead, { dimFeedforward, activation: 'gelu', normFirst: true, layerNormEps: LN_EPS });
    this.cls_token = this.param('cls_token', [1, 1, dModel]);
  }
  /** x [BS, t, h·w, D] → [BS, t, D] */
  override forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [bs, t, hw, d] = x.shape;
      const seq = x.reshape([bs * t, hw, d]);
      const cls = tf.broadcastTo(this.cls_token.value, [bs * t, 1, d]);
      const h = this.norm1.forward(tf.concat([cls, seq], 1));
      const h0 = h.slice([0, 0, 0], [bs * t, 1, d]);
      const y = cls.add(this.self_attn.forward(h0, h, h));
      const out = y.add(this.linear2.forward(F.gelu(this.linear1.forward(this.norm2.forward(y)))));
      return out.reshape([bs, t, d]);
    });
  }
}

export class MotionFormer extends Module {
  readonly patch_embed: PatchEmbed;
  readonly patch_embed_3d: PatchEmbed3D;
  readonly cls_token: Parameter;
  readonly pos_embed: Parameter;
  readonly temp_embed: Parameter;
  readonly blocks: ModuleList<DividedSpaceTimeBlock>;
  readonly norm: LayerNorm;
  readonly spatial_attn_agg: SpatialTransformerEncoderLayer;
  /** Patches per frame (196). */
  readonly positions: number;

  constructor(readonly config: MotionFormerConfig = MOTIONFORMER_DIVIDED_224_16X4) {
    super();
    const c = config;
    const d = c.embed_dim;
    if (d % c.num_heads) throw new Error(`MotionFormer: embed_dim ${d} is not divisible by ${c.num_heads} heads`);
    this.positions = (c.img_size / c.patch_size) ** 2;
    this.patch_embed = this.module('patch_embed', new PatchEmbed(c));
    this.patch_embed_3d = this.module('patch_embed_3d', new PatchEmbed3D(c));
    this.cls_token = this.param('cls_token', [1, 1, d]);
    this.pos_embed = this.param('pos_embed', [1, this.positions + 1, d]);
    this.temp_embed = this.param('temp_embed', [1, c.temporal_resolution, d]);
    this.blocks = this.module('blocks', new ModuleList(Array.from({ length: c.depth }, () => new DividedSpaceTimeBlock(c))));
    this.norm = this.module('norm', new LayerNorm(d, { eps: LN_EPS }));
    this.spatial_attn_agg = this.module('spatial_attn_agg', new SpatialTransformerEncoderLayer(d, c.num_heads, c.mlp_ratio * d));
  }

  /** Frames per segment the positional tables fit: temporal_resolution · patch_size_temp (16). */
  get segmentFrames(): number {
    return this.config.temporal_resolution * this.config.patch_size_temp;
  }

  /** Segments [N, T, C, H, W] (T = 16, 224 × 224, normalised to [−1, 1]) → per-frame features [N, t, D] (t = 8). */
  forward(x: tf.Tensor5D): tf.Tensor3D {
    const c = this.config;
    const [, T, ch, H, W] = x.shape;
    if (x.rank !== 5 || T !== this.segmentFrames || ch !== c.channels || H !== c.img_size || W !== c.img_size) {
      throw new Error(
        `MotionFormer: expected segments [N, ${this.segmentFrames}, ${c.channels}, ${c.img_size}, ${c.img_size}], got [${x.shape}]`,
      );
    }
    return tf.tidy(() => {
      const n = x.shape[0];
      const d = c.embed_dim;
      const frames = c.temporal_resolution;
      const tokens = this.patch_embed_3d.forward(x); // [N, F·P, D]
      // "separate" positions: CLS gets pos_embed[0]; token (f, p) gets pos_embed[1 + p] + temp_embed[f].
      const pos = this.pos_embed.value;
      const spatial = pos.slice([0, 1, 0], [1, this.positions, d]).reshape([1, 1, this.positions, d]);
      const temporal = this.temp_embed.value.reshape([1, frames, 1, d]);
      const patchPos = spatial.add(temporal).reshape([1, frames * this.positions, d]);
      const cls = tf.broadcastTo(this.cls_token.value.add(pos.slice([0, 0, 0], [1, 1, d])), [n, 1, d]);
      let h = tf.concat([cls, tokens.add(patchPos)], 1) as tf.Tensor3D;
      for (const blk of this.blocks.items) h = blk.forward(h, frames, this.positions);
      const feats = this.norm.forward(h.slice([0, 1, 0], [n, frames * this.positions, d])); // CLS dropped
      // restore_spatio_temp_dims + '(BS t) (h w) D' = a plain reshape of the token axis into (t, h·w).
      return this.spatial_attn_agg.forward(feats.reshape([n, frames, this.positions, d])) as tf.Tensor3D;
    });
  }
}
