// Oobleck encoder / decoder (stable-audio-tools `autoencoders.py`, docs/REFERENCE.md §5.1–5.3).
//
// Children and indices are exactly the reference's `layers.N…` state-dict paths. Every layer has a
// torch-layout `forward` on [B, C, T] (handy for debugging against recorded intermediates) and a
// channels-last `forwardNWC` on [B, T, C]; the encoder/decoder `forward` transposes once at each end
// and runs the whole stack channels-last, so no per-layer transposes are paid. Each layer is its own
// tf.tidy scope and the residual units dispose eagerly: at full size one activation is up to
// [1, 485k, 128] f32 ≈ 250 MB, so keeping a layer's temporaries alive would not fit the wasm heap.
import * as tf from '@tensorflow/tfjs';
import { Conv1d, ConvTranspose1d, Module, ModuleList, SnakeBeta, type DerivedTensors, type WeightDerivation } from '../../nn/index.ts';
import * as F from '../../nn/functional.ts';

/** A layer usable in both layouts. */
export interface OobleckLayer extends Module {
  /** [B, C, T] → [B, C', T'] */
  forward(x: tf.Tensor3D): tf.Tensor3D;
  /** [B, T, C] → [B, T', C'] */
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D;
}

/** `encoder.config` of an `oobleck` encoder (config.json key names; defaults = the reference's). */
export interface OobleckEncoderConfig {
  in_channels?: number;
  channels?: number;
  latent_dim?: number;
  c_mults?: number[];
  strides?: number[];
  use_snake?: boolean;
  antialias_activation?: boolean;
}

/** `decoder.config` of an `oobleck` decoder. */
export interface OobleckDecoderConfig {
  out_channels?: number;
  channels?: number;
  latent_dim?: number;
  c_mults?: number[];
  strides?: number[];
  use_snake?: boolean;
  antialias_activation?: boolean;
  use_nearest_upsample?: boolean;
  final_tanh?: boolean;
}

/** Applies a layer that works in [B, C, T] by running its channels-last form between two transposes. */
function viaNWC(x: tf.Tensor3D, f: (h: tf.Tensor3D) => tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => f(x.transpose([0, 2, 1])).transpose([0, 2, 1]));
}

/** SnakeBeta (log-scale α, β; docs/REFERENCE.md §5.2) with exp(α) and 1/(exp(β) + 1e-9) folded once at load. */
export class OobleckSnakeBeta extends SnakeBeta implements OobleckLayer {
  private folded: { a: tf.Tensor1D; invB: tf.Tensor1D } | null = null;
  override derivation(): WeightDerivation {
    return {
      mode: 'copy',
      sources: [this.alpha, this.beta],
      derive: () => {
        this.onDispose();
        this.folded = tf.tidy(() => {
          const a = tf.keep(tf.exp(this.alpha.value) as tf.Tensor1D);
          const invB = tf.keep(tf.reciprocal(tf.exp(this.beta.value).add(1e-9)) as tf.Tensor1D);
          return { a, invB };
        });
      },
      exportDerived: (): DerivedTensors => {
        if (!this.folded) throw new Error(`${this.path || 'OobleckSnakeBeta'}: weights not loaded`);
        return { tensors: { a: this.folded.a, invB: this.folded.invB } };
      },
      importDerived: (t) => {
        this.onDispose();
        this.folded = { a: tf.keep(t.a as tf.Tensor1D), invB: tf.keep(t.invB as tf.Tensor1D) };
      },
    };
  }
  protected override onDispose(): void {
    this.folded?.a.dispose();
    this.folded?.invB.dispose();
    this.folded = null;
  }
  override forward(x: tf.Tensor3D): tf.Tensor3D {
    return viaNWC(x, (h) => this.forwardNWC(h));
  }
  /** y = x + 1/(β + 1e-9) · sin(α·x)², α and β broadcast over the last (channel) axis. */
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    const f = this.folded;
    if (!f) throw new Error(`${this.path || 'SnakeBeta'}: weights not loaded`);
    return F.snakeBetaNWC(x, f.a, f.invB) as tf.Tensor3D;
  }
}

