// Hugging Face `CLIPVisionModelWithProjection` (openai/clip-vit-base-patch32), docs/REFERENCE.md §4.3.
// Children carry the HF state-dict names (`vision_model.pre_layrnorm` is HF's spelling). The patch conv has
// kernel = stride and no bias, so it is a reshape + matmul.
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, type Parameter } from '../nn/module.ts';
import type { WeightDerivation } from '../nn/residency.ts';
import { Embedding, LayerNorm, Linear } from '../nn/layers.ts';
import * as F from '../nn/functional.ts';

/** The HF CLIPVisionConfig keys this tower needs (snake_case as in config.json). */
export interface CLIPVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  image_size: number;
  patch_size: number;
  projection_dim: number;
  layer_norm_eps: number;
  num_channels?: number;
  hidden_act?: 'quick_gelu' | 'gelu';
}

/** CLIPVisionConfig() defaults = openai/clip-vit-base-patch32. */
export const CLIP_VIT_B32: CLIPVisionConfig = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  image_size: 224,
  patch_size: 32,
  projection_dim: 512,
  layer_norm_eps: 1e-5,
  num_channels: 3,
  hidden_act: 'quick_gelu',
};

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/**
 * The conditioners' pixel pipeline: uint8 values (int32 or float tensor, channels on axis −3, e.g.
 * [N, 3, H, W] or [B, T, 3, H, W]) → /255 → torchvision Normalize(CLIP mean, CLIP std). No resize.
 */
export function clipPixelValues(frames: tf.Tensor): tf.Tensor {
  if (frames.rank < 3 || frames.shape[frames.rank - 3] !== 3) {
    throw new Error(`clipPixelValues: expected frames [..., 3, H, W], got [${frames.shape}]`);
  }
  return tf.tidy(() => {
    const bcast = [3, 1, 1];
    const mean = tf.tensor(CLIP_MEAN as unknown as number[], bcast);
    const std = tf.tensor(CLIP_STD as unknown as number[], bcast);
    return frames.toFloat().div(255).sub(mean).div(std);
  });
}

/** A bias-free Conv2d with kernel = stride (`weight [D, C, P, P]`), computed as patches · Wᵀ. */
class PatchConv2d extends Module {
  readonly weight: Parameter;
  private flat: tf.Tensor2D | null = null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly patch: number,
  ) {
    super();
    this.weight = this.param('weight', [outChannels, inChannels, patch, patch]);
  }
  override derivation(): WeightDerivation {
    return {
      mode: 'copy',
      sources: [this.weight],
      derive: () => {
        this.flat?.dispose();
        // [D, C·P·P] pre-transposed to [C·P·P, D]: wasm matmuls are slow with transposeB.
        this.flat = tf.keep(tf.tidy(() => this.weight.value.reshape([this.outChannels, -1]).transpose() as tf.Tensor2D));
      },
    };
  }
  protected override onDispose(): void {
    this.flat?.dispose();
    this.flat = null;
  }
  /** [N, C, H, W] → [N, (H/P)·(W/P), D], patches in row-major (h, w) order = torch's flatten(2).transpose(1, 2). */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    if (!this.flat) throw new Error(`${this.path || 'PatchConv2d'}: weights not loaded`);
    const [n, c, h, w] = x.shape;
    const p = this.patch;
    const gh = Math.floor(h / p);
    const gw = Math.floor(w / p);
    return tf.tidy(() => {
      // Conv2d with stride P silently drops a remainder; so do we.
      const xs = h % p || w % p ? x.slice([0, 0, 0, 0], [n, c, gh * p, gw * p]) : x;
      // [N, C, gh, P, gw, P] → [N, gh·gw, C, P·P] in two rank-4 transposes (faster on wasm than one rank-6).
      const rows = xs.reshape([n * c * gh, p, gw, p]).transpose([0, 2, 1, 3]); // [(N C gh), gw, P, P]
      const patches = rows
        .reshape([n, c, gh * gw, p * p])
        .transpose([0, 2, 1, 3])
        .reshape([n * gh * gw, c * p * p]);
      return tf.matMul(patches, this.flat!).reshape([n, gh * gw, this.outChannels]) as tf.Tensor3D;
    });
  }
}

