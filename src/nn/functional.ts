// Stateless ops in PyTorch conventions (shapes [B, C, T] for 1-D signals, weights in torch layout).
import * as tf from '@tensorflow/tfjs';
import { ATTENTION, DIVIDED_ATTENTION, GELU, kernelRegistered, LAYER_NORM, SNAKE_BETA_NWC } from './kernels.ts';

/** y = x·Wᵀ + b with W [out, in] (torch.nn.Linear). Works on any leading shape. */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const inF = x.shape[x.rank - 1];
    const lead = x.shape.slice(0, -1);
    const x2 = x.reshape([-1, inF]);
    // A backend whose transposed-operand product is slow re-lays W in its own BatchMatMul kernel (src/backend/).
    // The bias goes into the product's epilogue (one pass fewer over the output).
    const y = bias ? tf.fused.matMul({ a: x2, b: weight, transposeB: true, bias }) : tf.matMul(x2, weight, false, true);
    return y.reshape([...lead, weight.shape[0]]);
  });
}

/** torch layer_norm over the last axis: (x − mean) / √(var + eps), then · weight + bias where given. */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor | null, bias: tf.Tensor | null, eps = 1e-5): tf.Tensor {
  const f32 = (t: tf.Tensor | null) => !t || t.dtype === 'float32';
  if (x.dtype === 'float32' && x.size > 0 && f32(weight) && f32(bias) && kernelRegistered(LAYER_NORM)) {
    const inputs: tf.NamedTensorMap = { x };
    if (weight) inputs.weight = weight;
    if (bias) inputs.bias = bias;
    return tf.engine().runKernel(LAYER_NORM, inputs, { eps }) as tf.Tensor;
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    let y = x.sub(mean).mul(tf.rsqrt(variance.add(eps)));
    if (weight) y = y.mul(weight);
    if (bias) y = y.add(bias);
    return y;
  });
}

/** Normalises by the root mean square over the last axis: x / sqrt(mean(x²) + eps) (· weight). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor | null, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const y = x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps)));
    return weight ? y.mul(weight) : y;
  });
}

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && kernelRegistered(GELU)) return tf.engine().runKernel(GELU, { x }) as tf.Tensor;
  return tf.tidy(() => x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)));
}

/** tanh-approximated GELU (approximate='tanh'; T5's gelu_new). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = x.add(x.pow(3).mul(0.044715)).mul(Math.sqrt(2 / Math.PI));
    return x.mul(0.5).mul(tf.tanh(inner).add(1));
  });
}

/** CLIP's quick GELU: x·σ(1.702x). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x.mul(1.702))));
}

/** SiLU (swish): x·σ(x). */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.mul(tf.sigmoid(x)));
}

/** torch.nn.functional.softplus with beta 1 and threshold 20. */
export function softplus(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.where(x.greater(20), x, tf.log1p(tf.exp(x))));
}

/** ELU with α = 1. */
export function elu(x: tf.Tensor): tf.Tensor {
  return tf.elu(x);
}

/**
 * SnakeBeta on [B, C, T]: x + 1/(β + 1e-9) · sin(α·x)², α and β per channel (already exp'ed if
 * the module uses log scale).
 */
export function snakeBeta(x: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const a = alpha.reshape([1, -1, 1]);
    const invB = tf.reciprocal(beta.add(1e-9)).reshape([1, -1, 1]);
    return x.add(tf.sin(x.mul(a)).square().mul(invB));
  });
}

/**
 * Channels-last SnakeBeta on [..., C] with a = exp α and invB = 1/(exp β + 1e-9) already folded ([C]):
 * x + invB · sin(a·x)². Runs the backend's fused kernel when one is registered (no full-size
 * temporaries); otherwise tf ops with at most two full-size temporaries alive at once.
 */
export function snakeBetaNWC(x: tf.Tensor, a: tf.Tensor, invB: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && kernelRegistered(SNAKE_BETA_NWC)) {
    return tf.engine().runKernel(SNAKE_BETA_NWC, { x, a, invB }) as tf.Tensor;
  }
  // Eager disposal instead of tf.tidy: at most two full-size temporaries live at once.
  const ax = x.mul(a);
  const s = tf.sin(ax);
  ax.dispose();
  const s2 = s.square();
  s.dispose();
  const t = s2.mul(invB);
  s2.dispose();
  const y = x.add(t);
  t.dispose();
  return y;
}

/** torch Conv1d's geometry. */
export interface Conv1dOptions {
  /** Step between output positions (default 1). */
  stride?: number;
  /** Zeros added at both ends of the time axis (default 0). */
  padding?: number;
  /** Spacing of the kernel taps (default 1). */
  dilation?: number;
}

