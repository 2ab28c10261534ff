// ContinuousTransformer (audiox/models/transformer.py): pre-norm blocks of self-attention with
// partial rotary embeddings, cross-attention with grouped key/value heads and a SwiGLU feed-forward
// (docs/REFERENCE.md §2.4–2.8). Shapes in PyTorch order.
//
// Performance notes: weights are kept transposed to [in, out] after loading and every projection is
// one plain 2-D matmul over all B·L rows (the fastest product on every backend); attention is nn's
// one scaled-dot-product core (a backend whose batched product is slow splits it in its own kernel).
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, Sequential } from '../nn/module.ts';
import { TransposedLinear } from '../nn/relaid-layers.ts';
import { Activation, LayerNorm, RotaryEmbedding } from '../nn/layers.ts';
import { applyRotary, rotateHalfTables, type RotaryTables } from '../nn/rotary.ts';
import * as F from '../nn/functional.ts';

/** Reference `Attention` (qk_norm 'none', no flash/natten paths). */
export class Attention extends Module {
  readonly heads: number;
  readonly kvHeads: number;
  readonly toQkv: TransposedLinear | null = null;
  readonly toQ: TransposedLinear | null = null;
  readonly toKv: TransposedLinear | null = null;
  readonly toOut: TransposedLinear;
  constructor(
    readonly dim: number,
    readonly dimHeads: number,
    /** Width of the context tokens for cross-attention; absent for self-attention. */
    readonly dimContext?: number,
  ) {
    super();
    const dimKv = dimContext ?? dim;
    this.heads = Math.floor(dim / dimHeads);
    this.kvHeads = Math.floor(dimKv / dimHeads);
    if (this.heads * dimHeads !== dim || this.kvHeads < 1 || this.heads % this.kvHeads !== 0) {
      throw new Error(
        `Attention: dim ${dim} / context ${dimKv} do not split into heads of ${dimHeads} with query heads a multiple of kv heads`,
      );
    }
    if (dimContext !== undefined) {
      this.toQ = this.module('to_q', new TransposedLinear(dim, dim, { bias: false }));
      this.toKv = this.module('to_kv', new TransposedLinear(dimKv, dimKv * 2, { bias: false, chunks: 2 }));
    } else {
      this.toQkv = this.module('to_qkv', new TransposedLinear(dim, dim * 3, { bias: false, chunks: 3 }));
    }
    this.toOut = this.module('to_out', new TransposedLinear(dim, dim, { bias: false }));
  }

  /**
   * x [B, L, dim] → [B, L, dim]. With `context` [B, S, dimContext] this is cross-attention (no
   * rotary); otherwise self-attention with rotary on q and k. Query head i reads kv head
   * ⌊i / (heads / kvHeads)⌋ (repeat_interleave, quirk 4).
   */
  forward(x: tf.Tensor3D, opts: { context?: tf.Tensor3D; rotary?: RotaryTables } = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, l] = x.shape;
      const { heads: h, kvHeads: hkv, dimHeads: d } = this;
      let q: tf.Tensor4D;
      let k: tf.Tensor4D;
      let v: tf.Tensor4D;
      let s = l;
      if (opts.context) {
        if (!this.toQ || !this.toKv) throw new Error(`${this.path}: self-attention module given a context`);
        s = opts.context.shape[1];
        q = this.toQ.forward(x).reshape([b, l, h, d]) as tf.Tensor4D;
        const [kk, vv] = this.toKv.forwardChunks(opts.context);
        k = kk.reshape([b, s, hkv, d]) as tf.Tensor4D;
        v = vv.reshape([b, s, hkv, d]) as tf.Tensor4D;
      } else {
        if (!this.toQkv) throw new Error(`${this.path}: cross-attention module called without a context`);
        const [qq, kk, vv] = this.toQkv.forwardChunks(x);
        q = qq.reshape([b, l, h, d]) as tf.Tensor4D;
        k = kk.reshape([b, l, h, d]) as tf.Tensor4D;
        v = vv.reshape([b, l, h, d]) as tf.Tensor4D;
        if (opts.rotary) {
          q = applyRotary(q, opts.rotary);
          k = applyRotary(k, opts.rotary);
        }
      }
      // No mask reaches the DiT attentions (quirk 2); query head i reads kv head ⌊i / (h / hkv)⌋.
      const heads = (t: tf.Tensor4D) => t.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, L, H, d] → [B, H, L, d]
      const out = F.mergeHeads(F.attention(heads(q), heads(k), heads(v)));
      return this.toOut.forward(out) as tf.Tensor3D;
    });
  }
}