export class CLIPVisionEmbeddings extends Module {
  readonly class_embedding: Parameter;
  readonly patch_embedding: PatchConv2d;
  /** Only its weight table is read (positions 0..N−1, whole). */
  readonly position_embedding: Embedding;
  readonly numPositions: number;
  constructor(readonly config: CLIPVisionConfig) {
    super();
    const d = config.hidden_size;
    this.numPositions = (config.image_size / config.patch_size) ** 2 + 1;
    this.class_embedding = this.param('class_embedding', [d]);
    this.patch_embedding = this.module('patch_embedding', new PatchConv2d(config.num_channels ?? 3, d, config.patch_size));
    this.position_embedding = this.module('position_embedding', new Embedding(this.numPositions, d));
    // = arange(numPositions); persisted by older transformers versions only (quirk 18).
    this.buffer('position_ids', [1, this.numPositions], 'int32', true);
  }
  /** [N, C, H, W] → [N, 1 + patches, D] */
  forward(pixels: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const patches = this.patch_embedding.forward(pixels);
      const [n, , d] = patches.shape;
      const cls = tf.broadcastTo(this.class_embedding.value.reshape([1, 1, d]), [n, 1, d]);
      return tf.concat([cls, patches], 1).add(this.position_embedding.weight.value) as tf.Tensor3D;
    });
  }
}

export class CLIPAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly out_proj: Linear;
  constructor(
    readonly dim: number,
    readonly heads: number,
  ) {
    super();
    this.q_proj = this.module('q_proj', new Linear(dim, dim));
    this.k_proj = this.module('k_proj', new Linear(dim, dim));
    this.v_proj = this.module('v_proj', new Linear(dim, dim));
    this.out_proj = this.module('out_proj', new Linear(dim, dim));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const split = (l: Linear) => F.splitHeads(l.forward(x), this.heads);
      const out = F.attention(split(this.q_proj), split(this.k_proj), split(this.v_proj));
      return this.out_proj.forward(F.mergeHeads(out)) as tf.Tensor3D;
    });
  }
}

export class CLIPMLP extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(
    dim: number,
    hidden: number,
    readonly act: 'quick_gelu' | 'gelu' = 'quick_gelu',
  ) {
    super();
    this.fc1 = this.module('fc1', new Linear(dim, hidden));
    this.fc2 = this.module('fc2', new Linear(hidden, dim));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = this.fc1.forward(x);
      return this.fc2.forward(this.act === 'quick_gelu' ? F.quickGelu(h) : F.gelu(h));
    });
  }
}

export class CLIPEncoderLayer extends Module {
  readonly self_attn: CLIPAttention;
  readonly layer_norm1: LayerNorm;
  readonly mlp: CLIPMLP;
  readonly layer_norm2: LayerNorm;
  constructor(c: CLIPVisionConfig) {
    super();
    const eps = c.layer_norm_eps;
    this.self_attn = this.module('self_attn', new CLIPAttention(c.hidden_size, c.num_attention_heads));
    this.layer_norm1 = this.module('layer_norm1', new LayerNorm(c.hidden_size, { eps }));
    this.mlp = this.module('mlp', new CLIPMLP(c.hidden_size, c.intermediate_size, c.hidden_act ?? 'quick_gelu'));
    this.layer_norm2 = this.module('layer_norm2', new LayerNorm(c.hidden_size, { eps }));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const h = x.add(this.self_attn.forward(this.layer_norm1.forward(x) as tf.Tensor3D));
      return h.add(this.mlp.forward(this.layer_norm2.forward(h))) as tf.Tensor3D;
    });
  }
}

export class CLIPEncoder extends Module {
  readonly layers: ModuleList<CLIPEncoderLayer>;
  constructor(c: CLIPVisionConfig) {
    super();
    this.layers = this.module('layers', new ModuleList(Array.from({ length: c.num_hidden_layers }, () => new CLIPEncoderLayer(c))));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.layers.items.reduce((h, l) => l.forward(h), x));
  }
}

