// Parameterised layers with torch-compatible state-dict names and weight layouts.
import * as tf from '@tensorflow/tfjs';
import { Module, type Parameter } from './module.ts';
import type { DerivedTensors, WeightDerivation } from './residency.ts';
import * as F from './functional.ts';

/** torch.nn.Linear: y = x · Wᵀ + b over the last axis (weight [out, in], bias [out]). */
export class Linear extends Module {
  /** `weight` [outFeatures, inFeatures]. */
  readonly weight: Parameter;
  /** `bias` [outFeatures]; null when built with `bias: false`. */
  readonly bias: Parameter | null;
  /**
   * @param inFeatures Size of the input's last axis.
   * @param outFeatures Size of the output's last axis.
   * @param opts `bias: false` for a layer without bias (no `bias` key in the state dict).
   */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : this.param('bias', [outFeatures]);
  }
  /** [..., inFeatures] → [..., outFeatures]. */
  forward(x: tf.Tensor): tf.Tensor {
    return F.linear(x, this.weight.value, this.bias?.value);
  }
}

/** torch.nn.LayerNorm; `bias: 'buffer'` is the reference's bias-less variant that saves a zero `beta` buffer. */
export class LayerNorm extends Module {
  /** The scale γ [dim] (`weight`, or `opts.weightName`); null without `affine`. */
  readonly weight: Parameter | null;
  /** The shift β [dim]: parameter `bias`, buffer `beta`, or null. */
  readonly bias: Parameter | null;
  /**
   * @param dim Size of the normalised last axis.
   * @param opts `eps` (default 1e-5); `affine: false` for no scale and shift; `bias: false` for no shift or
   *   `'beta-buffer'` for a zero shift saved as the buffer `beta`; `weightName` renames the scale's key.
   */
  constructor(
    readonly dim: number,
    opts: { eps?: number; affine?: boolean; bias?: boolean | 'beta-buffer'; weightName?: string } = {},
  ) {
    super();
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.param(opts.weightName ?? 'weight', [dim]) : null;
    if (!affine || opts.bias === false) this.bias = null;
    else if (opts.bias === 'beta-buffer') this.bias = this.buffer('beta', [dim]);
    else this.bias = this.param('bias', [dim]);
  }
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Normalises over the last axis: [..., dim] → [..., dim]. */
  forward(x: tf.Tensor): tf.Tensor {
    return F.layerNorm(x, this.weight?.value ?? null, this.bias?.value ?? null, this.eps);
  }
}

/** Options of {@link Conv1d}, as torch.nn.Conv1d's. */
export interface ConvOptions {
  /** Step between output positions (default 1). */
  stride?: number;
  /** Zeros added at both ends of the time axis (default 0). */
  padding?: number;
  /** Spacing of the kernel taps (default 1). */
  dilation?: number;
  /** false: no bias (default true). */
  bias?: boolean;
  /** Weight-normalised (weight_g / weight_v), folded once at load time. */
  weightNorm?: boolean;
}

/**
 * The weight (or weight_g / weight_v, folded at load time: weight norm over every axis but 0) and bias
 * of a 1-D convolution; subclasses derive their tf-layout filter from the effective torch weight once.
 */