/** torch Conv1d on [B, Cin, T] with weight [Cout, Cin, k] → [B, Cout, T']. */
export function conv1d(x: tf.Tensor3D, weight: tf.Tensor, bias: tf.Tensor | null, o: Conv1dOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const filter = weight.transpose([2, 1, 0]) as tf.Tensor3D;
    return conv1dNWC(x.transpose([0, 2, 1]), filter, bias, o).transpose([0, 2, 1]);
  });
}

/** Conv1d on channels-last [B, T, Cin] with a tf filter [k, Cin, Cout] → [B, T', Cout]. */
export function conv1dNWC(x: tf.Tensor3D, filter: tf.Tensor3D, bias: tf.Tensor | null, o: Conv1dOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    const { stride = 1, padding = 0, dilation = 1 } = o;
    const k = filter.shape[0];
    let y: tf.Tensor3D;
    if (k === 1 && stride === 1 && padding === 0) {
      const [b, t, c] = x.shape;
      y = tf.matMul(x.reshape([b * t, c]), filter.reshape([c, filter.shape[2]])).reshape([b, t, filter.shape[2]]);
    } else {
      const xp = padding ? tf.pad(x, [[0, 0], [padding, padding], [0, 0]]) : x;
      y = tf.conv1d(xp, filter, stride, 'valid', 'NWC', dilation);
    }
    return (bias ? y.add(bias) : y) as tf.Tensor3D;
  });
}

/** torch ConvTranspose1d's geometry. */
export interface ConvTranspose1dOptions {
  /** Upsampling factor (default 1). */
  stride?: number;
  /** Samples cropped from both ends of the full output (default 0). */
  padding?: number;
  /** Extra samples added at the end (default 0). */
  outputPadding?: number;
}

/** torch ConvTranspose1d on [B, Cin, T] with weight [Cin, Cout, k] → [B, Cout, T']. */
export function convTranspose1d(
  x: tf.Tensor3D,
  weight: tf.Tensor,
  bias: tf.Tensor | null,
  o: ConvTranspose1dOptions = {},
): tf.Tensor3D {
  return tf.tidy(() => {
    const filter = weight.transpose([2, 1, 0]).expandDims(0) as tf.Tensor4D; // [1, k, Cout, Cin]
    return convTranspose1dNWC(x.transpose([0, 2, 1]), filter, bias, o).transpose([0, 2, 1]);
  });
}

/** ConvTranspose1d on channels-last [B, T, Cin] with a tf filter [1, k, Cout, Cin]. */
export function convTranspose1dNWC(
  x: tf.Tensor3D,
  filter: tf.Tensor4D,
  bias: tf.Tensor | null,
  o: ConvTranspose1dOptions = {},
): tf.Tensor3D {
  return tf.tidy(() => {
    const { stride = 1, padding = 0, outputPadding = 0 } = o;
    const [b, t] = x.shape;
    const k = filter.shape[1];
    const cout = filter.shape[2];
    const full = (t - 1) * stride + k;
    const y = tf.conv2dTranspose(x.expandDims(1) as tf.Tensor4D, filter, [b, 1, full, cout], [1, stride], 'valid');
    const len = full - 2 * padding + outputPadding;
    let z = y.squeeze([1]) as tf.Tensor3D;
    if (padding + len > full) z = tf.pad(z, [[0, 0], [0, padding + len - full], [0, 0]]);
    z = z.slice([0, padding, 0], [b, len, cout]);
    return (bias ? z.add(bias) : z) as tf.Tensor3D;
  });
}

/** W = g · v / ‖v‖ with the norm over every axis but 0 (torch weight_norm, dim=0, no epsilon). */
export function foldWeightNorm(g: tf.Tensor, v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const axes = v.shape.map((_, i) => i).slice(1);
    const norm = v.square().sum(axes, true).sqrt();
    return v.mul(g.reshape(norm.shape)).div(norm);
  });
}

/**
 * Scaled dot-product attention on [B, H, Lq, D] × [B, Hkv, Lk, D]. Key/value heads are shared by
 * groups of consecutive query heads (repeat_interleave), as in grouped-query attention.
 * `mask` (broadcastable to [B, H, Lq, Lk]) is boolean (true = attend) or additive.
 */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  opts: { mask?: tf.Tensor | null; scale?: number } = {},
): tf.Tensor4D {
  const mask = opts.mask;
  if (q.dtype === 'float32' && (!mask || mask.dtype === 'float32') && kernelRegistered(ATTENTION)) {
    const scale = opts.scale ?? 1 / Math.sqrt(q.shape[3]);
    return tf.engine().runKernel(ATTENTION, mask ? { q, k, v, mask } : { q, k, v }, { scale }) as tf.Tensor4D;
  }
  return tf.tidy(() => {
    const [b, h, lq, d] = q.shape;
    const hkv = k.shape[1];
    if (h % hkv !== 0) throw new Error(`attention: ${h} query heads are not a multiple of ${hkv} key/value heads`);
    const r = h / hkv;
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    // Group query heads by their kv head so no repeat is materialised: [B, Hkv, r·Lq, D].
    const qg = r === 1 ? q : q.reshape([b, hkv, r * lq, d]);
    let scores = tf.matMul(qg.mul(scale), k, false, true); // [B, Hkv, r·Lq, Lk]
    if (opts.mask) {
      const lk = k.shape[2];
      const m = r === 1 ? opts.mask : tf.broadcastTo(opts.mask, [b, h, lq, lk]).reshape([b, hkv, r * lq, lk]);
      scores = m.dtype === 'bool' ? tf.where(m, scores, tf.fill(scores.shape, -Infinity)) : scores.add(m);
    }
    const out = tf.matMul(tf.softmax(scores, -1), v);
    return (r === 1 ? out : out.reshape([b, h, lq, d])) as tf.Tensor4D;
  });
}

