// Parameterised layers with torch-compatible state-dict names and weight layouts.
import * as tf from '@tensorflow/tfjs';
import { Module, type Parameter } from './module.ts';
import type { DerivedTensors, WeightDerivation } from './residency.ts';
import * as F from './functional.ts';

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : this.param('bias', [outFeatures]);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return F.linear(x, this.weight.value, this.bias?.value);
  }
}

/** torch.nn.LayerNorm; `bias: 'buffer'` is the reference's bias-less variant that saves a zero `beta` buffer. */
export class LayerNorm extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
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
  readonly eps: number;
  forward(x: tf.Tensor): tf.Tensor {
    return F.layerNorm(x, this.weight?.value ?? null, this.bias?.value ?? null, this.eps);
  }
}

export interface ConvOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
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
  readonly alpha: Parameter;
  readonly beta: Parameter;
  constructor(
    readonly channels: number,
    readonly logScale = true,
  ) {
    super();
    this.alpha = this.param('alpha', [channels]);
    this.beta = this.param('beta', [channels]);
  }
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
  readonly alpha: Parameter;
  constructor(
    readonly channels: number,
    readonly logScale = true,
  ) {
    super();
    this.alpha = this.param('alpha', [channels]);
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const a = this.logScale ? tf.exp(this.alpha.value) : this.alpha.value;
      return F.snakeBeta(x, a, a) as tf.Tensor3D;
    });
  }
}

/** A parameter-less activation usable inside Sequential at its torch index. */
export class Activation extends Module {
  constructor(readonly kind: 'gelu' | 'gelu-tanh' | 'quick-gelu' | 'silu' | 'relu' | 'elu' | 'sigmoid' | 'tanh' | 'identity') {
    super();
  }
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
  readonly invFreq: Parameter;
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
  readonly weight: Parameter;
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
