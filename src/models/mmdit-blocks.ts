// Building blocks of the MMDiT (audiox/models/mm_transformer_layers.py, mm_blocks.py,
// mm_embeddings.py): MMDitSingleBlock with per-token adaLN, interleaved qkv, q/k RMSNorm, GPT-J
// style RoPE, and k=3 convolutions over tokens. docs/REFERENCE.md §3.3–3.4, quirks 5–8.
import * as tf from '@tensorflow/tfjs';
import { Activation, Module, Sequential, type WeightDerivation } from '../nn/index.ts';
import * as F from '../nn/functional.ts';
import { applyRotary, type RotaryTables } from '../nn/rotary.ts';
import { ChannelLastConv1d, TransposedLinear } from '../nn/relaid-layers.ts';

/** The reference's RMSNorm(hd): its `scale` is a plain tensor that is never applied (quirk 8). */
const rms = (x: tf.Tensor) => F.rmsNorm(x, null, 1e-6);

/** einops 'b n (h d j) -> j b h n d': splits an interleaved projection [B, N, H·hd·J] into J heads tensors. */
function splitInterleaved(x: tf.Tensor, heads: number, j: number): tf.Tensor4D[] {
  const [b, n, c] = x.shape;
  const hd = c / (heads * j);
  const parts = x.reshape([b, n, heads, hd, j]).transpose([4, 0, 2, 1, 3]); // [J, B, H, N, hd]
  return tf.unstack(parts) as tf.Tensor4D[];
}

/**
 * Regroups the rows of an interleaved projection weight [(h d j), ...] as [(j h d), ...], so that its
 * J parts come out of the matmul contiguous (no 5-D transpose per call). Moves whole rows.
 */
function deinterleaveRows(w: tf.Tensor, j: number): tf.Tensor {
  return tf.tidy(() => {
    const [rows, ...rest] = w.shape;
    const inner = rest.reduce((a, b) => a * b, 1);
    return w.reshape([rows / j, j, inner]).transpose([1, 0, 2]).reshape(w.shape);
  });
}

/** hidden = multiple_of · ceil(int(2·hidden/3) / multiple_of) (LLaMA-style SwiGLU sizing). */
export function swigluHidden(hidden: number, multipleOf = 256): number {
  const h = Math.trunc((2 * hidden) / 3);
  return multipleOf * Math.ceil(h / multipleOf);
}

interface TokenMap extends Module {
  forward(x: tf.Tensor): tf.Tensor;
}

/** ConvMLP (k > 1) / MLP (k = 1): w2(SiLU(w1 x) ⊙ w3 x), no biases. */
export class ConvMLP extends Module {
  readonly w1: TokenMap;
  readonly w2: TokenMap;
  readonly w3: TokenMap;
  constructor(dim: number, hidden: number, kernelSize: number, padding: number) {
    super();
    const h = swigluHidden(hidden);
    const make = (i: number, o: number): TokenMap =>
      kernelSize === 1 ? new TransposedLinear(i, o, { bias: false }) : new ChannelLastConv1d(i, o, kernelSize, padding, { bias: false });
    this.w1 = this.module('w1', make(dim, h));
    this.w2 = this.module('w2', make(h, dim));
    this.w3 = this.module('w3', make(dim, h));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.w2.forward(F.silu(this.w1.forward(x)).mul(this.w3.forward(x))));
  }
}

/**
 * SelfAttention: qkv Linear with an interleaved (h d j) output; only `pre_attention` is used. The
 * qkv rows are regrouped to (j h d) at load time, so q, k and v are contiguous parts of its output
 * (a capture of `attn.qkv` therefore sees that order, not the reference's interleaved one).
 */
export class SelfAttention extends Module {
  readonly qkv: TransposedLinear;
  constructor(
    readonly dim: number,
    readonly nheads: number,
  ) {
    super();
    this.qkv = this.module('qkv', new TransposedLinear(dim, 3 * dim));
  }

  /**
   * Rewrites qkv's rows before qkv derives its own layout (parents first), while its weight is still in
   * torch layout; the regrouped rows end up in qkv's derived tensors, so nothing of its own is cached.
   */
  override derivation(): WeightDerivation {
    const { weight, bias } = this.qkv;
    return {
      mode: 'rewrite',
      sources: bias ? [weight, bias] : [weight],
      derive: () => {
        if (!weight.loaded) return; // already derived by an earlier load
        weight.set(deinterleaveRows(weight.value, 3));
        if (bias?.loaded) bias.set(deinterleaveRows(bias.value, 3));
      },
      exportDerived: () => ({ tensors: {} }),
      importDerived: () => {},
    };
  }

