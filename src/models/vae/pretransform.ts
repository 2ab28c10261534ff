// AudioAutoencoder + AutoencoderPretransform (stable-audio-tools `autoencoders.py`,
// `pretransforms.py`; docs/REFERENCE.md §5.4), including the reference's chunked decoding.
import * as tf from '@tensorflow/tfjs';
import { Module } from '../../nn/index.ts';
import type { NoiseSource } from '../../nn/noise.ts';
import { budgetLeft, checkBudget, formatBytes, UNLIMITED_BUDGET, type MemoryBudget } from '../../nn/runtime.ts';
import { VAEBottleneck } from './bottleneck.ts';
import { OobleckDecoder, OobleckEncoder, type OobleckDecoderConfig, type OobleckEncoderConfig } from './oobleck.ts';

/** `pretransform.config` (the autoencoder's `model` section) with config.json key names. */
export interface AutoencoderModelConfig {
  encoder: { type: string; config?: OobleckEncoderConfig; requires_grad?: boolean };
  decoder: { type: string; config?: OobleckDecoderConfig; soft_clip?: boolean };
  bottleneck?: { type: string } | null;
  latent_dim: number;
  downsampling_ratio: number;
  io_channels: number;
  in_channels?: number;
  out_channels?: number;
  pretransform?: unknown;
}

/** The `pretransform` section of a model config (`model.pretransform`, or a conditioner's `pretransform_config`). */
export interface PretransformConfig {
  type: string;
  config: AutoencoderModelConfig;
  scale?: number;
  model_half?: boolean;
  iterate_batch?: boolean;
  chunked?: boolean;
}

export interface EncodeOptions {
  /** Reparameterisation noise (stream `vae`); required unless `meanOnly`. */
  noise?: NoiseSource;
  /** Use the posterior mean (deterministic) instead of sampling. Not what the reference does. */
  meanOnly?: boolean;
}

export interface DecodeOptions {
  /**
   * Decode in overlapping windows (§5.4). `'auto'` (the default when the config does not ask for
   * chunking) decodes in one pass when that fits the autoencoder's memory budget and chunked otherwise;
   * both agree to float rounding when overlap/2 covers the decoder's receptive radius
   * (`decoderReceptiveRadius`: ≈ 11 latents at full size vs overlap/2 = 16).
   */
  chunked?: boolean | 'auto';
  /** Window length in latents (default 128). */
  chunkSize?: number;
  /** Overlap between consecutive windows in latents (default 32). */
  overlap?: number;
}

/** One window of a chunked decode, in latent units: decode [start, start+size), keep [keepFrom, keepTo) of the output. */
export interface ChunkWindow {
  start: number;
  keepFrom: number;
  keepTo: number;
}

/**
 * The reference's window layout: windows at 0, hop, 2·hop, … (hop = chunkSize − overlap) that fit
 * entirely, plus a last one right-aligned to the end; (overlap/2) latents are trimmed from every inner
 * edge, and where the right-aligned window overlaps its predecessor it wins (it is pasted last).
 * `keepFrom/keepTo` are absolute latent positions; the kept ranges tile [0, total) exactly.
 */
export function chunkWindows(total: number, chunkSize = 128, overlap = 32): ChunkWindow[] {
  const hop = chunkSize - overlap;
  if (!(hop > 0) || overlap < 0) throw new Error(`chunked decode: need 0 ≤ overlap < chunkSize (got ${overlap}, ${chunkSize})`);
  if (total < chunkSize) throw new Error(`chunked decode: ${total} latents is shorter than one window of ${chunkSize}`);
  const starts: number[] = [];
  for (let s = 0; s + chunkSize <= total; s += hop) starts.push(s);
  if (starts[starts.length - 1] + chunkSize !== total) starts.push(total - chunkSize);
  const ol = Math.floor(overlap / 2);
  const windows = starts.map((start, i) => ({
    start,
    keepFrom: i > 0 ? start + ol : 0,
    keepTo: i < starts.length - 1 ? start + chunkSize - ol : total,
  }));
  for (let i = 0; i + 1 < windows.length; i++) windows[i].keepTo = Math.min(windows[i].keepTo, windows[i + 1].keepFrom);
  return windows;
}

/**
 * How far (in latents, one side) a decoder output sample can see: the first conv (k7), each
 * transposed conv (≤ 2 input samples), each residual stack (3·(1+3+9) samples) and the last conv.
 * Chunked decoding is exact up to rounding when overlap/2 ≥ this radius.
 */
export function decoderReceptiveRadius(decoder: OobleckDecoder): number {
  let rate = 1;
  let r = 3;
  for (const s of [...decoder.strides].reverse()) {
    r += 2 / rate;
    rate *= s;
    r += (3 * (1 + 3 + 9)) / rate;
  }
  return r + 3 / rate;
}