/** `GLU(dim, inner, SiLU)`: proj → (value, gate) halves → value · SiLU(gate). */
export class GLU extends Module {
  readonly proj: TransposedLinear;
  constructor(dimIn: number, dimOut: number) {
    super();
    this.proj = this.module('proj', new TransposedLinear(dimIn, dimOut * 2, { chunks: 2 }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [value, gate] = this.proj.forwardChunks(x);
      return value.mul(gate.mul(tf.sigmoid(gate)));
    });
  }
}

/** SwiGLU feed-forward (mult 4); keys `ff.0.proj.*`, `ff.2.*` (indices 1 and 3 are Identity). */
export class FeedForward extends Module {
  readonly ff: Sequential;
  constructor(dim: number, mult = 4) {
    super();
    const inner = dim * mult;
    this.ff = this.module(
      'ff',
      new Sequential(new GLU(dim, inner), new Activation('identity'), new TransposedLinear(inner, dim), new Activation('identity')),
    );
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.ff.items[2].forward(this.ff.items[0].forward(x)));
  }
}

export interface BlockInputs {
  context?: tf.Tensor3D;
  rotary?: RotaryTables;
  /** [B, globalCondDim] for the adaLN variant. */
  globalCond?: tf.Tensor;
}

/** Reference `TransformerBlock` (no conformer, norms kept). */
export class TransformerBlock extends Module {
  readonly preNorm: LayerNorm;
  readonly selfAttn: Attention;
  readonly crossAttendNorm: LayerNorm | null = null;
  readonly crossAttn: Attention | null = null;
  readonly ffNorm: LayerNorm;
  readonly ff: FeedForward;
  readonly toScaleShiftGate: Sequential | null = null;
  constructor(
    readonly dim: number,
    opts: { dimHeads: number; crossAttend?: boolean; dimContext?: number; globalCondDim?: number },
  ) {
    super();
    // Bias-free LayerNorm: learnable `gamma`, zero `beta` buffer (saved), eps 1e-5.
    const norm = () => new LayerNorm(dim, { bias: 'beta-buffer', weightName: 'gamma' });
    this.preNorm = this.module('pre_norm', norm());
    this.selfAttn = this.module('self_attn', new Attention(dim, opts.dimHeads));
    if (opts.crossAttend) {
      this.crossAttendNorm = this.module('cross_attend_norm', norm());
      this.crossAttn = this.module('cross_attn', new Attention(dim, opts.dimHeads, opts.dimContext ?? dim));
    }
    this.ffNorm = this.module('ff_norm', norm());
    this.ff = this.module('ff', new FeedForward(dim));
    if (opts.globalCondDim) {
      this.toScaleShiftGate = this.module(
        'to_scale_shift_gate',
        new Sequential(new Activation('silu'), new TransposedLinear(opts.globalCondDim, dim * 6, { bias: false })),
      );
    }
  }

  /** x [B, L, D] → [B, L, D]. */
  forward(x: tf.Tensor3D, inputs: BlockInputs = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const { context, rotary, globalCond } = inputs;
      const crossAttend = (h: tf.Tensor3D): tf.Tensor3D =>
        context && this.crossAttn
          ? h.add(this.crossAttn.forward(this.crossAttendNorm!.forward(h) as tf.Tensor3D, { context }))
          : h;
      if (this.toScaleShiftGate && globalCond) {
        // adaLN (docs/REFERENCE.md §2.8, unused by the released configs); note the reference's σ(1 − gate).
        const [scaleSelf, shiftSelf, gateSelf, scaleFf, shiftFf, gateFf] = tf.split(
          this.toScaleShiftGate.forward(globalCond).expandDims(1),
          6,
          -1,
        );
        const mod = (h: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) => h.mul(scale.add(1)).add(shift);
        const gate = (h: tf.Tensor, g: tf.Tensor) => h.mul(tf.sigmoid(tf.scalar(1).sub(g)));
        let h = x.add(gate(this.selfAttn.forward(mod(this.preNorm.forward(x), scaleSelf, shiftSelf) as tf.Tensor3D, { rotary }), gateSelf)) as tf.Tensor3D;
        h = crossAttend(h);
        return h.add(gate(this.ff.forward(mod(this.ffNorm.forward(h), scaleFf, shiftFf)), gateFf)) as tf.Tensor3D;
      }
      let h = x.add(this.selfAttn.forward(this.preNorm.forward(x) as tf.Tensor3D, { rotary })) as tf.Tensor3D;
      h = crossAttend(h);
      return h.add(this.ff.forward(this.ffNorm.forward(h))) as tf.Tensor3D;
    });
  }
}

