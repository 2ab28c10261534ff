// SA_Transformer: the temporal transformer of the CLIP video conditioners (audiox/models/temptransformer.py,
// docs/REFERENCE.md §4.4). Pre-norm blocks `x + Attn(LN(x))`, `x + FF(LN(x))`, then a final LayerNorm; no mask.
// Children are named as the reference's state dict: `layers.{l}.0.{norm, fn.to_qkv, fn.to_out.0}`,
// `layers.{l}.1.{norm, fn.net.0, fn.net.3}`, `norm`.
import * as tf from '@tensorflow/tfjs';
import { Module, ModuleList, Sequential, type UnaryModule } from '../nn/module.ts';
import { Activation, LayerNorm, Linear } from '../nn/layers.ts';
import * as F from '../nn/functional.ts';

/** nn.Dropout at inference: the identity, kept only so the Sequential indices match torch's. */
class Dropout extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }
}

/** Multi-head self-attention with a bias-free fused `to_qkv` (inner width heads·dim_head ≠ dim in general). */
export class SA_Attention extends Module {
  readonly to_qkv: Linear;
  /** `Sequential(Linear(inner, dim), Dropout)`, or null (identity) when heads == 1 and dim_head == dim. */
  readonly to_out: Sequential | null;
  readonly scale: number;
  constructor(
    readonly dim: number,
    readonly heads: number,
    readonly dimHead: number,
  ) {
    super();
    const inner = heads * dimHead;
    this.scale = dimHead ** -0.5;
    this.to_qkv = this.module('to_qkv', new Linear(dim, inner * 3, { bias: false }));
    const projectOut = !(heads === 1 && dimHead === dim);
    this.to_out = projectOut ? this.module('to_out', new Sequential(new Linear(inner, dim), new Dropout())) : null;
  }

  /** [B, N, dim] → [B, N, dim] */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [q, k, v] = tf.split(this.to_qkv.forward(x), 3, -1).map((t) => F.splitHeads(t, this.heads));
      const out = F.mergeHeads(F.attention(q, k, v, { scale: this.scale })); // [B, N, heads·dim_head]
      return (this.to_out ? this.to_out.forward(out) : out) as tf.Tensor3D;
    });
  }
}

/** Linear → GELU (exact) → Dropout → Linear → Dropout (indices 0 and 3 hold weights). */
export class SA_FeedForward extends Module {
  readonly net: Sequential;
  constructor(dim: number, hiddenDim: number) {
    super();
    this.net = this.module(
      'net',
      new Sequential(new Linear(dim, hiddenDim), new Activation('gelu'), new Dropout(), new Linear(hiddenDim, dim), new Dropout()),
    );
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.net.forward(x);
  }
}

/** `fn(LayerNorm(x))` — the residual is added by the transformer loop. */
export class SA_PreNorm<M extends UnaryModule> extends Module {
  readonly norm: LayerNorm;
  readonly fn: M;
  constructor(dim: number, fn: M) {
    super();
    this.norm = this.module('norm', new LayerNorm(dim));
    this.fn = this.module('fn', fn);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fn.forward(this.norm.forward(x)));
  }
}

type SA_Layer = ModuleList<SA_PreNorm<SA_Attention> | SA_PreNorm<SA_FeedForward>>;

export interface SA_TransformerOptions {
  dim: number;
  depth: number;
  heads: number;
  dim_head: number;
  mlp_dim: number;
}

export class SA_Transformer extends Module {
  readonly layers: ModuleList<SA_Layer>;
  readonly norm: LayerNorm;
  constructor(readonly opts: SA_TransformerOptions) {
    super();
    const { dim, depth, heads, dim_head, mlp_dim } = opts;
    this.layers = this.module(
      'layers',
      new ModuleList(
        Array.from(
          { length: depth },
          (): SA_Layer =>
            new ModuleList<SA_PreNorm<SA_Attention> | SA_PreNorm<SA_FeedForward>>([
              new SA_PreNorm(dim, new SA_Attention(dim, heads, dim_head)),
              new SA_PreNorm(dim, new SA_FeedForward(dim, mlp_dim)),
            ]),
        ),
      ),
    );
    this.norm = this.module('norm', new LayerNorm(dim));
  }

  /** [B, N, dim] → [B, N, dim] */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    if (x.rank !== 3 || x.shape[2] !== this.opts.dim) {
      throw new Error(`SA_Transformer: expected input [B, N, ${this.opts.dim}], got [${x.shape}]`);
    }
    return tf.tidy(() => {
      let h: tf.Tensor = x;
      for (const layer of this.layers.items) {
        const [attn, ff] = layer.items;
        h = attn.forward(h).add(h);
        h = ff.forward(h).add(h);
      }
      return this.norm.forward(h) as tf.Tensor3D;
    });
  }
}
