// Audio-prompt conditioners built on the Oobleck VAE encoder (docs/REFERENCE.md §4.6, §4.8; quirks 10, 11, 20):
// `audio_autoencoder` (AudioAutoencoderConditioner, AudioX) and `audio_autoencoder_v2`
// (AudioAutoencoderConditionerv2, AudioX-MAF-MMDiT). Each owns its own VAE copy under `pretransform.model.*`.
import * as tf from '@tensorflow/tfjs';
import { Linear, type Parameter } from '../../../nn/index.ts';
import type { NoiseSource } from '../../../nn/noise.ts';
import { AutoencoderPretransform, type PretransformConfig } from '../../vae/pretransform.ts';
import type { ConditionerOutput } from '../../conditioning.ts';
import type { ConditionContext } from '../conditioner.ts';
import { AudioPromptConditioner, type FixedPromptLength } from './prompt.ts';

/** `config` of an `audio_autoencoder` entry (config.json names). */
export interface AudioAutoencoderConditionerConfig {
  sample_rate: number;
  pretransform_config: PretransformConfig | { type: string; config: Record<string, unknown> };
  /**
   * Loaded at build time by the reference, then overwritten by model.ckpt where it has the keys. Here
   * loadModel takes the `conditioner.conditioners.<id>.pretransform.*` keys that model.safetensors lacks
   * from this file's conversion (models/conditioner-weights.ts).
   */
  pretransform_ckpt_path?: string;
}

/** `config` of an `audio_autoencoder_v2` entry. */
export interface AudioAutoencoderConditionerV2Config extends AudioAutoencoderConditionerConfig {
  latent_seq_len?: number;
  mask_ratio_start?: number;
  mask_ratio_end?: number;
}

/** A conditioner entry of `model.conditioning.configs`. */
export interface AudioConditionerEntry<C> {
  id?: string;
  type: string;
  config: C;
}

/** One audio prompt batch [B, C, N], or the MultiConditioner's list of per-item [1, C, N] tensors. */
export type AudioPrompt = tf.Tensor | readonly tf.Tensor[];

export interface AudioConditioning {
  /** [B, L, output_dim] */
  embedding: tf.Tensor3D;
  /** ones [B, output_dim] — quirk 20: the reference's mask uses the channel axis, not the token axis. */
  mask: tf.Tensor2D;
}

export interface AudioConditionerOptions {
  /** VAE reparameterisation noise (stream `vae`), drawn for the whole batch (quirk 11). */
  noise?: NoiseSource;
  /** Deterministic posterior mean instead of a VAE sample (not the reference's behaviour). */
  meanOnly?: boolean;
}

function checkItems(audios: AudioPrompt, what: string): tf.Tensor3D[] {
  const items = audios instanceof tf.Tensor ? [audios] : [...audios];
  if (items.length === 0) throw new Error(`${what}: no audio given`);
  items.forEach((a, i) => {
    if (a.rank !== 3 || a.shape[1]! < 1 || a.shape[2]! < 1) {
      throw new Error(`${what}: audio #${i} must be [B, channels, samples], got rank ${a.rank} [${a.shape}]`);
    }
    if (a.shape[1] !== items[0].shape[1]) throw new Error(`${what}: audio #${i} has ${a.shape[1]} channels, #0 has ${items[0].shape[1]}`);
  });
  return items as tf.Tensor3D[];
}

/** set_audio_channels(x, 2): mono is duplicated, extra channels are dropped. */
function toStereo(x: tf.Tensor3D, channels: number): tf.Tensor3D {
  if (channels !== 2) throw new Error(`audio conditioner: only 2-channel VAEs are supported (io_channels ${channels})`);
  const [b, c, n] = x.shape;
  if (c === 2) return x.clone();
  if (c === 1) return tf.concat([x, x], 1);
  return tf.slice(x, [0, 0, 0], [b, 2, n]);
}

/** The base Conditioner's `proj_out`: Linear(dim, output_dim) iff the widths differ, else identity. */
function projOut(dim: number, outputDim: number): Linear | null {
  return dim !== outputDim ? new Linear(dim, outputDim) : null;
}

function buildPretransform(cfg: AudioAutoencoderConditionerConfig, what: string): AutoencoderPretransform {
  if (typeof cfg?.sample_rate !== 'number') throw new Error(`${what}: config.sample_rate must be specified`);
  if (!cfg.pretransform_config) throw new Error(`${what}: config.pretransform_config must be specified`);
  return AutoencoderPretransform.fromConfig(cfg.pretransform_config, { sampleRate: cfg.sample_rate });
}

/**
 * `audio_autoencoder`: audio → VAE latents [B, 64, L] → tokens [B, L, 64] → proj_out → [B, L, D];
 * items whose raw audio is exactly zero get the learned `empty_audio_feat` (quirk 10). L must be
 * 215 (10 s at 44.1 kHz / 2048), which the reference hard-codes through `empty_audio_feat`.
 */