abstract class ConvBase<Filter extends tf.Tensor> extends Module {
  readonly weight: Parameter | null;
  readonly weightG: Parameter | null;
  readonly weightV: Parameter | null;
  readonly bias: Parameter | null;
  private filter: Filter | null = null;
  constructor(shape: number[], outChannels: number, opts: { bias?: boolean; weightNorm?: boolean }) {
    super();
    if (opts.weightNorm) {
      this.weight = null;
      this.weightG = this.param('weight_g', [shape[0], 1, 1]);
      this.weightV = this.param('weight_v', shape);
    } else {
      this.weight = this.param('weight', shape);
      this.weightG = this.weightV = null;
    }
    this.bias = opts.bias === false ? null : this.param('bias', [outChannels]);
  }
  /** torch-layout weight → tf filter. */
  protected abstract toTfFilter(w: tf.Tensor): Filter;
  /** The tf filter is derived from the (folded) weight and kept next to it. */
  override derivation(): WeightDerivation | null {
    const weights = [this.weight, this.weightG, this.weightV].filter((p): p is Parameter => p !== null);
    return {
      mode: 'copy',
      sources: weights,
      derive: () => {
        this.filter?.dispose();
        this.filter = tf.keep(
          tf.tidy(() =>
            this.toTfFilter(this.weight ? this.weight.value : F.foldWeightNorm(this.weightG!.value, this.weightV!.value)),
          ),
        );
      },
      exportDerived: (): DerivedTensors => ({ tensors: { filter: this.tfFilter }, unused: weights }),
      importDerived: (t) => {
        this.filter?.dispose();
        this.filter = tf.keep(t.filter as Filter);
      },
    };
  }
  protected override onDispose(): void {
    this.filter?.dispose();
    this.filter = null;
  }
  /** The effective filter in tf layout. */
  get tfFilter(): Filter {
    if (!this.filter) throw new Error(`${this.path || this.constructor.name}: weights not loaded`);
    return this.filter;
  }
  /** [B, Cin, T] → [B, Cout, T'] */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.forwardNWC(x.transpose([0, 2, 1])).transpose([0, 2, 1]));
  }
  /** Channels-last variant: [B, T, Cin] → [B, T', Cout]. */
  abstract forwardNWC(x: tf.Tensor3D): tf.Tensor3D;
}

/** torch.nn.Conv1d on [B, Cin, T] (weight [Cout, Cin, k]; tf filter [k, Cin, Cout]). */
export class Conv1d extends ConvBase<tf.Tensor3D> {
  /**
   * @param inChannels Input channels Cin.
   * @param outChannels Output channels Cout.
   * @param kernelSize Kernel width k in time steps.
   * @param opts Stride, padding, dilation, bias and weight norm.
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly opts: ConvOptions = {},
  ) {
    super([outChannels, inChannels, kernelSize], outChannels, opts);
  }
  protected toTfFilter(w: tf.Tensor): tf.Tensor3D {
    return w.transpose([2, 1, 0]) as tf.Tensor3D;
  }
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    return F.conv1dNWC(x, this.tfFilter, this.bias?.value ?? null, this.opts);
  }
}

/** torch.nn.ConvTranspose1d on [B, Cin, T] (weight [Cin, Cout, k]; weight norm per input channel). */
export class ConvTranspose1d extends ConvBase<tf.Tensor4D> {
  /**
   * @param inChannels Input channels Cin.
   * @param outChannels Output channels Cout.
   * @param kernelSize Kernel width k in time steps.
   * @param opts As torch.nn.ConvTranspose1d's: stride, padding, outputPadding, bias, and weight norm.
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly opts: { stride?: number; padding?: number; outputPadding?: number; bias?: boolean; weightNorm?: boolean } = {},
  ) {
    super([inChannels, outChannels, kernelSize], outChannels, opts);
  }
  protected toTfFilter(w: tf.Tensor): tf.Tensor4D {
    return w.transpose([2, 1, 0]).expandDims(0) as tf.Tensor4D; // [1, k, Cout, Cin]
  }
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    return F.convTranspose1dNWC(x, this.tfFilter, this.bias?.value ?? null, this.opts);
  }
}

/** SnakeBeta activation on [B, C, T] with per-channel α, β (log-scale by default, as Oobleck uses). */
export class SnakeBeta extends Module {
  /** `alpha` [channels]: the frequency (its log with `logScale`). */
  readonly alpha: Parameter;
  /** `beta` [channels]: the magnitude (its log with `logScale`). */
  readonly beta: Parameter;
  /**
   * @param channels Channels C (axis 1 of the input).
   * @param logScale The parameters are stored as logarithms (default true).
   */
  constructor(
    readonly channels: number,
    readonly logScale = true,
  ) {
    super();
    this.alpha = this.param('alpha', [channels]);
    this.beta = this.param('beta', [channels]);
  }
  /** [B, C, T] → [B, C, T]. */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const a = this.logScale ? tf.exp(this.alpha.value) : this.alpha.value;
      const b = this.logScale ? tf.exp(this.beta.value) : this.beta.value;
      return F.snakeBeta(x, a, b) as tf.Tensor3D;
    });
  }
}

