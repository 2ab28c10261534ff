// T5 encoder (Hugging Face `T5EncoderModel`), the text tower of `T5Conditioner` (docs/REFERENCE.md §4.5).
//
// Parameter names are exactly HF's: `shared.weight`, `encoder.embed_tokens.weight` (tied to `shared`),
// `encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight` (+ `relative_attention_bias.weight` on
// block 0 only), `encoder.block.{i}.layer.0.layer_norm.weight`, `encoder.block.{i}.layer.1.DenseReluDense.
// {wi,wo}.weight` (gated: `wi_0`, `wi_1`, `wo`), `encoder.block.{i}.layer.1.layer_norm.weight`,
// `encoder.final_layer_norm.weight`.
//
// Precision: this runs in float32. The reference casts T5 to float16 (quirk 16: "T5 is fp16 on every
// device"), so against a CUDA run of AudioX expect ~1e-3 relative deviation in the text embedding
// (fp16 weights/matmuls and the ±65504 clamp after every sub-layer, which never triggers in fp32).
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, type Parameter } from '../nn/module.ts';
import { Embedding, Linear } from '../nn/layers.ts';
import * as F from '../nn/functional.ts';
import type { TensorSource } from '../io/safetensors.ts';

/** The keys of HF's T5 `config.json` that the encoder needs (snake_case as stored). */
export interface T5Config {
  vocab_size: number;
  d_model: number;
  d_kv: number;
  d_ff: number;
  num_layers: number;
  num_heads: number;
  relative_attention_num_buckets?: number;
  relative_attention_max_distance?: number;
  /** 'relu' (t5-base), 'gated-gelu' (flan-t5 / t5 v1.1), or '[gated-]<act>'. */
  feed_forward_proj?: string;
  layer_norm_epsilon?: number;
}

/** t5-base (the AudioX text encoder). */
export const T5_BASE_CONFIG: Required<T5Config> = {
  vocab_size: 32128,
  d_model: 768,
  d_kv: 64,
  d_ff: 3072,
  num_layers: 12,
  num_heads: 12,
  relative_attention_num_buckets: 32,
  relative_attention_max_distance: 128,
  feed_forward_proj: 'relu',
  layer_norm_epsilon: 1e-6,
};

/** HF applies `finfo(dtype).min` (not −∞) to padded keys, so a fully padded row stays finite. */
const FP32_MIN = -3.4028234663852886e38;

type Act = 'relu' | 'gelu' | 'gelu_new' | 'silu';

function parseFeedForward(proj: string): { gated: boolean; act: Act } {
  const parts = proj.split('-');
  const gated = parts.length === 2 && parts[0] === 'gated';
  if (parts.length > 2 || (parts.length === 2 && !gated)) {
    throw new Error(`T5: feed_forward_proj "${proj}" is not of the form "<act>" or "gated-<act>"`);
  }
  // HF maps "gated-gelu" to the tanh approximation (gelu_new) for backwards compatibility.
  const name = proj === 'gated-gelu' ? 'gelu_new' : parts[parts.length - 1];
  if (!['relu', 'gelu', 'gelu_new', 'silu'].includes(name)) throw new Error(`T5: unsupported activation "${name}"`);
  return { gated, act: name as Act };
}

function activate(x: tf.Tensor, act: Act): tf.Tensor {
  switch (act) {
    case 'relu':
      return tf.relu(x);
    case 'gelu':
      return F.gelu(x);
    case 'gelu_new':
      return F.geluTanh(x);
    case 'silu':
      return F.silu(x);
  }
}

/**
 * Bidirectional relative-position bucket of `Δ = key − query` (HF `_relative_position_bucket`):
 * half the buckets per direction, exact below `nb/4`, log-spaced up to `maxDistance`. The log branch
 * is evaluated in float32 like the reference (truncation at bucket boundaries depends on it).
 */
export function relativePositionBucket(delta: number, numBuckets: number, maxDistance: number): number {
  const nb = Math.floor(numBuckets / 2);
  const maxExact = Math.floor(nb / 2);
  const n = Math.abs(delta);
  const base = delta > 0 ? nb : 0;
  if (n < maxExact) return base + n;
  const f = Math.fround;
  const logRatio = f(Math.log(f(n / maxExact)));
  const large = maxExact + Math.trunc(f(f(logRatio / f(Math.log(maxDistance / maxExact))) * (nb - maxExact)));
  return base + Math.min(large, nb - 1);
}

/** T5LayerNorm: x · rsqrt(mean(x²) + eps) · w — no mean subtraction, no bias. */
export class T5LayerNorm extends Module {
  readonly weight: Parameter;
  constructor(
    readonly dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = this.param('weight', [dim]);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.rmsNorm(x, this.weight.value, this.eps);
  }
}

