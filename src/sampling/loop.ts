// The step machinery shared by the samplers: tensor ownership across steps, the per-step callback
// (which may replace x, as the reference's in-place inpainting write does), noise draws and
// cancellation between steps. Nothing here knows a particular sampler.
import * as tf from '@tensorflow/tfjs';
import type { DenoiseFn } from './denoiser.ts';

/** Fresh N(0, I) noise of x's shape for the step σ → σ_next (k-diffusion's `noise_sampler`). */
export type NoiseSampler = (sigma: number, sigmaNext: number) => tf.Tensor;

/** k-dpm-adaptive: the step-size controller's record of one attempt (k-diffusion's info dict). */
export interface AdaptiveAttempt {
  /** Whether the attempt's error was small enough for the step to be taken. */
  accepted: boolean;
  /** The embedded error estimate of the attempt (scaled by rtol / atol; ≈ 1 is on target). */
  error: number;
  /** The step size in t = −ln σ proposed for the next attempt (updated on rejections too). */
  h: number;
  /** t = −ln σ reached after the attempt (unchanged when it was rejected). */
  t: number;
  /** Accepted attempts so far. */
  accepts: number;
  /** Rejected attempts so far. */
  rejects: number;
  /** Model evaluations so far. */
  modelCalls: number;
}

/** What a step reports right after its first model evaluation (k-diffusion's callback dict). */
export interface StepInfo {
  /** 0-based step index. */
  i: number;
  /** The current sample [B, C, T] (owned by the sampler). */
  x: tf.Tensor;
  /** The step's noise level σ_i. */
  sigma: number;
  /** The σ the model was evaluated at (k-diffusion's churned σ; no sampler here churns, so it equals sigma). */
  sigmaHat: number;
  /** The model's denoised estimate at sigmaHat (owned by the sampler). */
  denoised: tf.Tensor;
  /**
   * How many steps the run makes in all, when that is not the schedule's length (k-dpm-fast); null
   * when the sampler picks its steps as it goes (k-dpm-adaptive).
   */
  steps?: number | null;
  /** Fraction of the run done after this step, when not (i + 1)/steps (k-dpm-adaptive: of the log-σ range). */
  fraction?: number;
  /** k-dpm-adaptive: this attempt's step control. */
  attempt?: AdaptiveAttempt;
}

/**
 * Called once per step. `x` and `denoised` stay owned by the sampler (clone to keep them). Returning
 * a tensor replaces x for the rest of the step, like the reference's in-place `x[:] = …` (inpainting);
 * ownership of the returned tensor passes to the sampler.
 */
export type StepCallback = (info: StepInfo) => tf.Tensor | void | Promise<tf.Tensor | void>;

/** What every sampler takes besides the denoiser, x and the schedule. */
export interface SamplerOptions {
  /** Called once per step (see StepCallback). */
  callback?: StepCallback;
  /** Required by the stochastic samplers. */
  noiseSampler?: NoiseSampler;
  /** Checked before every step; an aborted run throws an error named `AbortError`. */
  signal?: AbortSignal;
}

/** A sampler: (denoiser, x at σ_0 [B, C, T], schedule with trailing 0) → sample. `x` is not consumed. */
export type Sampler = (denoise: DenoiseFn, x: tf.Tensor, sigmas: number[], opts?: SamplerOptions) => Promise<tf.Tensor>;

/** The error a cancelled run throws: an Error named `AbortError` whose message is the abort reason when it is a string. */
export function abortError(reason?: unknown): Error {
  const e = new Error(typeof reason === 'string' ? reason : 'sampling was cancelled');
  e.name = 'AbortError';
  return e;
}

/** Yields to the event loop (so an abort can land) and throws if the run was cancelled. */
export async function checkpoint(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return;
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
  if (signal.aborted) throw abortError(signal.reason);
}

/** Runs the callback; returns the x to continue with (the same tensor, or the callback's replacement). */
export async function report(opts: SamplerOptions, info: StepInfo): Promise<tf.Tensor> {
  const out = opts.callback ? await opts.callback(info) : undefined;
  return out instanceof tf.Tensor ? out : info.x;
}

/**
 * The loop shared by all samplers. `step(x, i)` returns x for σ_{i+1} as a new tensor and must not
 * dispose `x`; `state` releases the sampler's history. On error or abort nothing is leaked.
 */
export async function loop(
  x0: tf.Tensor,
  sigmas: number[],
  opts: SamplerOptions,
  step: (x: tf.Tensor, i: number) => Promise<tf.Tensor>,
  state: () => (tf.Tensor | null)[] = () => [],
): Promise<tf.Tensor> {
  if (sigmas.length < 2 || sigmas[sigmas.length - 1] !== 0) throw new Error('sigmas must end with a 0 and hold at least 2 values');
  let x = x0.clone();
  try {
    for (let i = 0; i < sigmas.length - 1; i++) {
      await checkpoint(opts.signal);
      const next = await step(x, i);
      x.dispose();
      x = next;
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    for (const t of state()) t?.dispose();
  }
}

/**
 * The first evaluation of step i, as every sampler starts: D(x, σ_i), then the callback (which may
 * replace x), then `update(x after the callback, D)` → x for σ_{i+1}. D is freed afterwards (clone
 * it to keep it as history).
 */
export async function withDenoised(
  denoise: DenoiseFn,
  x: tf.Tensor,
  i: number,
  sigmas: number[],
  opts: SamplerOptions,
  update: (xc: tf.Tensor, denoised: tf.Tensor) => tf.Tensor | Promise<tf.Tensor>,
): Promise<tf.Tensor> {
  const denoised = denoise(x, sigmas[i]);
  let xc = x;
  try {
    xc = await report(opts, { i, x, sigma: sigmas[i], sigmaHat: sigmas[i], denoised });
    return await update(xc, denoised);
  } finally {
    if (xc !== x) xc.dispose();
    denoised.dispose();
  }
}

/**
 * Like `withDenoised` for the Karras-ODE samplers, which take d = (x − D)/σ_i from x *before* the
 * callback (an inpainting callback changes x, not d). d is freed afterwards.
 */
export function withDerivative(
  denoise: DenoiseFn,
  x: tf.Tensor,
  i: number,
  sigmas: number[],
  opts: SamplerOptions,
  update: (xc: tf.Tensor, d: tf.Tensor) => tf.Tensor | Promise<tf.Tensor>,
): Promise<tf.Tensor> {
  return withDenoised(denoise, x, i, sigmas, opts, async (xc, denoised) => {
    const d = toD(x, sigmas[i], denoised); // from the x the model saw, not the callback's
    try {
      return await update(xc, d);
    } finally {
      d.dispose();
    }
  });
}

export function needNoise(opts: SamplerOptions, name: string): NoiseSampler {
  if (!opts.noiseSampler) throw new Error(`sampler "${name}" is stochastic and needs a noiseSampler`);
  return opts.noiseSampler;
}

/** Karras ODE derivative d = (x − D) / σ. */
export function toD(x: tf.Tensor, sigma: number, denoised: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.sub(denoised).div(sigma));
}

/** x + a·d (tidy). */
export function axpy(x: tf.Tensor, a: number, d: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.add(d.mul(a)));
}

/** Adds σ_up-scaled fresh noise: x + z·scale (disposes x and z). */
export function addNoise(x: tf.Tensor, noise: NoiseSampler, sigma: number, sigmaNext: number, scale: number): tf.Tensor {
  const z = noise(sigma, sigmaNext);
  const out = tf.tidy(() => x.add(z.mul(scale)));
  z.dispose();
  x.dispose();
  return out;
}

