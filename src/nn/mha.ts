// torch.nn.MultiheadAttention and torch.nn.TransformerEncoderLayer with their state-dict layouts
// (packed `in_proj_weight` / `in_proj_bias`, `out_proj`), batch-first, inference only (no dropout).
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, type Parameter } from './module.ts';
import { LayerNorm, Linear } from './layers.ts';
import * as F from './functional.ts';

export interface MultiheadAttentionMasks {
  /** [B, Lk], torch semantics: `true` (or non-zero) = this key is padding and is ignored. */
  keyPaddingMask?: tf.Tensor | null;
  /**
   * [Lq, Lk] or [B·H, Lq, Lk], torch semantics: boolean `true` = not allowed to attend;
   * a float mask is added to the scores.
   */
  attnMask?: tf.Tensor | null;
}

/**
 * torch.nn.MultiheadAttention(embed_dim, num_heads, bias=True, batch_first=True) with
 * kdim = vdim = embed_dim: `in_proj_weight [3E, E]` holds Wq, Wk, Wv as contiguous row blocks.
 * Returns only the attention output (need_weights is irrelevant to it).
 */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Parameter;
  readonly inProjBias: Parameter | null;
  readonly out_proj: Linear;
  readonly headDim: number;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    if (embedDim % numHeads !== 0) throw new Error(`MultiheadAttention: embed_dim ${embedDim} is not divisible by num_heads ${numHeads}`);
    this.headDim = embedDim / numHeads;
    const bias = opts.bias ?? true;
    this.inProjWeight = this.param('in_proj_weight', [3 * embedDim, embedDim]);
    this.inProjBias = bias ? this.param('in_proj_bias', [3 * embedDim]) : null;
    this.out_proj = this.module('out_proj', new Linear(embedDim, embedDim, { bias }));
  }

  /** query [B, Lq, E], key/value [B, Lk, E] → [B, Lq, E]. */
  forward(query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, masks: MultiheadAttentionMasks = {}): tf.Tensor {
    return tf.tidy(() => {
      const e = this.embedDim;
      if (query.rank !== 3 || key.rank !== 3 || value.rank !== 3) {
        throw new Error(`MultiheadAttention: expected batch-first [B, L, ${e}] inputs, got [${query.shape}], [${key.shape}], [${value.shape}]`);
      }
      const w = this.inProjWeight.value;
      const b = this.inProjBias?.value;
      const proj = (x: tf.Tensor, i: number) =>
        F.linear(x, w.slice([i * e, 0], [e, e]), b ? b.slice([i * e], [e]) : null);
      const q = F.splitHeads(proj(query, 0), this.numHeads);
      const k = F.splitHeads(proj(key, 1), this.numHeads);
      const v = F.splitHeads(proj(value, 2), this.numHeads);
      const mask = this.additiveMask(masks, q.shape[0], q.shape[2], k.shape[2]);
      const out = F.attention(q, k, v, { mask });
      return this.out_proj.forward(F.mergeHeads(out));
    });
  }

  /** Combines torch-style masks into one additive mask broadcastable to [B, H, Lq, Lk] (or null). */
  private additiveMask(m: MultiheadAttentionMasks, b: number, lq: number, lk: number): tf.Tensor | null {
    const toAdditive = (t: tf.Tensor) =>
      t.dtype === 'bool' ? tf.where(t, tf.fill(t.shape, -Infinity), tf.zeros(t.shape)) : t.toFloat();
    let mask: tf.Tensor | null = null;
    if (m.attnMask) {
      const a = toAdditive(m.attnMask);
      mask = a.rank === 2 ? a.reshape([1, 1, lq, lk]) : a.reshape([b, this.numHeads, lq, lk]);
    }
    if (m.keyPaddingMask) {
      const kp = m.keyPaddingMask.dtype === 'bool' ? m.keyPaddingMask : m.keyPaddingMask.notEqual(0);
      const a = toAdditive(kp).reshape([b, 1, 1, lk]);
      mask = mask ? mask.add(a) : a;
    }
    return mask;
  }
}

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  activation?: 'relu' | 'gelu';
  normFirst?: boolean;
  layerNormEps?: number;
}

/**
 * torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, activation, batch_first=True,
 * norm_first) in eval mode. Children: self_attn, linear1, linear2, norm1, norm2.
 */
export class TransformerEncoderLayer extends Module {
  readonly self_attn: MultiheadAttention;
  readonly linear1: Linear;
  readonly linear2: Linear;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly activation: 'relu' | 'gelu';
  readonly normFirst: boolean;

  constructor(dModel: number, nhead: number, opts: TransformerEncoderLayerOptions = {}) {
    super();
    const ff = opts.dimFeedforward ?? 2048;
    const eps = opts.layerNormEps ?? 1e-5;
    this.activation = opts.activation ?? 'relu';
    this.normFirst = opts.normFirst ?? false;
    this.self_attn = this.module('self_attn', new MultiheadAttention(dModel, nhead));
    this.linear1 = this.module('linear1', new Linear(dModel, ff));
    this.linear2 = this.module('linear2', new Linear(ff, dModel));
    this.norm1 = this.module('norm1', new LayerNorm(dModel, { eps }));
    this.norm2 = this.module('norm2', new LayerNorm(dModel, { eps }));
  }

  /** [B, L, D] → [B, L, D] */
  forward(x: tf.Tensor, masks: MultiheadAttentionMasks = {}): tf.Tensor {
    return tf.tidy(() => {
      const sa = (h: tf.Tensor) => this.self_attn.forward(h, h, h, masks);
      const ff = (h: tf.Tensor) => {
        const a = this.linear1.forward(h);
        return this.linear2.forward(this.activation === 'gelu' ? F.gelu(a) : tf.relu(a));
      };
      if (this.normFirst) {
        const h = x.add(sa(this.norm1.forward(x)));
        return h.add(ff(this.norm2.forward(h)));
      }
      const h = this.norm1.forward(x.add(sa(x)));
      return this.norm2.forward(h.add(ff(h)));
    });
  }
}

/** torch.nn.TransformerEncoder without a final norm: `layers.{i}` applied in order. */
export class TransformerEncoder extends Module {
  readonly layers: ModuleList<TransformerEncoderLayer>;
  constructor(layers: TransformerEncoderLayer[]) {
    super();
    this.layers = this.module('layers', new ModuleList(layers));
  }
  forward(x: tf.Tensor, masks: MultiheadAttentionMasks = {}): tf.Tensor {
    return tf.tidy(() => this.layers.items.reduce((h, l) => l.forward(h, masks), x));
  }
}