/** Parameter-less pointwise layers: ELU (α = 1, the `use_snake: false` variant), Tanh, Identity. */
export class Pointwise extends Module implements OobleckLayer {
  constructor(readonly kind: 'elu' | 'tanh' | 'identity') {
    super();
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return this.forwardNWC(x);
  }
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    if (this.kind === 'elu') return F.elu(x) as tf.Tensor3D;
    if (this.kind === 'tanh') return tf.tanh(x);
    return x.clone();
  }
}

function activation(useSnake: boolean, channels: number): OobleckLayer {
  return useSnake ? new OobleckSnakeBeta(channels) : new Pointwise('elu');
}

/**
 * WNConv1d (weight_g / weight_v folded at load by nn.Conv1d). Channels-last through one fused
 * conv2d with explicit time padding and bias: no padded copy and no separate bias pass, which saves
 * two full-size activations per conv and is faster on wasm.
 */
class WNConv1d extends Conv1d implements OobleckLayer {
  override forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    const { stride = 1, padding = 0, dilation = 1 } = this.opts;
    return tf.tidy(() => {
      const y = tf.fused.conv2d({
        x: x.expandDims(1) as tf.Tensor4D, // [B, 1, T, Cin]
        filter: this.tfFilter.expandDims(0) as tf.Tensor4D, // [1, k, Cin, Cout]
        strides: [1, stride],
        pad: [[0, 0], [0, 0], [padding, padding], [0, 0]],
        dilations: [1, dilation],
        dataFormat: 'NHWC',
        bias: this.bias?.value,
      });
      return y.squeeze([1]) as tf.Tensor3D;
    });
  }
}

/**
 * WNConvTranspose1d (weight_g / weight_v, g per input channel). With kernel k = n·s (Oobleck: n = 2)
 * a transposed conv is a plain n-tap conv whose s·Cout outputs per input step are the s output
 * phases: full[b·s + t] = Σ_u x[b − u] · W[:, :, u·s + t]. That runs on the fast conv path (tfjs-wasm's
 * Conv2DBackpropInput is a naive loop, ~10× slower) and needs one crop of ⌈s/2⌉ at each end.
 */
class WNConvTranspose1d extends ConvTranspose1d implements OobleckLayer {
  private polyphase: { filter: tf.Tensor4D; bias: tf.Tensor1D | null } | null = null;
  private get taps(): number {
    return this.kernelSize / (this.opts.stride ?? 1);
  }
  /** The polyphase filter (and tiled bias) sit next to the torch-layout weights, which forward then ignores. */
  override derivation(): WeightDerivation | null {
    if (!Number.isInteger(this.taps) || this.opts.outputPadding) return super.derivation();
    const weights = [this.weight, this.weightG, this.weightV].filter((p) => p !== null);
    return {
      mode: 'copy',
      sources: [...weights, ...(this.bias ? [this.bias] : [])],
      derive: () => this.derivePolyphase(),
      exportDerived: (): DerivedTensors => {
        const pp = this.polyphase;
        if (!pp) throw new Error(`${this.path || 'WNConvTranspose1d'}: weights not loaded`);
        const unused = [...weights, this.bias].filter((p) => p !== null);
        return { tensors: pp.bias ? { polyphase: pp.filter, polyphaseBias: pp.bias } : { polyphase: pp.filter }, unused };
      },
      importDerived: (t) => {
        this.onDispose();
        this.polyphase = { filter: tf.keep(t.polyphase as tf.Tensor4D), bias: t.polyphaseBias ? tf.keep(t.polyphaseBias as tf.Tensor1D) : null };
      },
    };
  }
  private derivePolyphase(): void {
    this.onDispose();
    const s = this.opts.stride ?? 1;
    const [n, cin, cout] = [this.taps, this.inChannels, this.outChannels];
    const filter = tf.tidy(() => {
      const w = this.weight ? this.weight.value : F.foldWeightNorm(this.weightG!.value, this.weightV!.value); // [Cin, Cout, n·s]
      // K[τ, ci, t·Cout + co] = W[ci, co, (n − 1 − τ)·s + t]
      return w.reshape([cin, cout, n, s]).reverse(2).transpose([2, 0, 3, 1]).reshape([1, n, cin, s * cout]) as tf.Tensor4D;
    });
    const bias = this.bias ? (tf.tile(this.bias.value, [s]) as tf.Tensor1D) : null;
    this.polyphase = { filter, bias };
  }
  protected override onDispose(): void {
    super.onDispose();
    this.polyphase?.filter.dispose();
    this.polyphase?.bias?.dispose();
    this.polyphase = null;
  }
  override forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    const pp = this.polyphase;
    if (!pp) return super.forwardNWC(x);
    const { stride: s = 1, padding = 0 } = this.opts;
    const [b, t] = x.shape;
    const n = this.taps;
    const cout = this.outChannels;
    const full = (t + n - 1) * s;
    return tf.tidy(() => {
      const y = tf.fused.conv2d({
        x: x.expandDims(1) as tf.Tensor4D,
        filter: pp.filter,
        strides: 1,
        pad: [[0, 0], [0, 0], [n - 1, n - 1], [0, 0]],
        dataFormat: 'NHWC',
        bias: pp.bias ?? undefined,
      }); // [B, 1, t + n − 1, s·Cout]
      return y.reshape([b, full, cout]).slice([0, padding, 0], [b, full - 2 * padding, cout]) as tf.Tensor3D;
    });
  }
}