/** Snake (single parameter α): x + 1/(α + 1e-9) · sin(α·x)². */
export class Snake extends Module {
  /** `alpha` [channels] (its log with `logScale`). */
  readonly alpha: Parameter;
  /**
   * @param channels Channels C (axis 1 of the input).
   * @param logScale α is stored as its logarithm (default true).
   */
  constructor(
    readonly channels: number,
    readonly logScale = true,
  ) {
    super();
    this.alpha = this.param('alpha', [channels]);
  }
  /** [B, C, T] → [B, C, T]. */
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const a = this.logScale ? tf.exp(this.alpha.value) : this.alpha.value;
      return F.snakeBeta(x, a, a) as tf.Tensor3D;
    });
  }
}

/** A parameter-less activation usable inside Sequential at its torch index. */
export class Activation extends Module {
  /** @param kind Which activation (`gelu` is the exact erf form, `gelu-tanh` the tanh approximation). */
  constructor(readonly kind: 'gelu' | 'gelu-tanh' | 'quick-gelu' | 'silu' | 'relu' | 'elu' | 'sigmoid' | 'tanh' | 'identity') {
    super();
  }
  /** Elementwise; `identity` returns a copy the caller owns. */
  forward(x: tf.Tensor): tf.Tensor {
    switch (this.kind) {
      case 'gelu':
        return F.gelu(x);
      case 'gelu-tanh':
        return F.geluTanh(x);
      case 'quick-gelu':
        return F.quickGelu(x);
      case 'silu':
        return F.silu(x);
      case 'relu':
        return tf.relu(x);
      case 'elu':
        return tf.elu(x);
      case 'sigmoid':
        return tf.sigmoid(x);
      case 'tanh':
        return tf.tanh(x);
      case 'identity':
        return x.clone();
    }
  }
}

/** Rotary position embedding (rotate-half), `dim` rotated channels, base 10000, with its inv_freq buffer. */
export class RotaryEmbedding extends Module {
  /** The `inv_freq` buffer [dim / 2]; computed when absent from the weights and `bufferOptional`. */
  readonly invFreq: Parameter;
  /**
   * @param dim Rotated channels per head (even).
   * @param base Frequency base (default 10000).
   * @param opts `bufferOptional`: weights without `inv_freq` load, and the values are computed.
   */
  constructor(
    readonly dim: number,
    readonly base = 10000,
    opts: { bufferOptional?: boolean } = {},
  ) {
    super();
    // Persisted by the reference even where a checkpoint may lack it (quirk 18).
    this.invFreq = this.buffer('inv_freq', [dim / 2], 'float32', opts.bufferOptional ?? false, true);
  }
  /** The reference's inv_freq: base^(−2k/dim), computed in float64 then rounded to float32. */
  static invFreqValues(dim: number, base = 10000): Float32Array {
    return Float32Array.from({ length: dim / 2 }, (_, k) => 1 / base ** ((2 * k) / dim));
  }
  /** freqs [L, dim] = concat(θ, θ) with θ[p, k] = p · inv_freq[k]. */
  freqs(length: number): tf.Tensor2D {
    return tf.tidy(() => {
      const inv = this.invFreq.loaded ? this.invFreq.value : tf.tensor1d(RotaryEmbedding.invFreqValues(this.dim, this.base));
      const t = tf.range(0, length, 1, 'float32');
      const theta = tf.outerProduct(t, inv as tf.Tensor1D);
      return tf.concat([theta, theta], -1) as tf.Tensor2D;
    });
  }
}

/** torch.nn.Embedding (weight [num, dim]). */
export class Embedding extends Module {
  /** `weight` [num, dim]: one row per id. */
  readonly weight: Parameter;
  /**
   * @param num Number of ids (rows).
   * @param dim Size of each embedding.
   */
  constructor(
    readonly num: number,
    readonly dim: number,
  ) {
    super();
    this.weight = this.param('weight', [num, dim]);
  }
  /** ids [...] int32 → [..., dim] */
  forward(ids: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const flat = ids.reshape([-1]);
      return tf.gather(this.weight.value, flat).reshape([...ids.shape, this.dim]);
    });
  }
}