export class CLIPVisionTransformer extends Module {
  readonly embeddings: CLIPVisionEmbeddings;
  readonly pre_layrnorm: LayerNorm;
  readonly encoder: CLIPEncoder;
  readonly post_layernorm: LayerNorm;
  constructor(readonly config: CLIPVisionConfig) {
    super();
    const eps = config.layer_norm_eps;
    this.embeddings = this.module('embeddings', new CLIPVisionEmbeddings(config));
    this.pre_layrnorm = this.module('pre_layrnorm', new LayerNorm(config.hidden_size, { eps }));
    this.encoder = this.module('encoder', new CLIPEncoder(config));
    this.post_layernorm = this.module('post_layernorm', new LayerNorm(config.hidden_size, { eps }));
  }
  /** pixel_values [N, C, S, S] → last_hidden_state [N, 1 + (S/P)², D] (before post_layernorm). */
  forward(pixels: tf.Tensor4D): tf.Tensor3D {
    const { image_size: s, num_channels: c = 3 } = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== c || pixels.shape[2] !== s || pixels.shape[3] !== s) {
      throw new Error(`CLIP vision: expected pixel_values [N, ${c}, ${s}, ${s}], got [${pixels.shape}]`);
    }
    return tf.tidy(() => {
      const h = this.pre_layrnorm.forward(this.embeddings.forward(pixels)) as tf.Tensor3D;
      return this.encoder.forward(h);
    });
  }
}

export interface CLIPVisionOutput {
  /** [N, 1 + patches, D], the output of the last encoder layer (what the AudioX conditioners use). */
  lastHiddenState: tf.Tensor3D;
  /** [N, projection_dim] = visual_projection(post_layernorm(CLS)). */
  imageEmbeds: tf.Tensor2D;
}

export class CLIPVisionModelWithProjection extends Module {
  readonly vision_model: CLIPVisionTransformer;
  readonly visual_projection: Linear;
  constructor(readonly config: CLIPVisionConfig = CLIP_VIT_B32) {
    super();
    this.vision_model = this.module('vision_model', new CLIPVisionTransformer(config));
    this.visual_projection = this.module('visual_projection', new Linear(config.hidden_size, config.projection_dim, { bias: false }));
  }

  /** Builds from HF CLIPVisionConfig keys; missing keys take the clip-vit-base-patch32 values. */
  static fromConfig(cfg: Partial<CLIPVisionConfig> = {}): CLIPVisionModelWithProjection {
    const c = { ...CLIP_VIT_B32, ...cfg };
    if (c.hidden_size % c.num_attention_heads) {
      throw new Error(`CLIP vision: hidden_size ${c.hidden_size} is not divisible by ${c.num_attention_heads} heads`);
    }
    if (c.image_size % c.patch_size) throw new Error(`CLIP vision: image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
    return new CLIPVisionModelWithProjection(c);
  }

  /** Tokens per image: 1 (CLS) + (image_size / patch_size)² (50 for ViT-B/32 at 224 px). */
  get numTokens(): number {
    return this.vision_model.embeddings.numPositions;
  }

  /** pixel_values [N, C, S, S] (already normalised) → last_hidden_state only. */
  lastHiddenState(pixels: tf.Tensor4D): tf.Tensor3D {
    return this.vision_model.forward(pixels);
  }

  forward(pixels: tf.Tensor4D): CLIPVisionOutput {
    return tf.tidy(() => {
      const lastHiddenState = this.vision_model.forward(pixels);
      const [n, , d] = lastHiddenState.shape;
      const cls = lastHiddenState.slice([0, 0, 0], [n, 1, d]).reshape([n, d]);
      const imageEmbeds = this.visual_projection.forward(this.vision_model.post_layernorm.forward(cls)) as tf.Tensor2D;
      return { lastHiddenState, imageEmbeds };
    });
  }
}