/**
 * Peak bytes of one decoder pass over `latentLength` latents (batch 1), as tfjs accounts them
 * (`tf.memory().numBytes`, which `checkBudget` compares against; wasm counts reshapes as new
 * bytes). While a residual unit runs, its input plus at most four activations of the block's output
 * size are alive, and the block's input as well; the estimate takes the worst block with a 10 %
 * margin (the test checks it against `tf.profile`'s peak). Full size, 237 latents: ≈ 1.4 GiB.
 */
export function decodeMemoryEstimate(decoder: OobleckDecoder, latentLength: number): number {
  const c = decoder.widths;
  const n = decoder.strides.length;
  let t = latentLength;
  let peak = 5 * t * c[n];
  for (let i = n; i > 0; i--) {
    const tIn = t;
    t *= decoder.strides[i - 1];
    peak = Math.max(peak, tIn * c[i] + 5 * t * c[i - 1]);
  }
  return Math.ceil(peak * 4 * 1.1);
}

/** Peak bytes of one encoder pass over `samples` samples (batch 1); see decodeMemoryEstimate. */
export function encodeMemoryEstimate(encoder: OobleckEncoder, samples: number): number {
  // The block input stays alive while its residual units run (each ≤ 5 activations of that size).
  // Full size, 10 s (441000 samples): ≈ 1.4 GiB.
  let t = samples;
  let peak = 0;
  encoder.strides.forEach((s, i) => {
    peak = Math.max(peak, 6 * t * encoder.widths[i]);
    t = Math.floor(t / s);
  });
  return Math.ceil(peak * 4 * 1.1);
}

/** Checks the keys the reference asserts on (`create_autoencoder_from_config`) and types the section. */
export function parseAutoencoderConfig(raw: unknown): AutoencoderModelConfig {
  const c = raw as Partial<AutoencoderModelConfig> | null;
  if (!c || typeof c !== 'object') throw new Error('autoencoder config: expected an object');
  for (const k of ['latent_dim', 'downsampling_ratio', 'io_channels'] as const) {
    if (typeof c[k] !== 'number') throw new Error(`autoencoder config: "${k}" must be specified (a number)`);
  }
  for (const k of ['encoder', 'decoder'] as const) {
    if (!c[k] || typeof c[k] !== 'object' || typeof c[k]!.type !== 'string') throw new Error(`autoencoder config: "${k}.type" must be specified`);
  }
  return c as AutoencoderModelConfig;
}

function checkAudio(x: tf.Tensor, channels: number, what: string): asserts x is tf.Tensor3D {
  if (x.rank !== 3 || x.shape[1] !== channels) {
    throw new Error(`${what} expects [B, ${channels}, N], got rank ${x.rank} [${x.shape}]`);
  }
}

/** Runs `f` on each batch item [1, …] (the reference's iterate_batch) and concatenates the results. */
function perItem(x: tf.Tensor3D, iterate: boolean, f: (item: tf.Tensor3D) => tf.Tensor3D): tf.Tensor3D {
  if (!iterate || x.shape[0] === 1) return f(x);
  const outs: tf.Tensor3D[] = [];
  try {
    for (let b = 0; b < x.shape[0]; b++) {
      const item = tf.slice(x, [b, 0, 0], [1, x.shape[1], x.shape[2]]);
      try {
        outs.push(f(item));
      } finally {
        item.dispose();
      }
    }
    return tf.concat(outs, 0);
  } finally {
    outs.forEach((t) => t.dispose());
  }
}

/** The Oobleck VAE: children `encoder`, `decoder` (state-dict keys `encoder.layers.*`, `decoder.layers.*`). */
export class AudioAutoencoder extends Module {
  readonly encoder: OobleckEncoder;
  readonly decoder: OobleckDecoder;
  readonly bottleneck: VAEBottleneck | null;
  readonly latentDim: number;
  readonly downsamplingRatio: number;
  readonly ioChannels: number;
  readonly softClip: boolean;
  /**
   * What encode/decode plans are checked against before anything is allocated: loadModel sets the runtime's
   * budget; a model built without one plans against nothing.
   */
  budget: MemoryBudget = UNLIMITED_BUDGET;

