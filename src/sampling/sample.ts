// The reference's `sample_k` / `sample_rf` (audiox/inference/sampling.py, docs/REFERENCE.md §7.2, §7.7) over any
// `DiffusionModel` (DiT, MAF-DiT, MMDiT): schedule, starting point (plain, variation, inpainting),
// sampler dispatch, progress and cancellation.
import * as tf from '@tensorflow/tfjs';
import type { DiffusionCond, DiffusionModel } from '../models/diffusion-types.ts';
import { rectifiedFlowVelocity, vDenoiser } from './denoiser.ts';
import type { NoiseSource } from '../nn/noise.ts';
import type { AdaptiveAttempt, StepCallback } from './loop.ts';
import { kSampler, SAMPLER_REGISTRY, type KSchedule, type SamplerName } from './registry.ts';
import { polyexponentialSigmas, rectifiedFlowTimesteps } from './schedule.ts';

/** What `onProgress` of sampleK / sampleRf receives after each step. */
export interface SampleProgress {
  /** Index of the step (k-dpm-adaptive: of the attempt), 0 … steps − 1. */
  step: number;
  /**
   * Steps in all (k-dpm-fast: its DPM-Solver steps, fewer than the model calls); null when not known in
   * advance (k-dpm-adaptive picks them as it goes).
   */
  steps: number | null;
  /** Fraction of the sampling done after this step, 0 … 1 (k-dpm-adaptive: of the log-σ range). */
  fraction: number;
  /** k-dpm-adaptive: whether this attempt was accepted, its error estimate and the next step size. */
  attempt?: AdaptiveAttempt;
  /** Noise level (rectified flow: timestep) at which the model was evaluated. */
  sigma: number;
  /** The clean-latent estimate [B, C, T] of this step; valid only during the call (clone to keep). */
  denoised: tf.Tensor;
}

/** Called after each sampling step; the run waits for a returned promise. */
export type ProgressCallback = (p: SampleProgress) => void | Promise<void>;

/** Defaults of the shipped Gradio front-end (docs/REFERENCE.md §7.8); `sample_k`'s own are 2m-sde, 0.5, 50. */
export const SAMPLE_K_DEFAULTS = {
  steps: 100,
  samplerType: 'dpmpp-3m-sde' as SamplerName,
  sigmaMin: 0.03,
  sigmaMax: 500,
  rho: 1,
};

