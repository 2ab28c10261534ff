// Analytic toy problems for the sampler tests: data ~ N(μ, s²) in every coordinate.
import * as tf from '@tensorflow/tfjs';
import type { DiffusionCond, DiffusionModel } from '../../src/models/diffusion-types.ts';
import type { DenoiseFn } from '../../src/sampling/denoiser.ts';
import type { SamplerOptions } from '../../src/sampling/loop.ts';
import { kSampler, type SamplerName } from '../../src/sampling/registry.ts';
import { polyexponentialSigmas } from '../../src/sampling/schedule.ts';

export const MU = 0.7;
export const S = 0.5;

/** The exact denoiser of N(μ, s²): D(x, σ) = (s²·x + σ²·μ)/(s² + σ²). */
export const gaussianDenoiser: DenoiseFn = (x, sigma) =>
  tf.tidy(() => x.mul(S * S).add(sigma * sigma * MU).div(S * S + sigma * sigma));

/** Probability-flow ODE solution from σ_from to σ_to: μ + (x − μ)·√(s² + σ_to²)/√(s² + σ_from²). */
export function exactOde(x: Float32Array, sigmaFrom: number, sigmaTo: number): Float64Array {
  const k = Math.sqrt(S * S + sigmaTo * sigmaTo) / Math.sqrt(S * S + sigmaFrom * sigmaFrom);
  return Float64Array.from(x, (v) => MU + (v - MU) * k);
}

/** A v-prediction network whose VDenoiser is the Gaussian denoiser above (σ = tan(t·π/2)). */
export class ToyVModel implements DiffusionModel {
  calls = 0;
  readonly inputs: { x: number[]; t: number[] }[] = [];
  constructor(private readonly record = false) {}
  forward(x: tf.Tensor, t: tf.Tensor, _cond: DiffusionCond): tf.Tensor {
    this.calls++;
    if (this.record) this.inputs.push({ x: Array.from(x.dataSync()), t: Array.from(t.dataSync()) });
    return tf.tidy(() => {
      const sigma = tf.tan(t.mul(Math.PI / 2)).reshape([-1, 1, 1]);
      const s2 = sigma.square().add(1);
      const xin = x.mul(s2.sqrt()); // u / c_in
      const d = xin.mul(S * S).add(sigma.square().mul(MU)).div(sigma.square().add(S * S));
      // F = (D − c_skip·x) / c_out
      return d.sub(xin.div(s2)).div(sigma.neg().div(s2.sqrt()));
    });
  }
}

/** A rectified-flow velocity model for N(μ, s²) data with x_t = (1 − t)·x_0 + t·ε. */
export class ToyRfModel implements DiffusionModel {
  calls = 0;
  forward(x: tf.Tensor, t: tf.Tensor, _cond: DiffusionCond): tf.Tensor {
    this.calls++;
    return tf.tidy(() => {
      const tt = t.reshape([-1, 1, 1]);
      const a = tf.sub(1, tt);
      const varT = a.square().mul(S * S).add(tt.square());
      const centred = x.sub(a.mul(MU));
      const eEps = centred.mul(tt).div(varT);
      const eX0 = centred.mul(a.mul(S * S)).div(varT).add(MU);
      return eEps.sub(eX0);
    });
  }
}

/** A model returning zeros (then D(x, σ) = x/(σ² + 1)) that records its inputs. */
export class ZeroModel implements DiffusionModel {
  readonly inputs: { x: number[]; t: number[] }[] = [];
  forward(x: tf.Tensor, t: tf.Tensor): tf.Tensor {
    this.inputs.push({ x: Array.from(x.dataSync()), t: Array.from(t.dataSync()) });
    return tf.zerosLike(x);
  }
}

export function meanStd(a: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(v / (a.length - 1)) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A v-objective sampler of the registry on the geometric schedule σ_max → σ_min of `steps` levels. */
export function runK(
  name: SamplerName,
  denoise: DenoiseFn,
  x0: tf.Tensor,
  steps: number,
  opts: SamplerOptions,
  range: { sigmaMin: number; sigmaMax: number },
): Promise<tf.Tensor> {
  const sigmas = polyexponentialSigmas(steps, range.sigmaMin, range.sigmaMax);
  return kSampler(name).run(denoise, x0, { sigmas, steps, sigmaMin: range.sigmaMin, sigmaMax: range.sigmaMax }, opts);
}