  constructor(cfg: AutoencoderModelConfig, readonly sampleRate = 44100) {
    super();
    for (const part of ['encoder', 'decoder'] as const) {
      if (cfg[part]?.type !== 'oobleck') throw new Error(`AudioAutoencoder: ${part} type "${cfg[part]?.type}" is not supported (only "oobleck")`);
    }
    if (cfg.bottleneck && cfg.bottleneck.type !== 'vae') throw new Error(`AudioAutoencoder: bottleneck "${cfg.bottleneck.type}" is not supported (only "vae")`);
    if (cfg.pretransform) throw new Error('AudioAutoencoder: a nested pretransform is not supported');
    this.encoder = this.module('encoder', new OobleckEncoder(cfg.encoder.config));
    this.decoder = this.module('decoder', new OobleckDecoder(cfg.decoder.config));
    this.bottleneck = cfg.bottleneck ? new VAEBottleneck() : null;
    this.latentDim = cfg.latent_dim;
    this.downsamplingRatio = cfg.downsampling_ratio;
    this.ioChannels = cfg.io_channels;
    this.softClip = cfg.decoder.soft_clip ?? false;
    if (this.encoder.inChannels !== (cfg.in_channels ?? cfg.io_channels)) {
      throw new Error(`AudioAutoencoder: encoder in_channels ${this.encoder.inChannels} ≠ io_channels ${cfg.io_channels}`);
    }
    const ratio = this.encoder.strides.reduce((a, b) => a * b, 1);
    if (ratio !== this.downsamplingRatio) {
      throw new Error(`AudioAutoencoder: strides multiply to ${ratio}, but downsampling_ratio is ${this.downsamplingRatio}`);
    }
  }

  /** audio [B, io, N] → latents [B, latent_dim, ⌊N/ratio⌋]: encoder (per item if iterate) → bottleneck (whole batch). */
  encode(audio: tf.Tensor3D, opts: EncodeOptions & { iterateBatch?: boolean } = {}): tf.Tensor3D {
    checkAudio(audio, this.encoder.inChannels, 'AudioAutoencoder.encode');
    if (audio.shape[2] < this.downsamplingRatio) {
      throw new Error(`AudioAutoencoder.encode: ${audio.shape[2]} samples is shorter than one latent (${this.downsamplingRatio})`);
    }
    const perBatch = opts.iterateBatch ? 1 : audio.shape[0];
    checkBudget(this.budget, perBatch * encodeMemoryEstimate(this.encoder, audio.shape[2]), `VAE encode of ${audio.shape[2]} samples`);
    const h = perItem(audio, opts.iterateBatch ?? false, (x) => this.encoder.forward(x));
    if (!this.bottleneck) return h;
    try {
      return this.bottleneck.encode(h, opts);
    } finally {
      h.dispose();
    }
  }

  /** latents [B, latent_dim, T] → audio [B, out, T·ratio] in one pass. */
  decode(latents: tf.Tensor3D, opts: { iterateBatch?: boolean } = {}): tf.Tensor3D {
    checkAudio(latents, this.latentDim, 'AudioAutoencoder.decode');
    const perBatch = opts.iterateBatch ? 1 : latents.shape[0];
    checkBudget(this.budget, perBatch * decodeMemoryEstimate(this.decoder, latents.shape[2]), `VAE decode of ${latents.shape[2]} latents`);
    const y = perItem(latents, opts.iterateBatch ?? false, (z) => this.decoder.forward(z));
    if (!this.softClip) return y;
    const c = tf.tanh(y);
    y.dispose();
    return c;
  }

  /** Chunked decoding as `decode_audio(chunked=True)`: windows decoded one by one, inner edges trimmed. */
  decodeChunked(latents: tf.Tensor3D, opts: { chunkSize?: number; overlap?: number; iterateBatch?: boolean } = {}): tf.Tensor3D {
    checkAudio(latents, this.latentDim, 'AudioAutoencoder.decodeChunked');
    const { chunkSize = 128, overlap = 32 } = opts;
    const [b, c, total] = latents.shape;
    const r = this.downsamplingRatio;
    const pieces: tf.Tensor3D[] = [];
    try {
      for (const w of chunkWindows(total, chunkSize, overlap)) {
        const y = tf.tidy(() => {
          const z = tf.slice(latents, [0, 0, w.start], [b, c, chunkSize]);
          return this.decode(z, opts);
        });
        pieces.push(tf.slice(y, [0, 0, (w.keepFrom - w.start) * r], [b, y.shape[1], (w.keepTo - w.keepFrom) * r]));
        y.dispose();
      }
      return tf.concat(pieces, 2);
    } finally {
      pieces.forEach((t) => t.dispose());
    }
  }
}

/** The model's pretransform: scales latents and delegates to its AudioAutoencoder child `model`. */
export class AutoencoderPretransform extends Module {
  readonly model: AudioAutoencoder;
  readonly scale: number;
  readonly iterateBatch: boolean;
  readonly chunked: boolean;

  constructor(model: AudioAutoencoder, opts: { scale?: number; iterate_batch?: boolean; chunked?: boolean } = {}) {
    super();
    this.model = this.module('model', model);
    this.scale = opts.scale ?? 1.0;
    this.iterateBatch = opts.iterate_batch ?? false;
    this.chunked = opts.chunked ?? false;
  }