  /** x [B, L, D] → q, k, v [B, H, L, hd]; q and k RMS-normalised per head, then rotated. */
  preAttention(x: tf.Tensor, rope: RotaryTables | null): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.qkv.forward(x), 3, -1).map((t) => F.splitHeads(t, this.nheads));
      const qn = rms(q);
      const kn = rms(k);
      if (!rope) return [qn, kn, v] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      return [applyRotary(qn, rope), applyRotary(kn, rope), v] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    });
  }
}

/** CrossAttention: to_q (contiguous heads), to_kv (interleaved, j = 2), no output projection. */
export class CrossAttention extends Module {
  readonly to_q: TransposedLinear;
  readonly to_kv: TransposedLinear;
  constructor(
    readonly dim: number,
    readonly nheads: number,
  ) {
    super();
    this.to_q = this.module('to_q', new TransposedLinear(dim, dim, { bias: false }));
    this.to_kv = this.module('to_kv', new TransposedLinear(dim, 2 * dim, { bias: false }));
  }

  /** x [B, N, D], context [B, M, D] → [B, N, D]. */
  forward(x: tf.Tensor, context: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.broadcastTo(this.attend(x, context), x.shape));
  }

  /** As `forward`, but [B, 1, D] (the same row for every query) when the context is one token. */
  attend(x: tf.Tensor, context: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [kProj, vProj] = splitInterleaved(this.to_kv.forward(context), this.nheads, 2);
      // Quirk 7: `q, v, k = pre_attention(...)` swaps the names, so the RMS-normed k-projection is
      // used as the VALUES and the raw v-projection as the KEYS.
      const keys = vProj;
      const values = rms(kProj) as tf.Tensor4D;
      // One context token (the timestep token): the softmax weight is exactly 1, the output is the
      // value itself for every query, so q is not needed.
      if (context.shape[1] === 1) return F.mergeHeads(values);
      const q = rms(F.splitHeads(this.to_q.forward(x), this.nheads)) as tf.Tensor4D;
      return F.mergeHeads(F.attention(q, keys, values));
    });
  }
}

export interface MMDitSingleBlockOptions {
  mlpRatio?: number;
  kernelSize?: number;
  padding?: number;
  crossAttend?: boolean;
}

/** MMDitSingleBlock(dim, nhead, mlp_ratio, pre_only=False, kernel_size, padding, cross_attend). */
export class MMDitSingleBlock extends Module {
  readonly attn: SelfAttention;
  readonly cross_attn: CrossAttention | null;
  readonly linear1: TokenMap;
  readonly ffn: ConvMLP;
  readonly adaLN_modulation: Sequential;

  constructor(
    readonly dim: number,
    readonly nhead: number,
    opts: MMDitSingleBlockOptions = {},
  ) {
    super();
    const { mlpRatio = 4.0, kernelSize = 7, padding = 3, crossAttend = false } = opts;
    if (dim % nhead !== 0) throw new Error(`MMDitSingleBlock: dim ${dim} is not divisible by ${nhead} heads`);
    this.attn = this.module('attn', new SelfAttention(dim, nhead));
    this.cross_attn = crossAttend ? this.module('cross_attn', new CrossAttention(dim, nhead)) : null;
    this.linear1 = this.module('linear1', kernelSize === 1 ? new TransposedLinear(dim, dim) : new ChannelLastConv1d(dim, dim, kernelSize, padding));
    this.ffn = this.module('ffn', new ConvMLP(dim, Math.trunc(dim * mlpRatio), kernelSize, padding));
    this.adaLN_modulation = this.module('adaLN_modulation', new Sequential(new Activation('silu'), new TransposedLinear(dim, 6 * dim)));
  }

  /**
   * x [B, L, D] (timestep token + latents), cond [B, L, D] (multimodal tokens: per-token modulation,
   * quirk 8), context [B, 1, D] (the timestep token, as cross-attention context) → [B, L, D].
   */
  forward(x: tf.Tensor, cond: tf.Tensor, rope: RotaryTables | null, context: tf.Tensor | null = null): tf.Tensor {
    return tf.tidy(() => {
      const modulation = this.adaLN_modulation.forward(cond);
      const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = tf.split(modulation, 6, -1);
      const modulate = (h: tf.Tensor, shift: tf.Tensor, scale: tf.Tensor) =>
        F.layerNorm(h, null, null, 1e-5).mul(scale.add(1)).add(shift);

      const [q, k, v] = this.attn.preAttention(modulate(x, shiftMsa, scaleMsa), rope);
      const a = F.mergeHeads(F.attention(q, k, v));
      let h = x.add(this.linear1.forward(a).mul(gateMsa));
      if (context && this.cross_attn) h = h.add(this.cross_attn.attend(h, context)); // [B, 1, D] broadcasts
      return h.add(this.ffn.forward(modulate(h, shiftMlp, scaleMlp)).mul(gateMlp));
    });
  }
}