interface CommonOptions {
  model: DiffusionModel;
  /** Standard-normal starting noise [B, C, T] (the `initial` draw; scaled by σ_0 here). */
  noise: tf.Tensor;
  /** Init latents [B, C, T] for variations / inpainting. */
  initData?: tf.Tensor;
  steps?: number;
  sigmaMax?: number;
  /** With `initData` and no mask, replaces `sigmaMax` (generate_diffusion_cond's variation rule). */
  initNoiseLevel?: number;
  /** Conditioning and CFG settings, passed to every model call. */
  cond: DiffusionCond;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Options of {@link sampleK} (the reference's `sample_k`); unset values take SAMPLE_K_DEFAULTS. */
export interface SampleKOptions extends CommonOptions {
  /**
   * Inpainting soft mask in [0, 1], broadcastable to [B, C, T] (e.g. [T]): 1 keeps `initData`
   * longest, 0 is generated freely. Requires `initData`.
   */
  mask?: tf.Tensor;
  /** A v-objective sampler name (default dpmpp-3m-sde); an unknown or rectified-flow one throws. */
  samplerType?: string;
  /** Smallest σ of the schedule (default 0.03). */
  sigmaMin?: number;
  /** Polyexponential schedule shape (default 1). */
  rho?: number;
  /** Draws the SDE noise (stream `sde`) and the inpainting re-noising (stream `inpaint`). */
  noiseSource: NoiseSource;
}

/** Options of {@link sampleRf} (the reference's `sample_rf`: Euler in t, no mask). */
export type SampleRfOptions = CommonOptions;

/** What `sampleK` samples over: the σ schedule (incl. the variation's σ_max substitution) and its arguments. */
export function sampleKSchedule(opts: Omit<SampleKOptions, 'model' | 'noise' | 'cond' | 'noiseSource'>): KSchedule {
  const d = SAMPLE_K_DEFAULTS;
  const variation = opts.initData !== undefined && opts.mask === undefined;
  const sigmaMax = variation && opts.initNoiseLevel !== undefined ? opts.initNoiseLevel : (opts.sigmaMax ?? d.sigmaMax);
  const [steps, sigmaMin] = [opts.steps ?? d.steps, opts.sigmaMin ?? d.sigmaMin];
  return { sigmas: polyexponentialSigmas(steps, sigmaMin, sigmaMax, opts.rho ?? d.rho), sigmaMin, sigmaMax, steps };
}

/** The σ schedule `sampleK` uses, trailing 0 included (k-dpm-fast / k-dpm-adaptive only take σ_0 from it). */
export function sampleKSigmas(opts: Omit<SampleKOptions, 'model' | 'noise' | 'cond' | 'noiseSource'>): number[] {
  return sampleKSchedule(opts).sigmas;
}

/** The timesteps `sampleRf` uses: linspace(min(σ_max, 1), 0, steps + 1). */
export function sampleRfTimesteps(opts: Omit<SampleRfOptions, 'model' | 'noise' | 'cond'>): number[] {
  const sigmaMax = opts.initData !== undefined && opts.initNoiseLevel !== undefined ? opts.initNoiseLevel : (opts.sigmaMax ?? 1);
  return rectifiedFlowTimesteps(opts.steps ?? SAMPLE_K_DEFAULTS.steps, sigmaMax);
}

function checkShapes(noise: tf.Tensor, initData: tf.Tensor | undefined): void {
  if (noise.rank !== 3) throw new Error(`noise must be [B, C, T], got [${noise.shape}]`);
  if (initData && initData.shape.join() !== noise.shape.join()) {
    throw new Error(`initData [${initData.shape}] must have the noise's shape [${noise.shape}]`);
  }
}

/** The reference's shrinking hard mask at step i: 1 where mask ≤ (i + 1)/steps. */
export function binaryMask(mask: tf.Tensor, i: number, steps: number): tf.Tensor {
  return tf.tidy(() => tf.lessEqual(mask, (i + 1) / steps).cast('float32'));
}

function progressCallback(onProgress: ProgressCallback | undefined, scheduleSteps: number): StepCallback | undefined {
  return (
    onProgress &&
    (async ({ i, sigma, denoised, steps: own, fraction, attempt }) => {
      const steps = own === undefined ? scheduleSteps : own;
      await onProgress({ step: i, steps, fraction: fraction ?? (steps ? (i + 1) / steps : 0), sigma, denoised, ...(attempt && { attempt }) });
    })
  );
}

/**
 * k-diffusion sampling of a v-objective model (`sample_k`). Returns the sampled latents [B, C, T];
 * the inputs are not consumed. Throws an `AbortError` if `signal` aborts (checked between steps).
 */
export async function sampleK(opts: SampleKOptions): Promise<tf.Tensor> {
  const { model, noise, initData, mask, cond, noiseSource } = opts;
  const sampler = kSampler(opts.samplerType ?? SAMPLE_K_DEFAULTS.samplerType);
  checkShapes(noise, initData);
  if (mask && !initData) throw new Error('an inpainting mask needs initData');
  const schedule = sampleKSchedule(opts);
  const sigmas = schedule.sigmas;
  const steps = sigmas.length - 1;

  const x0 = tf.tidy(() => {
    const scaled = noise.mul(sigmas[0]);
    if (!initData) return scaled;
    if (!mask) return initData.add(scaled); // variation
    const b = binaryMask(mask, 0, steps); // inpainting
    return initData.add(scaled).mul(b).add(scaled.mul(tf.sub(1, b)));
  });

  const progress = progressCallback(opts.onProgress, steps);
  let callback = progress;
  if (mask && initData) {
    // Re-noise the init latents to this step's σ and paste them where the shrinking mask keeps
    // them (replaces x for the rest of the step, as the reference's in-place write does).
    callback = async (info) => {
      const z = noiseSource.randn('inpaint', initData.shape);
      const x = tf.tidy(() => {
        const b = binaryMask(mask, info.i, steps);
        return initData.add(z.mul(info.sigma)).mul(b).add(info.x.mul(tf.sub(1, b)));
      });
      z.dispose();
      try {
        await progress?.({ ...info, x });
      } catch (e) {
        x.dispose();
        throw e;
      }
      return x;
    };
  }

  try {
    return await sampler.run(vDenoiser(model, cond), x0, schedule, {
      callback,
      signal: opts.signal,
      noiseSampler: sampler.stochastic ? () => noiseSource.randn('sde', noise.shape) : undefined,
    });
  } finally {
    x0.dispose();
  }
}

/**
 * Rectified-flow sampling (`sample_rf` → `sample_discrete_euler`); `sampler_type` and `sigma_min`
 * do not apply. Variation: x_0 = init·(1 − σ_max) + noise·σ_max.
 */
export async function sampleRf(opts: SampleRfOptions): Promise<tf.Tensor> {
  const { model, noise, initData, cond } = opts;
  checkShapes(noise, initData);
  const ts = sampleRfTimesteps(opts);
  const sigmaMax = ts[0];
  const x0 = initData ? tf.tidy(() => initData.mul(1 - sigmaMax).add(noise.mul(sigmaMax))) : noise.clone();
  try {
    return await SAMPLER_REGISTRY['rf-euler'].run(rectifiedFlowVelocity(model, cond), x0, ts, {
      callback: progressCallback(opts.onProgress, ts.length - 1),
      signal: opts.signal,
    });
  } finally {
    x0.dispose();
  }
}