  /**
   * From a `pretransform` config section ({type: 'autoencoder', config, scale, iterate_batch, chunked,
   * model_half}). `model_half` is ignored: everything runs in float32 (the reference's AudioX default).
   */
  static fromConfig(
    section: PretransformConfig | { type: string; config: Record<string, unknown>; scale?: number; iterate_batch?: boolean; chunked?: boolean },
    opts: { sampleRate?: number } = {},
  ): AutoencoderPretransform {
    if (section?.type !== 'autoencoder') throw new Error(`pretransform type "${section?.type}" is not supported (only "autoencoder")`);
    const model = new AudioAutoencoder(parseAutoencoderConfig(section.config), opts.sampleRate ?? 44100);
    return new AutoencoderPretransform(model, section);
  }

  get downsamplingRatio(): number {
    return this.model.downsamplingRatio;
  }
  get ioChannels(): number {
    return this.model.ioChannels;
  }
  /** Latent channels (`encoded_channels`). */
  get encodedChannels(): number {
    return this.model.latentDim;
  }

  /** audio [B, io, N] → latents [B, latent_dim, L] / scale. Stochastic unless `meanOnly` (quirk 11). */
  encode(audio: tf.Tensor3D, opts: EncodeOptions = {}): tf.Tensor3D {
    if (this.chunked) throw new Error('AutoencoderPretransform: chunked encoding is not implemented (AudioX configs do not use it)');
    const z = this.model.encode(audio, { ...opts, iterateBatch: this.iterateBatch });
    if (this.scale === 1) return z;
    const s = z.div(this.scale) as tf.Tensor3D;
    z.dispose();
    return s;
  }

  /** Peak bytes of decoding `latentLength` latents of one batch item in one pass. */
  decodeMemoryEstimate(latentLength: number): number {
    return decodeMemoryEstimate(this.model.decoder, latentLength);
  }

  /** latents [B, latent_dim, T] → audio [B, io, T·ratio] (decoded from latents·scale). */
  decode(latents: tf.Tensor3D, opts: DecodeOptions = {}): tf.Tensor3D {
    checkAudio(latents, this.model.latentDim, 'AutoencoderPretransform.decode');
    const { chunkSize = 128, overlap = 32 } = opts;
    const total = latents.shape[2];
    const perBatch = this.iterateBatch ? 1 : latents.shape[0];
    let chunked = opts.chunked ?? (this.chunked || 'auto');
    if (chunked === 'auto') chunked = total > chunkSize && perBatch * this.decodeMemoryEstimate(total) > budgetLeft(this.model.budget);
    if (chunked && total < chunkSize) chunked = false; // one window = the whole input (the reference would fail)
    const what = chunked ? `chunked VAE decode (${chunkSize}-latent windows)` : `VAE decode of ${total} latents`;
    const plan = perBatch * this.decodeMemoryEstimate(chunked ? chunkSize : total);
    checkBudget(this.model.budget, plan, `${what}, estimated ${formatBytes(plan)}`);
    const z = this.scale === 1 ? latents : (latents.mul(this.scale) as tf.Tensor3D);
    try {
      return chunked
        ? this.model.decodeChunked(z, { chunkSize, overlap, iterateBatch: this.iterateBatch })
        : this.model.decode(z, { iterateBatch: this.iterateBatch });
    } finally {
      if (z !== latents) z.dispose();
    }
  }

  /** How many latents, one side, a decoded sample depends on (see decoderReceptiveRadius). */
  get decodeRadius(): number {
    return decoderReceptiveRadius(this.model.decoder);
  }

  /**
   * The first `samples` samples of `decode(latents)`: only the latents those samples can see (the
   * receptive radius past the cut) are decoded, so the result is the full decode's up to float rounding
   * (≤ 1e-4 of the peak in the tests) at a fraction of the cost for short requests. → [B, io, samples].
   */
  decodeHead(latents: tf.Tensor3D, samples: number, opts: DecodeOptions = {}): tf.Tensor3D {
    const [b, c, total] = latents.shape;
    const ratio = this.downsamplingRatio;
    if (!(Number.isInteger(samples) && samples > 0 && samples <= total * ratio)) {
      throw new Error(`AutoencoderPretransform.decodeHead: ${samples} samples asked of ${total} latents (at most ${total * ratio})`);
    }
    const length = Math.min(total, Math.ceil(samples / ratio) + Math.ceil(this.decodeRadius) + 1);
    const z = length < total ? tf.slice(latents, [0, 0, 0], [b, c, length]) : latents;
    let y: tf.Tensor3D;
    try {
      y = this.decode(z, opts);
    } finally {
      if (z !== latents) z.dispose();
    }
    if (y.shape[2] === samples) return y;
    const head = tf.slice(y, [0, 0, 0], [b, y.shape[1], samples]);
    y.dispose();
    return head;
  }
}
