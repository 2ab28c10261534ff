// Wrappers that turn a diffusion network into what the samplers call (docs/REFERENCE.md §7.3, §7.7).
import * as tf from '@tensorflow/tfjs';
import type { DiffusionCond, DiffusionModel } from '../models/diffusion-types.ts';

/** `(x [B, C, T], σ) → D(x, σ)`: the clean-data estimate at noise level σ (k-diffusion's "model"). */
export type DenoiseFn = (x: tf.Tensor, sigma: number) => tf.Tensor;

/** `(x [B, C, T], t) → v`: a rectified-flow velocity field. */
export type VelocityFn = (x: tf.Tensor, t: number) => tf.Tensor;

/** The VDenoiser's scalings at one σ: denoised = c_skip · x + c_out · model(c_in · x). */
export interface VScalings {
  /** Weight of the input x in the denoised estimate. */
  cSkip: number;
  /** Weight of the model's output. */
  cOut: number;
  /** Scale of x fed to the model. */
  cIn: number;
}

/** VDenoiser scalings with σ_data = 1: c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1), c_in = 1/√(σ²+1). */
export function vScalings(sigma: number): VScalings {
  const s2 = sigma * sigma + 1;
  return { cSkip: 1 / s2, cOut: -sigma / Math.sqrt(s2), cIn: 1 / Math.sqrt(s2) };
}

/** The v-diffusion timestep of a noise level: t = atan(σ)·2/π ∈ [0, 1). */
export function sigmaToT(sigma: number): number {
  return (Math.atan(sigma) * 2) / Math.PI;
}

/** A [B] float32 tensor filled with one scalar (the reference's `σ · s_in`). */
function batchScalar(x: tf.Tensor, value: number): tf.Tensor {
  return tf.fill([x.shape[0]], value, 'float32');
}

/**
 * k-diffusion `VDenoiser` around a v-prediction network (CFG is inside the network's forward):
 * D(x, σ) = c_skip·x + c_out·F(c_in·x, t(σ), cond).
 */
export function vDenoiser(model: DiffusionModel, cond: DiffusionCond): DenoiseFn {
  return (x, sigma) =>
    tf.tidy(() => {
      const { cSkip, cOut, cIn } = vScalings(sigma);
      const v = model.forward(x.mul(cIn), batchScalar(x, sigmaToT(sigma)), cond);
      return v.mul(cOut).add(x.mul(cSkip));
    });
}

/** A rectified-flow network called directly with t as a [B] tensor (no scalings). */
export function rectifiedFlowVelocity(model: DiffusionModel, cond: DiffusionCond): VelocityFn {
  return (x, t) => tf.tidy(() => model.forward(x, batchScalar(x, t), cond));
}