/** Runs a list of layers channels-last, freeing each intermediate as soon as it is consumed. */
function runNWC(layers: readonly OobleckLayer[], x: tf.Tensor3D): tf.Tensor3D {
  let h = x;
  for (const layer of layers) {
    const next = layer.forwardNWC(h);
    if (h !== x) h.dispose();
    h = next;
  }
  return h === x ? x.clone() : h;
}

/** A `layers` ModuleList applied in order (channels-last inside): the shape of every Oobleck stack. */
abstract class LayerStack extends Module implements OobleckLayer {
  readonly layers: ModuleList<OobleckLayer>;
  constructor(layers: OobleckLayer[]) {
    super();
    this.layers = this.module('layers', new ModuleList(layers));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return viaNWC(x, (h) => this.forwardNWC(h));
  }
  forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    return runNWC(this.layers.items, x);
  }
}

/** x + layers(x): SnakeBeta → WNConv1d(k7, dilation d, pad 3d) → SnakeBeta → WNConv1d(k1). */
export class ResidualUnit extends LayerStack {
  constructor(channels: number, dilation: number, useSnake: boolean) {
    super([
      activation(useSnake, channels),
      new WNConv1d(channels, channels, 7, { dilation, padding: 3 * dilation, weightNorm: true }),
      activation(useSnake, channels),
      new WNConv1d(channels, channels, 1, { weightNorm: true }),
    ]);
  }
  override forwardNWC(x: tf.Tensor3D): tf.Tensor3D {
    const f = super.forwardNWC(x);
    const y = tf.add(x, f) as tf.Tensor3D;
    f.dispose();
    return y;
  }
}

/** Three residual units (d = 1, 3, 9) → activation → strided WNConv1d(k = 2s, pad ⌈s/2⌉). */
export class EncoderBlock extends LayerStack {
  constructor(inChannels: number, outChannels: number, stride: number, useSnake: boolean) {
    super([
      new ResidualUnit(inChannels, 1, useSnake),
      new ResidualUnit(inChannels, 3, useSnake),
      new ResidualUnit(inChannels, 9, useSnake),
      activation(useSnake, inChannels),
      new WNConv1d(inChannels, outChannels, 2 * stride, { stride, padding: Math.ceil(stride / 2), weightNorm: true }),
    ]);
  }
}

/** Activation → WNConvTranspose1d(k = 2s, stride s, pad ⌈s/2⌉) → three residual units (d = 1, 3, 9). */
export class DecoderBlock extends LayerStack {
  constructor(inChannels: number, outChannels: number, stride: number, useSnake: boolean) {
    super([
      activation(useSnake, inChannels),
      new WNConvTranspose1d(inChannels, outChannels, 2 * stride, { stride, padding: Math.ceil(stride / 2), weightNorm: true }),
      new ResidualUnit(outChannels, 1, useSnake),
      new ResidualUnit(outChannels, 3, useSnake),
      new ResidualUnit(outChannels, 9, useSnake),
    ]);
  }
}

