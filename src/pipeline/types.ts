// Public types of the generation pipeline (what the CLI, the web UI and library users call).
import type * as tf from '@tensorflow/tfjs';
import type { ConditionerOutput } from '../models/conditioning.ts';
import type { AdaptiveAttempt } from '../sampling/loop.ts';
import type { NoiseStream } from '../nn/noise.ts';
import type { SamplerName } from '../sampling/registry.ts';
import type { InpaintOptions } from './inpaint.ts';

export type { InpaintOptions, WindowPosition } from './inpaint.ts';

/** The samplers of the registry (src/sampling/registry.ts). */
export type { SamplerName };

/** A conditioner output: tokens [B, L, D] and the reference's mask for them. */
export type { ConditionerOutput };

/** What `onProgress` receives after each sampler step. */
export interface Progress {
  /** 0-based index of the step just finished (k-dpm-adaptive: of the attempt, accepted or not). */
  step: number;
  /** Steps in all; null when the sampler picks them as it goes (k-dpm-adaptive). */
  steps: number | null;
  /** Fraction of the sampling done, 0 … 1 (k-dpm-adaptive: of the log-σ range from σ_max to σ_min). */
  fraction: number;
  /** k-dpm-adaptive: the step control of this attempt (accepted?, error, next step size). */
  attempt?: AdaptiveAttempt;
  /** The noise level σ of the step just finished. */
  sigma: number;
  /** The current denoised estimate (latents [B, C, T]); valid only during the callback. */
  denoised: tf.Tensor;
  /** Milliseconds since sampling started. */
  elapsedMs: number;
}

/**
 * Options of {@link generate}. The scalar options carry the parameter schema's names (`PARAMS` in
 * src/pipeline/params-schema.ts, README's parameter table), so they are also the HTTP API's field names and
 * the CLI's flags in kebab case; the schema's `inpaint*` parameters are the fields of `inpaint`
 * (inpaintStart → inpaint.maskStart, inpaintSoftnessL → inpaint.softnessL, …) and `previewEvery` is the web
 * page's only (test/pipeline/generate-options-names.test.ts keeps the two in step). Everything is optional.
 */
export interface GenerateOptions {
  /** Text prompt (default: empty). */
  prompt?: string;
  /** Text to steer away from: classifier-free guidance's unconditional branch is conditioned on it instead of on nothing. */
  negativePrompt?: string;
  /** Path of a conditioning video (read through ffmpeg from `secondsStart`, 10 s of it). */
  video?: string;
  /** Path of a conditioning still image (used as a video of that one frame). */
  image?: string;
  /**
   * Audio prompt: a path (brought to the 10 s window) or stereo samples at the model rate (used as given), the
   * same for every batch item; or one set of samples per batch item ([batch][channel], all the same length).
   */
  audio?: string | Float32Array[] | Float32Array[][];
  /** Where the 10 s conditioning window starts in the media, in seconds (default 0). */
  secondsStart?: number;
  /** Length of the generated audio in seconds (default 10, at most sample_size / sample_rate). */
  secondsTotal?: number;
  /** Sampling steps (default 100; k-dpm-adaptive picks its own). */
  steps?: number;
  /** Classifier-free guidance scale (default 7; exactly 1: no unconditional pass). */
  cfgScale?: number;
  /** CFG rescale (the reference's scale_phi). */
  cfgRescale?: number;
  /** Default: the model objective's default (dpmpp-3m-sde for v, rf-euler for rectified flow). */
  sampler?: SamplerName;
  /** Smallest noise level of the schedule (default 0.03; k-diffusion samplers only). */
  sigmaMin?: number;
  /** Largest noise level of the schedule (default 500; k-diffusion samplers only). */
  sigmaMax?: number;
  /** Shape of the polyexponential σ schedule (default 1, as the demo always uses). */
  rho?: number;
  /** −1 or undefined: random. */
  seed?: number;
  /**
   * Init audio for variations and inpainting: a path or stereo samples at the model rate. Cropped or
   * zero-padded to the window; init audio longer than the window lengthens the generation to its length
   * (rounded up to whole latent frames), as the reference's front-end does.
   */
  initAudio?: string | Float32Array[];
  /**
   * Inpainting from latents instead of init audio: [1, C, T] for the model's window (T latent frames), kept
   * where the inpainting mask keeps them (long-form continuation holds the previous window's latents so).
   * Not consumed.
   */
  initLatents?: tf.Tensor;
  /**
   * Inpainting: end with the kept frames (mask 0) exactly at the init latents. The reference only re-pastes
   * them at each step, so the last denoising step leaves them wherever the model puts them; long-form
   * continuation needs them to be the previous window's.
   */
  holdKept?: boolean;
  /** Variation only: the σ the init audio is noised to (replaces sigmaMax; default 1). */
  initNoiseLevel?: number;
  /** Regenerate part of the init audio (reference semantics: the mask range is regenerated). */
  inpaint?: InpaintOptions;
  /**
   * Keep the whole decoded window (e.g. 10.96 s for AudioX) and normalise over all of it, as the
   * reference's front-end does; default: trim to `secondsTotal` (or to the init audio's length).
   */
  fullLength?: boolean;
  /** Number of outputs generated together (default 1). */
  batchSize?: number;
  /** Called after each sampling step; a returned promise is awaited (`p.denoised` stays valid until it settles). */
  onProgress?: (p: Progress) => void | Promise<void>;
  /** Aborts the generation at the next step (or media read); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Precomputed conditioner outputs by conditioner id; those conditioners are not run. */
  conditioningTensors?: Record<string, ConditionerOutput>;
  /** Inputs of number conditioners by id (default: seconds_start / seconds_total from the options above). */
  numberConditioning?: Record<string, number>;
  /**
   * Inputs of conditioners by id, handed to their prepareInput as they are (a conditioner type registered
   * outside the built-in modalities takes its input here; numberConditioning wins for the same id).
   */
  conditionerInputs?: Record<string, unknown>;
  /** Injected random draws per stream (parity, research). */
  noise?: Partial<Record<NoiseStream, tf.Tensor | tf.Tensor[]>>;
  /** false: return the raw decoded audio (no peak normalisation). */
  normalize?: boolean;
  /** Also return the sampled latents (`GenerateResult.latents`). */
  returnLatents?: boolean;
  /**
   * Reproduce the reference demo's preprocessing bugs: still images divided by 255 twice (quirk 13), video
   * frames picked every ⌈fps/5⌉-th (quirk 14), an audio-prompt file read like `load_and_process_audio`
   * (not resampled, left-padded; quirk 15). Without an audio prompt the prompt is silence, which is what the
   * reference UI always sends.
   */
  referenceQuirks?: boolean;
}

/** What {@link generate} returns. */
export interface GenerateResult {
  /** [batch][channel] float32 samples at `sampleRate`. */
  audio: Float32Array[][];
  /** Samples per second of `audio` (the model's, 44100 for AudioX). */
  sampleRate: number;
  /** The seed used (the random one drawn when none was given), to repeat the run. */
  seed: number;
  /** Sampled latents [B, C, T] when `returnLatents` (owned by the caller). */
  latents?: tf.Tensor;
  /** The σ schedule actually used. */
  sigmas: number[];
  /** Every parameter as resolved (defaults filled in), to repeat the run. */
  params: Record<string, unknown>;
  /** Wall-clock milliseconds of each stage. */
  timings: { conditioningMs: number; samplingMs: number; decodeMs: number; totalMs: number };
}