export class AudioAutoencoderConditioner extends AudioPromptConditioner {
  static readonly EMPTY_TOKENS = 215;
  readonly pretransform: AutoencoderPretransform;
  readonly proj_out: Linear | null;
  readonly emptyAudioFeat: Parameter;

  constructor(pretransform: AutoencoderPretransform, readonly outputDim: number) {
    super();
    this.pretransform = this.module('pretransform', pretransform);
    const p = projOut(pretransform.encodedChannels, outputDim);
    this.proj_out = p && this.module('proj_out', p);
    this.emptyAudioFeat = this.param('empty_audio_feat', [1, AudioAutoencoderConditioner.EMPTY_TOKENS, outputDim]);
  }

  /** From a `{id, type: 'audio_autoencoder', config}` entry and the conditioning's `cond_dim`. */
  static fromConfig(entry: AudioConditionerEntry<AudioAutoencoderConditionerConfig>, outputDim: number): AudioAutoencoderConditioner {
    if (entry.type !== 'audio_autoencoder') throw new Error(`AudioAutoencoderConditioner: wrong conditioner type "${entry.type}"`);
    return new AudioAutoencoderConditioner(buildPretransform(entry.config, 'AudioAutoencoderConditioner'), outputDim);
  }

  condition(input: tf.Tensor, ctx: ConditionContext): ConditionerOutput {
    if (!(input instanceof tf.Tensor)) throw new Error(`${this.constructor.name} expects audio [B, 2, N]`);
    return this.forward(input, { noise: ctx.noise });
  }

  forward(audios: AudioPrompt, opts: AudioConditionerOptions = {}): AudioConditioning {
    const items = checkItems(audios, 'AudioAutoencoderConditioner');
    if (new Set(items.map((a) => a.shape[2])).size > 1) {
      throw new Error(`AudioAutoencoderConditioner: items have different lengths (${items.map((a) => a.shape[2])}); the reference concatenates them unpadded`);
    }
    const raw = items.length === 1 ? items[0] : tf.concat(items, 0);
    let isZero: tf.Tensor | null = null;
    try {
      // Which items are silent, kept on the backend: a synchronous read-back is not possible on every
      // backend (WebGPU in Node has none), and the substitution below is a select, not a branch.
      isZero = tf.tidy(() => tf.equal(raw, 0).all([1, 2]).reshape([-1, 1, 1]));
      const audio = toStereo(raw, this.pretransform.ioChannels);
      let latents: tf.Tensor3D;
      try {
        latents = this.pretransform.encode(audio, opts);
      } finally {
        audio.dispose();
      }
      const [b, , l] = latents.shape;
      if (l !== AudioAutoencoderConditioner.EMPTY_TOKENS) {
        latents.dispose();
        throw new Error(
          `AudioAutoencoderConditioner: the audio gives ${l} latents, but the reference needs exactly ` +
            `${AudioAutoencoderConditioner.EMPTY_TOKENS} (its empty_audio_feat length; 10 s at 44.1 kHz)`,
        );
      }
      const embedding = tf.tidy(() => {
        const tokens = latents.transpose([0, 2, 1]); // [B, L, 64]
        const x = (this.proj_out ? this.proj_out.forward(tokens) : tokens.clone()) as tf.Tensor3D;
        return tf.where(isZero!.broadcastTo([b, l, this.outputDim]), this.emptyAudioFeat.value.broadcastTo([b, l, this.outputDim]), x) as tf.Tensor3D;
      });
      latents.dispose();
      return { embedding, mask: tf.ones([b, this.outputDim]) };
    } finally {
      isZero?.dispose();
      if (raw !== items[0]) raw.dispose();
    }
  }
}

/**
 * `audio_autoencoder_v2`: items right-padded to the longest → (optional random span masking) → VAE
 * latents [B, 64, L] → proj_features_128 along time (L = latent_seq_len → 128) → [B, 128, 64] →
 * proj_out → [B, 128, D]. No empty-feature substitution: silent audio is encoded like any other.
 */
export class AudioAutoencoderConditionerV2 extends AudioPromptConditioner implements FixedPromptLength {
  readonly pretransform: AutoencoderPretransform;
  readonly proj_out: Linear | null;
  readonly proj_features_128: Linear;
  readonly latentSeqLen: number;
  readonly maskRatioStart: number;
  readonly maskRatioEnd: number;