export interface ContinuousTransformerOptions {
  dim: number;
  depth: number;
  dimIn?: number;
  dimOut?: number;
  dimHeads?: number;
  crossAttend?: boolean;
  /** Context width (the reference's `cond_token_dim`, i.e. the DiT's cond_embed_dim). */
  condTokenDim?: number;
  /** adaLN conditioning width (the DiT passes embed_dim only for global_cond_type "adaLN"). */
  globalCondDim?: number;
  rotaryPosEmb?: boolean;
}

export interface TransformerInputs {
  /** [B, P, dim] tokens placed before the sequence (they take rotary positions 0…P−1). */
  prepend?: tf.Tensor3D;
  /** [B, S, condTokenDim] cross-attention context. */
  context?: tf.Tensor3D;
  /** [B, globalCondDim] for adaLN blocks. */
  globalCond?: tf.Tensor;
}

/** Reference `ContinuousTransformer` (no causal / conformer / absolute or sinusoidal positions). */
export class ContinuousTransformer extends Module {
  readonly projectIn: TransposedLinear | null;
  readonly projectOut: TransposedLinear | null;
  readonly rotaryPosEmb: RotaryEmbedding | null;
  readonly layers: TransformerBlock[];
  readonly dimHeads: number;
  constructor(readonly opts: ContinuousTransformerOptions) {
    super();
    const { dim, depth } = opts;
    this.dimHeads = opts.dimHeads ?? 64;
    this.projectIn = opts.dimIn !== undefined ? this.module('project_in', new TransposedLinear(opts.dimIn, dim, { bias: false })) : null;
    this.projectOut = opts.dimOut !== undefined ? this.module('project_out', new TransposedLinear(dim, opts.dimOut, { bias: false })) : null;
    if (opts.rotaryPosEmb ?? true) {
      const rot = Math.max(Math.floor(this.dimHeads / 2), 32);
      if (rot > this.dimHeads) throw new Error(`ContinuousTransformer: head dim ${this.dimHeads} < rotary dim ${rot} (the reference fails too)`);
      // inv_freq is deterministic; a checkpoint without it recomputes it (quirk 18).
      this.rotaryPosEmb = this.module('rotary_pos_emb', new RotaryEmbedding(rot, 10000, { bufferOptional: true }));
    } else {
      this.rotaryPosEmb = null;
    }
    const blocks = Array.from(
      { length: depth },
      () =>
        new TransformerBlock(dim, {
          dimHeads: this.dimHeads,
          crossAttend: opts.crossAttend,
          dimContext: opts.condTokenDim,
          globalCondDim: opts.globalCondDim,
        }),
    );
    this.layers = this.module('layers', new ModuleList(blocks)).items;
  }

  /** x [B, T, dimIn] → [B, P + T, dimOut]. */
  forward(x: tf.Tensor3D, inputs: TransformerInputs = {}): tf.Tensor3D {
    return tf.tidy(() => {
      let h = (this.projectIn ? this.projectIn.forward(x) : x) as tf.Tensor3D;
      if (inputs.prepend) {
        if (inputs.prepend.shape[2] !== h.shape[2] || inputs.prepend.shape[0] !== h.shape[0]) {
          throw new Error(`ContinuousTransformer: prepend [${inputs.prepend.shape}] does not match the sequence [${h.shape}]`);
        }
        h = tf.concat([inputs.prepend, h], 1);
      }
      // The reference builds a (prepend ∪ all-ones) mask here but never passes it to the blocks.
      // Block-wide tables for positions 0…L−1 (§2.5): only the first `rot` channels of each head rotate.
      const rotary = this.rotaryPosEmb ? rotateHalfTables(this.rotaryPosEmb.freqs(h.shape[1]), this.dimHeads, { headsAfterLength: true }) : undefined;
      for (const layer of this.layers) h = layer.forward(h, { context: inputs.context, rotary, globalCond: inputs.globalCond });
      return (this.projectOut ? this.projectOut.forward(h) : h) as tf.Tensor3D;
    });
  }
}

/**
 * Linear → SiLU → Linear with the reference's `nn.Sequential` keys (`0.*`, `2.*`): the DiT / MMDiT
 * `to_timestep_embed` (with bias), `to_cond_embed` and `to_global_embed` (without).
 */
export function siluProjection(inDim: number, outDim: number, bias: boolean): Sequential {
  return new Sequential(new TransposedLinear(inDim, outDim, { bias }), new Activation('silu'), new TransposedLinear(outDim, outDim, { bias }));
}
