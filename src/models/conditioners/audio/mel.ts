// AudioMelConditioner (docs/REFERENCE.md §4.6, type `mel_spec`): waveform → torchaudio-style log-mel spectrogram →
// optional random span masking → Linear(n_mels, D) with D = output_dim (= cond_dim, 768 in the released models).
//
// Quirk 12: the filterbank is built for `target_sample_rate` (24 kHz) but the forward never resamples,
// so it is applied to whatever samples arrive (44.1 kHz audio in AudioX-MAF). Masking is ON at inference
// with the default ratios (0.7–1.0 of the frames zeroed), driven by the `mask` noise stream.
import * as tf from '@tensorflow/tfjs';
import { Linear } from '../../../nn/layers.ts';
import type { NoiseSource } from '../../../nn/noise.ts';
import type { ConditionerOutput } from '../../conditioning.ts';
import type { ConditionContext } from '../conditioner.ts';
import { AudioPromptConditioner } from './prompt.ts';

/** The conditioner's config keys as the AudioX factory passes them (`output_dim` = `cond_dim`). */
export interface AudioMelConditionerConfig {
  output_dim: number;
  mel_spec_type?: string;
  n_fft?: number;
  hop_length?: number;
  win_length?: number;
  n_mel_channels?: number;
  target_sample_rate?: number;
  mask_ratio_start?: number;
  mask_ratio_end?: number;
  project_out?: boolean;
  /**
   * Project extension for tiny models (e.g. the demo): the conditioner's nominal width, replacing both the
   * reference's 768 (proj_out's input) and proj_features' output width.
   */
  _dim?: number;
}

export interface MelForwardOptions {
  /** Source of the masking draws (`rand('mask', [B])`, then one `randint('mask', …, [1])` per item). */
  noise?: NoiseSource;
  /** Set false to skip the random masking even when the config enables it (default: as configured). */
  randomMasking?: boolean;
}

export type MelConditioning = {
  /** [B, frames, D] */
  embedding: tf.Tensor3D;
  /** ones [B, 1] (float) */
  mask: tf.Tensor2D;
};

/** torch.hann_window(win, periodic=True), zero-padded (centred) to nFft as torch.stft does. */
export function hannWindow(winLength: number, nFft = winLength): Float32Array {
  if (winLength > nFft) throw new Error(`win_length ${winLength} exceeds n_fft ${nFft}`);
  const w = new Float32Array(nFft);
  const left = Math.floor((nFft - winLength) / 2);
  // torch: cos(n · (2π / N)) in float32, then 0.5 − 0.5·cos.
  const f = Math.fround;
  const step = f((2 * Math.PI) / winLength);
  for (let n = 0; n < winLength; n++) w[left + n] = f(0.5 - f(0.5 * f(Math.cos(f(n * step)))));
  return w;
}

/** torch.linspace in float32 (CPU kernel: the first half counts up from start, the second down from end). */
function linspaceF32(start: number, end: number, steps: number): number[] {
  const f = Math.fround;
  const [a, b] = [f(start), f(end)];
  const step = f((b - a) / (steps - 1));
  const half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) => (i < half ? f(a + f(step * i)) : f(b - f(step * (steps - i - 1)))));
}

/**
 * torchaudio `melscale_fbanks(n_freqs, f_min=0, f_max=sr/2, n_mels, sr, norm=None, mel_scale='htk')`:
 * triangular filters on HTK-mel-spaced centres, [n_freqs, n_mels], no area normalisation. Evaluated
 * step by step in float32 like the reference (torch's float32 pow may still differ by a few ulps).
 */
export function melFilterbank(nFreqs: number, nMels: number, sampleRate: number, fMin = 0, fMax = Math.floor(sampleRate / 2)): Float32Array {
  const f = Math.fround;
  const hzToMel = (hz: number) => 2595 * Math.log10(1 + hz / 700); // python floats
  const allFreqs = linspaceF32(0, Math.floor(sampleRate / 2), nFreqs);
  const fPts = linspaceF32(hzToMel(fMin), hzToMel(fMax), nMels + 2).map((m) => f(700 * f(f(10 ** f(m / 2595)) - 1)));
  const fDiff = fPts.slice(1).map((v, i) => f(v - fPts[i]));
  const fb = new Float32Array(nFreqs * nMels);
  for (let k = 0; k < nFreqs; k++) {
    for (let m = 0; m < nMels; m++) {
      const down = f(-f(fPts[m] - allFreqs[k]) / fDiff[m]);
      const up = f(f(fPts[m + 2] - allFreqs[k]) / fDiff[m + 1]);
      fb[k * nMels + m] = Math.max(0, Math.min(down, up));
    }
  }
  return fb;
}