  constructor(
    pretransform: AutoencoderPretransform,
    readonly outputDim: number,
    opts: { latent_seq_len?: number; mask_ratio_start?: number; mask_ratio_end?: number } = {},
  ) {
    super();
    this.latentSeqLen = opts.latent_seq_len ?? 237;
    this.maskRatioStart = opts.mask_ratio_start ?? 0;
    this.maskRatioEnd = opts.mask_ratio_end ?? 0;
    this.pretransform = this.module('pretransform', pretransform);
    const p = projOut(pretransform.encodedChannels, outputDim);
    this.proj_out = p && this.module('proj_out', p);
    this.proj_features_128 = this.module('proj_features_128', new Linear(this.latentSeqLen, 128));
  }

  static fromConfig(entry: AudioConditionerEntry<AudioAutoencoderConditionerV2Config>, outputDim: number): AudioAutoencoderConditionerV2 {
    if (entry.type !== 'audio_autoencoder_v2') throw new Error(`AudioAutoencoderConditionerV2: wrong conditioner type "${entry.type}"`);
    return new AudioAutoencoderConditionerV2(buildPretransform(entry.config, 'AudioAutoencoderConditionerV2'), outputDim, entry.config);
  }

  /** Zeroes one random span per item: ratio = u·(end − start) + start, len = ⌊N·ratio⌋, start ~ U{0…N − len}. */
  private maskAudio(x: tf.Tensor3D, noise: NoiseSource): tf.Tensor3D {
    const [b, c, n] = x.shape;
    const u = noise.rand('mask', [b]);
    const us = u.dataSync();
    u.dispose();
    return tf.tidy(() => {
      const rows: tf.Tensor[] = [];
      for (let i = 0; i < b; i++) {
        const f = Math.fround;
        const ratio = f(f(us[i] * f(this.maskRatioEnd - this.maskRatioStart)) + f(this.maskRatioStart));
        const len = Math.trunc(f(n * ratio));
        const r = noise.randint('mask', 0, n - len + 1, [1]);
        const start = r.dataSync()[0];
        r.dispose();
        const item = tf.slice(x, [i, 0, 0], [1, c, n]);
        rows.push(
          tf.concat([tf.slice(item, [0, 0, 0], [1, c, start]), tf.zeros([1, c, len]), tf.slice(item, [0, 0, start + len], [1, c, n - start - len])], 2),
        );
      }
      return tf.concat(rows, 0) as tf.Tensor3D;
    });
  }

  condition(input: tf.Tensor, ctx: ConditionContext): ConditionerOutput {
    if (!(input instanceof tf.Tensor)) throw new Error(`${this.constructor.name} expects audio [B, 2, N]`);
    return this.forward(input, { noise: ctx.noise });
  }

  /**
   * proj_features_128 is built for exactly `latent_seq_len` latents (237 → 485376 samples, 11.006 s; a
   * 10 s prompt gives 215 and cannot be projected).
   */
  promptSamples(): number {
    return this.latentSeqLen * this.pretransform.downsamplingRatio;
  }

  forward(audios: AudioPrompt, opts: AudioConditionerOptions = {}): AudioConditioning {
    const items = checkItems(audios, 'AudioAutoencoderConditionerV2');
    const maxLen = Math.max(...items.map((a) => a.shape[2]));
    const audio = tf.tidy(() => {
      const padded = items.map((a) => (a.shape[2] < maxLen ? tf.pad(a, [[0, 0], [0, 0], [0, maxLen - a.shape[2]]]) : a));
      return toStereo((padded.length === 1 ? padded[0] : tf.concat(padded, 0)) as tf.Tensor3D, this.pretransform.ioChannels);
    });
    let latents: tf.Tensor3D;
    try {
      if (this.maskRatioStart < this.maskRatioEnd) {
        if (!opts.noise) throw new Error('AudioAutoencoderConditionerV2: random masking is enabled; a NoiseSource is required');
        const masked = this.maskAudio(audio, opts.noise);
        try {
          latents = this.pretransform.encode(masked, opts);
        } finally {
          masked.dispose();
        }
      } else {
        latents = this.pretransform.encode(audio, opts);
      }
    } finally {
      audio.dispose();
    }
    const [b, , l] = latents.shape;
    if (l !== this.latentSeqLen) {
      latents.dispose();
      throw new Error(
        `AudioAutoencoderConditionerV2: the audio gives ${l} latents, but proj_features_128 expects latent_seq_len = ${this.latentSeqLen} ` +
          `(${this.latentSeqLen * this.pretransform.downsamplingRatio} samples)`,
      );
    }
    const embedding = tf.tidy(() => {
      const t = this.proj_features_128.forward(latents).transpose([0, 2, 1]); // [B, 64, 128] → [B, 128, 64]
      return (this.proj_out ? this.proj_out.forward(t) : t.clone()) as tf.Tensor3D;
    });
    latents.dispose();
    return { embedding, mask: tf.ones([b, this.outputDim]) };
  }
}