export class T5Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly relativeAttentionBias: Embedding | null;
  readonly heads: number;
  constructor(
    readonly cfg: Required<T5Config>,
    hasRelativeBias: boolean,
  ) {
    super();
    const inner = cfg.num_heads * cfg.d_kv;
    this.heads = cfg.num_heads;
    this.q = this.module('q', new Linear(cfg.d_model, inner, { bias: false }));
    this.k = this.module('k', new Linear(cfg.d_model, inner, { bias: false }));
    this.v = this.module('v', new Linear(cfg.d_model, inner, { bias: false }));
    this.o = this.module('o', new Linear(inner, cfg.d_model, { bias: false }));
    this.relativeAttentionBias = hasRelativeBias
      ? this.module('relative_attention_bias', new Embedding(cfg.relative_attention_num_buckets, cfg.num_heads))
      : null;
  }

  /** Relative position bias [1, H, L, L] (only the first block owns the table). */
  positionBias(length: number): tf.Tensor4D {
    if (!this.relativeAttentionBias) throw new Error('T5Attention: this layer has no relative_attention_bias');
    const { relative_attention_num_buckets: nb, relative_attention_max_distance: maxd } = this.cfg;
    const buckets = new Int32Array(length * length);
    for (let i = 0; i < length; i++) {
      for (let j = 0; j < length; j++) buckets[i * length + j] = relativePositionBucket(j - i, nb, maxd);
    }
    return tf.tidy(() => {
      const values = this.relativeAttentionBias!.forward(tf.tensor2d(buckets, [length, length], 'int32')); // [L, L, H]
      return values.transpose([2, 0, 1]).expandDims(0) as tf.Tensor4D;
    });
  }

  /** x [B, L, D], bias [B|1, H, L, L] (position bias + key mask, additive) → [B, L, D] */
  forward(x: tf.Tensor3D, bias: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const q = F.splitHeads(this.q.forward(x), this.heads);
      const k = F.splitHeads(this.k.forward(x), this.heads);
      const v = F.splitHeads(this.v.forward(x), this.heads);
      // T5 quirk: scores are not scaled by 1/√d_kv (the scale is folded into the initialisation).
      const h = F.attention(q, k, v, { mask: bias, scale: 1 });
      return this.o.forward(F.mergeHeads(h)) as tf.Tensor3D;
    });
  }
}

export class T5LayerSelfAttention extends Module {
  readonly SelfAttention: T5Attention;
  readonly layer_norm: T5LayerNorm;
  constructor(cfg: Required<T5Config>, hasRelativeBias: boolean) {
    super();
    this.SelfAttention = this.module('SelfAttention', new T5Attention(cfg, hasRelativeBias));
    this.layer_norm = this.module('layer_norm', new T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon));
  }
  forward(h: tf.Tensor3D, bias: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => h.add(this.SelfAttention.forward(this.layer_norm.forward(h) as tf.Tensor3D, bias)));
  }
}

/** `DenseReluDense` (wi, wo) or `DenseGatedActDense` (wi_0, wi_1, wo); HF uses the same child name. */
export class T5DenseActDense extends Module {
  readonly wi: Linear | null;
  readonly wi0: Linear | null;
  readonly wi1: Linear | null;
  readonly wo: Linear;
  readonly act: Act;
  constructor(cfg: Required<T5Config>) {
    super();
    const { gated, act } = parseFeedForward(cfg.feed_forward_proj);
    this.act = act;
    if (gated) {
      this.wi = null;
      this.wi0 = this.module('wi_0', new Linear(cfg.d_model, cfg.d_ff, { bias: false }));
      this.wi1 = this.module('wi_1', new Linear(cfg.d_model, cfg.d_ff, { bias: false }));
    } else {
      this.wi = this.module('wi', new Linear(cfg.d_model, cfg.d_ff, { bias: false }));
      this.wi0 = this.wi1 = null;
    }
    this.wo = this.module('wo', new Linear(cfg.d_ff, cfg.d_model, { bias: false }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const hidden = this.wi
        ? activate(this.wi.forward(x), this.act)
        : activate(this.wi0!.forward(x), this.act).mul(this.wi1!.forward(x));
      return this.wo.forward(hidden);
    });
  }
}

export class T5LayerFF extends Module {
  readonly DenseReluDense: T5DenseActDense;
  readonly layer_norm: T5LayerNorm;
  constructor(cfg: Required<T5Config>) {
    super();
    this.DenseReluDense = this.module('DenseReluDense', new T5DenseActDense(cfg));
    this.layer_norm = this.module('layer_norm', new T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon));
  }
  forward(h: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => h.add(this.DenseReluDense.forward(this.layer_norm.forward(h))) as tf.Tensor3D);
  }
}

export class T5Block extends Module {
  readonly layer: ModuleList<Module>;
  readonly selfAttention: T5LayerSelfAttention;
  readonly ff: T5LayerFF;
  constructor(cfg: Required<T5Config>, hasRelativeBias: boolean) {
    super();
    this.selfAttention = new T5LayerSelfAttention(cfg, hasRelativeBias);
    this.ff = new T5LayerFF(cfg);
    this.layer = this.module('layer', new ModuleList<Module>([this.selfAttention, this.ff]));
  }
  forward(h: tf.Tensor3D, bias: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => this.ff.forward(this.selfAttention.forward(h, bias)));
  }
}