/**
 * Windowed real DFT as one matrix [nFft, 2·nFreqs] = [w·cos | w·sin], so the STFT of all frames is a
 * single matmul (angles reduced mod nFft in float64 before rounding to float32).
 */
function windowedDftMatrix(window: Float32Array, nFft: number): Float32Array {
  const nFreqs = nFft / 2 + 1;
  const m = new Float32Array(nFft * 2 * nFreqs);
  for (let n = 0; n < nFft; n++) {
    for (let k = 0; k < nFreqs; k++) {
      const a = (2 * Math.PI * ((n * k) % nFft)) / nFft;
      m[n * 2 * nFreqs + k] = window[n] * Math.cos(a);
      m[n * 2 * nFreqs + nFreqs + k] = window[n] * Math.sin(a);
    }
  }
  return m;
}

export class AudioMelConditioner extends AudioPromptConditioner {
  /** The reference's MEL_MODEL_DIMS: the conditioner's nominal width (proj_out's input), 768. */
  static readonly DIM = 768;
  readonly nFft: number;
  readonly hopLength: number;
  readonly winLength: number;
  readonly nMels: number;
  readonly sampleRate: number;
  readonly maskRatioStart: number;
  readonly maskRatioEnd: number;
  readonly proj_features: Linear;
  /** Created (as in the reference) when 768 ≠ output_dim or project_out, but never applied. */
  readonly proj_out: Linear | null;
  private consts: { dft: tf.Tensor2D; fb: tf.Tensor2D } | null = null;

  constructor(config: AudioMelConditionerConfig) {
    super();
    const type = config.mel_spec_type ?? 'mel_features';
    if (type !== 'mel_features') throw new Error(`AudioMelConditioner: mel_spec_type "${type}" is not supported (only "mel_features")`);
    this.nFft = config.n_fft ?? 1024;
    this.hopLength = config.hop_length ?? 256;
    this.winLength = config.win_length ?? 1024;
    this.nMels = config.n_mel_channels ?? 100;
    this.sampleRate = config.target_sample_rate ?? 24000;
    this.maskRatioStart = config.mask_ratio_start ?? 0.7;
    this.maskRatioEnd = config.mask_ratio_end ?? 1;
    if (this.nFft % 2 !== 0) throw new Error(`AudioMelConditioner: n_fft must be even, got ${this.nFft}`);
    if (this.winLength > this.nFft) throw new Error(`AudioMelConditioner: win_length ${this.winLength} > n_fft ${this.nFft}`);
    const nominal = config._dim ?? AudioMelConditioner.DIM;
    this.proj_out =
      nominal !== config.output_dim || config.project_out ? this.module('proj_out', new Linear(nominal, config.output_dim)) : null;
    // The reference hard-codes Linear(n_mels, 768); its output is concatenated with the other conditioners'
    // cond_dim-wide tokens, so 768 there is cond_dim (= output_dim), and that is what it is here.
    this.proj_features = this.module('proj_features', new Linear(this.nMels, config._dim ?? config.output_dim));
  }

  static fromConfig(config: AudioMelConditionerConfig): AudioMelConditioner {
    return new AudioMelConditioner(config);
  }

  /** Whether the configured ratios make the reference mask at inference (start < end). */
  get masksByDefault(): boolean {
    return this.maskRatioStart < this.maskRatioEnd;
  }

  private constants(): { dft: tf.Tensor2D; fb: tf.Tensor2D } {
    if (!this.consts) {
      const nFreqs = this.nFft / 2 + 1;
      const window = hannWindow(this.winLength, this.nFft);
      this.consts = {
        dft: tf.keep(tf.tensor2d(windowedDftMatrix(window, this.nFft), [this.nFft, 2 * nFreqs])),
        fb: tf.keep(tf.tensor2d(melFilterbank(nFreqs, this.nMels, this.sampleRate), [nFreqs, this.nMels])),
      };
    }
    return this.consts;
  }