/** The config keys the encoder and decoder share; widths c = channels·[1, …c_mults], one stride per c_mult. */
function stackShape(cfg: OobleckEncoderConfig & OobleckDecoderConfig, what: string) {
  if (cfg.antialias_activation) throw new Error(`${what}: antialias_activation is not supported (not used by AudioX)`);
  if (cfg.use_nearest_upsample) throw new Error(`${what}: use_nearest_upsample is not supported (not used by AudioX)`);
  const { channels = 128, latent_dim = 32, c_mults = [1, 2, 4, 8], strides = [2, 4, 8, 8] } = cfg;
  if (strides.length < c_mults.length) throw new Error(`${what}: need one stride per c_mult`);
  const widths = [1, ...c_mults].map((m) => m * channels);
  return { latentDim: latent_dim, widths, strides: strides.slice(0, c_mults.length), useSnake: cfg.use_snake ?? false };
}

function checkInput(x: tf.Tensor, channels: number, what: string): void {
  if (x.rank !== 3) throw new Error(`${what} expects [B, ${channels}, T], got rank ${x.rank} [${x.shape}]`);
  if (x.shape[1] !== channels) throw new Error(`${what} expects ${channels} channels ([B, ${channels}, T]), got [${x.shape}]`);
}

/**
 * layers.0 = WNConv1d(in → c₀, k7, p3); layers.1..n = EncoderBlock(cᵢ → cᵢ₊₁, sᵢ);
 * layers.n+1 = activation(c_n); layers.n+2 = WNConv1d(c_n → latent_dim, k3, p1). c = channels·[1, …c_mults].
 */
export class OobleckEncoder extends LayerStack {
  readonly inChannels: number;
  readonly latentDim: number;
  /** Channel widths c₀…c_n and strides s₁…s_n (used by the memory estimate). */
  readonly widths: number[];
  readonly strides: number[];
  constructor(cfg: OobleckEncoderConfig = {}) {
    const { latentDim, widths: c, strides, useSnake } = stackShape(cfg, 'OobleckEncoder');
    const inChannels = cfg.in_channels ?? 2;
    const n = strides.length;
    super([
      new WNConv1d(inChannels, c[0], 7, { padding: 3, weightNorm: true }),
      ...strides.map((s, i) => new EncoderBlock(c[i], c[i + 1], s, useSnake)),
      activation(useSnake, c[n]),
      new WNConv1d(c[n], latentDim, 3, { padding: 1, weightNorm: true }),
    ]);
    this.inChannels = inChannels;
    this.latentDim = latentDim;
    this.widths = c;
    this.strides = strides;
  }
  /** [B, in_channels, N] → [B, latent_dim, L] with L = ⌊…⌊N/s₁⌋…/s_n⌋. */
  override forward(x: tf.Tensor3D): tf.Tensor3D {
    checkInput(x, this.inChannels, 'OobleckEncoder');
    return super.forward(x);
  }
}

/**
 * layers.0 = WNConv1d(latent_dim → c_n, k7, p3); layers.1..n = DecoderBlock(cᵢ → cᵢ₋₁, sᵢ) for
 * i = n…1; layers.n+1 = activation(c₀); layers.n+2 = WNConv1d(c₀ → out, k7, p3, no bias);
 * layers.n+3 = Tanh (final_tanh) or Identity.
 */
export class OobleckDecoder extends LayerStack {
  readonly outChannels: number;
  readonly latentDim: number;
  /** Channel widths c₀…c_n and strides s₁…s_n (used by the memory estimate). */
  readonly widths: number[];
  readonly strides: number[];
  constructor(cfg: OobleckDecoderConfig = {}) {
    const { latentDim, widths: c, strides, useSnake } = stackShape(cfg, 'OobleckDecoder');
    const outChannels = cfg.out_channels ?? 2;
    const n = strides.length;
    super([
      new WNConv1d(latentDim, c[n], 7, { padding: 3, weightNorm: true }),
      ...[...strides.keys()].reverse().map((i) => new DecoderBlock(c[i + 1], c[i], strides[i], useSnake)),
      activation(useSnake, c[0]),
      new WNConv1d(c[0], outChannels, 7, { padding: 3, bias: false, weightNorm: true }),
      new Pointwise((cfg.final_tanh ?? true) ? 'tanh' : 'identity'),
    ]);
    this.outChannels = outChannels;
    this.latentDim = latentDim;
    this.widths = c;
    this.strides = strides;
  }
  /** [B, latent_dim, T] → [B, out_channels, T·∏s]. */
  override forward(z: tf.Tensor3D): tf.Tensor3D {
    checkInput(z, this.latentDim, 'OobleckDecoder');
    return super.forward(z);
  }
}