/** The encoder `T5Stack`: embedding, blocks sharing block 0's position bias, final norm. */
export class T5Stack extends Module {
  readonly embed_tokens: Embedding;
  readonly block: ModuleList<T5Block>;
  readonly final_layer_norm: T5LayerNorm;
  constructor(readonly cfg: Required<T5Config>) {
    super();
    this.embed_tokens = this.module('embed_tokens', new Embedding(cfg.vocab_size, cfg.d_model));
    this.block = this.module(
      'block',
      new ModuleList(Array.from({ length: cfg.num_layers }, (_, i) => new T5Block(cfg, i === 0))),
    );
    this.final_layer_norm = this.module('final_layer_norm', new T5LayerNorm(cfg.d_model, cfg.layer_norm_epsilon));
  }

  /** ids [B, L] int32, mask [B, L] bool (true = real token) → last_hidden_state [B, L, D] */
  forward(ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [, length] = ids.shape;
      const keyMask = tf.where(mask.cast('bool'), tf.scalar(0), tf.scalar(FP32_MIN)).expandDims(1).expandDims(1); // [B,1,1,L]
      const bias = this.block.at(0).selfAttention.SelfAttention.positionBias(length).add(keyMask) as tf.Tensor4D;
      let h = this.embed_tokens.forward(ids) as tf.Tensor3D; // no embedding scaling in T5
      for (const b of this.block.items) h = b.forward(h, bias);
      return this.final_layer_norm.forward(h) as tf.Tensor3D;
    });
  }
}

/** Hugging Face `T5EncoderModel`: `shared` + `encoder`; the two embedding tables are tied. */
export class T5EncoderModel extends Module {
  readonly cfg: Required<T5Config>;
  readonly shared: Embedding;
  readonly encoder: T5Stack;
  constructor(config: T5Config) {
    super();
    this.cfg = { ...T5_BASE_CONFIG, ...withoutUndefined(config) };
    for (const k of ['vocab_size', 'd_model', 'd_kv', 'd_ff', 'num_layers', 'num_heads'] as const) {
      const v = config[k];
      if (!Number.isInteger(v) || v <= 0) throw new Error(`T5 config: "${k}" must be a positive integer, got ${String(v)}`);
    }
    this.shared = this.module('shared', new Embedding(this.cfg.vocab_size, this.cfg.d_model));
    this.encoder = this.module('encoder', new T5Stack(this.cfg));
  }

  /** Builds from the keys of HF's `config.json` (other keys are ignored). */
  static fromConfig(config: T5Config): T5EncoderModel {
    return new T5EncoderModel(config);
  }

  /**
   * Loads HF weights: a `T5EncoderModel` state dict or a full `T5ForConditionalGeneration` checkpoint
   * (t5-base's `model.safetensors`; `decoder.*` / `lm_head.*` are ignored). Tied embeddings that were
   * serialised once (`shared.weight` only, or only `encoder.embed_tokens.weight`) fill both slots.
   * Strict otherwise.
   */
  loadPretrained(source: TensorSource): void {
    this.loadStateDict(new TiedEmbeddingSource(source), { ignorePrefixes: ['decoder.', 'lm_head.'] });
  }

  /** input_ids [B, L] int32, attention_mask [B, L] (bool or 0/1) → last_hidden_state [B, L, d_model] */
  forward(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor3D {
    if (inputIds.rank !== 2) throw new Error(`T5: input_ids must be [B, L], got [${inputIds.shape}]`);
    if (attentionMask.shape.join() !== inputIds.shape.join()) {
      throw new Error(`T5: attention_mask [${attentionMask.shape}] does not match input_ids [${inputIds.shape}]`);
    }
    return this.encoder.forward(inputIds.dtype === 'int32' ? inputIds : (inputIds.cast('int32') as tf.Tensor2D), attentionMask);
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const TIED = ['shared.weight', 'encoder.embed_tokens.weight'] as const;

/** Serves whichever of the tied embedding keys is missing from the one that is present. */
class TiedEmbeddingSource implements TensorSource {
  constructor(private readonly inner: TensorSource) {}
  private resolve(key: string): string {
    const i = TIED.indexOf(key as (typeof TIED)[number]);
    if (i < 0 || this.inner.has(key)) return key;
    const other = TIED[1 - i];
    return this.inner.has(other) ? other : key;
  }
  keys(): string[] {
    const ks = this.inner.keys();
    if (!TIED.some((k) => ks.includes(k))) return ks;
    return [...new Set([...ks, ...TIED])];
  }
  has(key: string): boolean {
    return this.inner.has(this.resolve(key));
  }
  shape(key: string): number[] {
    return this.inner.shape(this.resolve(key));
  }
  read(key: string): tf.Tensor {
    return this.inner.read(this.resolve(key));
  }
}