  /**
   * log(max(|STFT|·fb, 1e-5)) of mono waveforms [B, N] → [B, frames, n_mels] (time-major, i.e. the
   * reference's [B, n_mels, frames] transposed), frames = 1 + ⌊N / hop⌋ (centre reflect padding).
   */
  logMel(wave: tf.Tensor2D): tf.Tensor3D {
    const [b, n] = wave.shape;
    const pad = this.nFft / 2;
    if (n <= pad) throw new Error(`AudioMelConditioner: ${n} samples are too few for reflect padding by ${pad} (need > ${pad})`);
    const { dft, fb } = this.constants();
    return tf.tidy(() => {
      const padded = tf.mirrorPad(wave, [[0, 0], [pad, pad]], 'reflect'); // [B, N + n_fft]
      const frames = 1 + Math.floor(n / this.hopLength);
      const idx = new Int32Array(frames * this.nFft);
      for (let t = 0; t < frames; t++) for (let i = 0; i < this.nFft; i++) idx[t * this.nFft + i] = t * this.hopLength + i;
      const x = tf.gather(padded, tf.tensor2d(idx, [frames, this.nFft], 'int32'), 1); // [B, F, n_fft]
      const spec = tf.matMul(x.reshape([b * frames, this.nFft]), dft); // [B·F, 2·n_freqs]
      const nFreqs = this.nFft / 2 + 1;
      const [re, im] = tf.split(spec, [nFreqs, nFreqs], 1);
      const mag = tf.sqrt(re.square().add(im.square())); // power = 1
      const mel = tf.matMul(mag, fb).maximum(1e-5).log();
      return mel.reshape([b, frames, this.nMels]) as tf.Tensor3D;
    });
  }

  /**
   * The reference's `mask_mel_spectrogram`: ratios u·(end − start) + start from one `rand([B])`, then per
   * item `len = int(frames·ratio)` and a start from `randint(0, frames − len + 1, [1])`; that span → 0.
   */
  maskSpans(mels: tf.Tensor3D, noise: NoiseSource): tf.Tensor3D {
    const [b, frames] = mels.shape;
    const f = Math.fround;
    const u = noise.rand('mask', [b]);
    const ratios = Array.from(u.dataSync(), (v) => f(f(v * f(this.maskRatioEnd - this.maskRatioStart)) + f(this.maskRatioStart)));
    u.dispose();
    const keep = new Uint8Array(b * frames).fill(1);
    for (let i = 0; i < b; i++) {
      const len = Math.trunc(f(frames * ratios[i]));
      const s = noise.randint('mask', 0, frames - len + 1, [1]);
      const start = s.dataSync()[0];
      s.dispose();
      keep.fill(0, i * frames + start, i * frames + Math.min(frames, start + len));
    }
    return tf.tidy(() => tf.where(tf.tensor3d(keep, [b, frames, 1], 'bool'), mels, tf.zerosLike(mels)) as tf.Tensor3D);
  }

  /**
   * wavs: one tensor per batch item ([b_i, C, N], concatenated along the batch like the reference) or a
   * single [B, C, N] tensor; channels are averaged. → `{embedding [B, frames, D], mask ones [B, 1]}`
   */
  condition(input: tf.Tensor, ctx: ConditionContext): ConditionerOutput {
    if (!(input instanceof tf.Tensor)) throw new Error('AudioMelConditioner expects audio [B, 2, N]');
    return this.forward(input, { noise: ctx.noise, randomMasking: ctx.melMasking });
  }

  forward(wavs: tf.Tensor[] | tf.Tensor, opts: MelForwardOptions = {}): MelConditioning {
    const list = Array.isArray(wavs) ? wavs : [wavs];
    if (!list.length) throw new Error('AudioMelConditioner: no audio given');
    for (const w of list) {
      if (w.rank !== 3 || w.shape[2] !== list[0].shape[2]) {
        throw new Error(`AudioMelConditioner: expected [b, C, N] waveforms of equal length, got [${w.shape}] (first [${list[0].shape}])`);
      }
    }
    const masking = (opts.randomMasking ?? true) && this.masksByDefault;
    if (masking && !opts.noise) {
      throw new Error('AudioMelConditioner: random masking is enabled (mask_ratio_start < mask_ratio_end) but no noise source was given');
    }
    return tf.tidy(() => {
      const audio = list.length === 1 ? list[0] : tf.concat(list, 0);
      const mono = audio.cast('float32').mean(1) as tf.Tensor2D; // [B, N]
      let mels = this.logMel(mono);
      if (masking) mels = this.maskSpans(mels, opts.noise!);
      const embedding = this.proj_features.forward(mels) as tf.Tensor3D;
      return { embedding, mask: tf.ones([embedding.shape[0], 1]) as tf.Tensor2D };
    });
  }

  protected override onDispose(): void {
    this.consts?.dft.dispose();
    this.consts?.fb.dispose();
    this.consts = null;
  }
}