/** How the patch tokens are grouped in divided space-time attention: over frames per position, or over positions per frame. */
export type DividedAxis = 'time' | 'space';

/** The geometry of one divided attention call (see DIVIDED_ATTENTION in kernels.ts). */
export interface DividedAttentionOptions {
  /** Attention heads H (the head width is the qkv width / (3·H)). */
  heads: number;
  /** Token frames F per segment. */
  frames: number;
  /** Patch positions P per frame. */
  positions: number;
  /** Which group a patch query attends to: its F frames at one position ('time') or its frame's P positions ('space'). */
  axis: DividedAxis;
  /** Score scale (default 1/√headDim). */
  scale?: number;
}

/**
 * Divided space-time attention on the packed qkv projection [N, 1 + F·P, 3·H·hd] → [N, 1 + F·P, H·hd] (heads
 * merged): the CLS query attends to all tokens, every patch query to the CLS token plus its group (time: its F
 * frames at the same position; space: the P positions of its frame). The backend's fused kernel where one is
 * registered, else tf ops.
 */
export function dividedAttention(qkv: tf.Tensor3D, o: DividedAttentionOptions): tf.Tensor3D {
  const [n, l, d3] = qkv.shape;
  const { heads: h, frames, positions, axis } = o;
  const hd = d3 / (3 * h);
  const fp = frames * positions;
  if (l !== 1 + fp || !Number.isInteger(hd)) throw new Error(`dividedAttention: qkv [${qkv.shape}] is not [N, 1 + ${frames}·${positions}, 3·${h}·headDim]`);
  const scale = o.scale ?? hd ** -0.5;
  if (qkv.dtype === 'float32' && kernelRegistered(DIVIDED_ATTENTION)) {
    return tf.engine().runKernel(DIVIDED_ATTENTION, { qkv }, { heads: h, frames, positions, axis, scale }) as tf.Tensor3D;
  }
  return tf.tidy(() => {
    const [q0, k, v] = tf.split(qkv, 3, -1).map((t) => splitHeads(t, h)); // [N, H, L, hd]
    const q = q0.mul(scale) as tf.Tensor4D;
    const clsOut = attention(q.slice([0, 0, 0, 0], [n, h, 1, hd]), k, v, { scale: 1 }); // [N, H, 1, hd]
    // Patch tokens regrouped into G groups of S: time '(b n) f d' (a position over its frames), space '(b f) n d'.
    const [g, s] = axis === 'time' ? [positions, frames] : [frames, positions];
    const group = (t: tf.Tensor) => {
      const p = t.slice([0, 0, 1, 0], [n, h, fp, hd]).reshape([n, h, frames, positions, hd]);
      return (axis === 'time' ? p.transpose([0, 1, 3, 2, 4]) : p).reshape([n * h, g, s, hd]) as tf.Tensor4D;
    };
    // Each group's keys / values get the CLS key / value prepended: [N·H, G, 1 + S, hd].
    const withCls = (t: tf.Tensor) => {
      const cls = tf.broadcastTo(t.slice([0, 0, 0, 0], [n, h, 1, hd]).reshape([n * h, 1, 1, hd]), [n * h, g, 1, hd]);
      return tf.concat([cls, group(t)], 2) as tf.Tensor4D;
    };
    // The groups as the heads axis of the shared core (q is already scaled).
    let out = attention(group(q), withCls(k), withCls(v), { scale: 1 }).reshape([n, h, g, s, hd]);
    if (axis === 'time') out = out.transpose([0, 1, 3, 2, 4]); // back to [N, H, F, P, hd]
    return mergeHeads(tf.concat([clsOut, out.reshape([n, h, fp, hd])], 2)); // [N, L, H·hd]
  });
}

/** [B, L, H·D] → [B, H, L, D] */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor4D {
  const [b, l, hd] = x.shape;
  return x.reshape([b, l, heads, hd / heads]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
}

/** [B, H, L, D] → [B, L, H·D] */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  const [b, h, l, d] = x.shape;
  return x.transpose([0, 2, 1, 3]).reshape([b, l, h * d]) as tf.Tensor3D;
}

