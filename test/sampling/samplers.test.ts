import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { SeededNoise } from '../../src/nn/noise.ts';
import { kSampler, samplersFor, SAMPLER_REGISTRY, type SamplerName } from '../../src/sampling/registry.ts';
import { ancestralStep, linearMultistepCoeff } from '../../src/sampling/samplers.ts';
import { polyexponentialSigmas } from '../../src/sampling/schedule.ts';
import { sigmaToT, vDenoiser, vScalings } from '../../src/sampling/denoiser.ts';
import { FIXTURES } from '../helpers.ts';
import { exactOde, gaussianDenoiser, maxAbsDiff, meanStd, MU, runK, S, ToyVModel } from './toy.ts';

const SIGMA_MIN = 0.002;
const SIGMA_MAX = 80;
const K_SAMPLERS = samplersFor('v');
const STOCHASTIC = K_SAMPLERS.filter((n) => SAMPLER_REGISTRY[n].stochastic);
// k-dpm-adaptive picks its own steps: tested on its own below.
const DETERMINISTIC = K_SAMPLERS.filter((n) => !SAMPLER_REGISTRY[n].stochastic && n !== 'k-dpm-adaptive');


async function run(name: SamplerName, steps: number, n: number, seed = 1) {
  const src = new SeededNoise(seed);
  const noise = src.randn('initial', [1, 1, n]);
  const sigmas = polyexponentialSigmas(steps, SIGMA_MIN, SIGMA_MAX);
  const x0 = noise.mul(sigmas[0]);
  const out = await runK(name, gaussianDenoiser, x0, steps, { noiseSampler: () => src.randn('sde', [1, 1, n]) }, { sigmaMin: SIGMA_MIN, sigmaMax: SIGMA_MAX });
  const x0h = (await x0.data()) as Float32Array;
  const y = (await out.data()) as Float32Array;
  tf.dispose([noise, x0, out]);
  return { x0: x0h, y, sigmas };
}

describe('VDenoiser', () => {
  it('scalings and σ → t match hand values', () => {
    const a = vScalings(1);
    expect(a.cSkip).toBeCloseTo(0.5, 12);
    expect(a.cOut).toBeCloseTo(-Math.SQRT1_2, 12);
    expect(a.cIn).toBeCloseTo(Math.SQRT1_2, 12);
    const b = vScalings(Math.sqrt(3));
    expect([b.cSkip, b.cOut, b.cIn].map((v) => +v.toFixed(12))).toEqual([0.25, +(-Math.sqrt(3) / 2).toFixed(12), 0.5]);
    expect(vScalings(0)).toEqual({ cSkip: 1, cOut: -0, cIn: 1 });
    expect(sigmaToT(1)).toBeCloseTo(0.5, 12);
    expect(sigmaToT(Math.sqrt(3))).toBeCloseTo(2 / 3, 12);
    expect(sigmaToT(0)).toBe(0);
  });

  it('feeds c_in·x and t = atan(σ)·2/π as a [B] tensor and combines c_skip·x + c_out·F', async () => {
    const calls: { x: number[]; t: number[]; tShape: number[] }[] = [];
    const model = {
      forward: (x: tf.Tensor, t: tf.Tensor) => {
        calls.push({ x: Array.from(x.dataSync()), t: Array.from(t.dataSync()), tShape: t.shape });
        return tf.onesLike(x);
      },
    };
    const x = tf.tensor3d([2, -4, 6, 8], [2, 1, 2]);
    const d = vDenoiser(model, {})(x, 1);
    expect(calls[0].tShape).toEqual([2]);
    calls[0].t.forEach((t) => expect(t).toBeCloseTo(0.5, 6));
    calls[0].x.forEach((v, i) => expect(v).toBeCloseTo([2, -4, 6, 8][i] * Math.SQRT1_2, 5));
    Array.from(await d.data()).forEach((v, i) => expect(v).toBeCloseTo(0.5 * [2, -4, 6, 8][i] - Math.SQRT1_2, 5));
    tf.dispose([x, d]);
  });

  it('the toy v-model reproduces the analytic denoiser through the VDenoiser', async () => {
    const x = tf.tensor3d([0.3, -1.2, 5, 40], [1, 1, 4]);
    for (const sigma of [0.05, 1, 20]) {
      const a = vDenoiser(new ToyVModel(), {})(x, sigma);
      const b = gaussianDenoiser(x, sigma);
      expect(maxAbsDiff(await a.data(), await b.data())).toBeLessThan(1e-4 * Math.max(1, sigma));
      tf.dispose([a, b]);
    }
    x.dispose();
  });
});

describe('samplers on the Gaussian toy problem', () => {
  // First-order methods converge slowly on the geometric 80 → 0.002 schedule.
  const FIRST_ORDER = new Set<SamplerName>(['k-euler', 'k-euler-ancestral']);

  it.each(DETERMINISTIC)('%s converges to the exact probability-flow ODE solution', async (name) => {
    const errs: number[] = [];
    for (const steps of [10, 50]) {
      const { x0, y, sigmas } = await run(name, steps, 256);
      // exact: the ODE from σ_max to 0 (the schedule's final jump from σ_min = 0.002 ≪ s adds ~1e-5;
      // k-dpm-fast stops at σ_min, which is as close)
      errs.push(maxAbsDiff(y, exactOde(x0, sigmas[0], 0)));
    }
    expect(errs[1], `${name}: error at 10 steps ${errs[0]}, at 50 steps ${errs[1]}`).toBeLessThan(errs[0] / 4);
    expect(errs[1]).toBeLessThan(FIRST_ORDER.has(name) ? 0.15 : 0.02);
  });

  it.each(STOCHASTIC)('%s: sample mean/std approach μ/s as steps grow', async (name) => {
    const stats = [];
    for (const steps of [10, 100]) stats.push(meanStd((await run(name, steps, 20000, 7)).y));
    const [few, many] = stats;
    expect(Math.abs(many.std - S), `std ${few.std} at 10 steps, ${many.std} at 100`).toBeLessThan(Math.abs(few.std - S));
    expect(Math.abs(many.mean - MU)).toBeLessThan(0.01);
    expect(Math.abs(many.std - S) / S).toBeLessThan(FIRST_ORDER.has(name) ? 0.06 : 0.015);
  });

  it.each(K_SAMPLERS)('%s leaks no tensor', async (name) => {
    const src = new SeededNoise(3);
    const x0 = tf.randomNormal([2, 3, 5]);
    const before = tf.memory().numTensors;
    let seen = 0;
    const out = await runK(name, gaussianDenoiser, x0, 6, {
      noiseSampler: () => src.randn('sde', [2, 3, 5]),
      callback: ({ denoised }) => void (seen += denoised.size > 0 ? 1 : 0),
    }, { sigmaMin: 0.1, sigmaMax: 10 });
    out.dispose();
    const steps = SAMPLER_REGISTRY[name].progressSteps(6);
    if (steps === null) expect(seen).toBeGreaterThan(0);
    else expect(seen).toBe(steps);
    expect(tf.memory().numTensors).toBe(before);
    x0.dispose();
  });

  it('the stochastic samplers demand a noise sampler', async () => {
    const x0 = tf.zeros([1, 1, 2]);
    await expect(kSampler('dpmpp-3m-sde').run(gaussianDenoiser, x0, { sigmas: [1, 0], sigmaMin: 1, sigmaMax: 1, steps: 1 }, {})).rejects.toThrow(/needs a noiseSampler/);
    x0.dispose();
  });

  it('unknown sampler names list the valid ones; a rectified-flow sampler is no k-sampler', () => {
    expect(() => kSampler('k-dpm-faster')).toThrow(/unknown sampler "k-dpm-faster"; valid: dpmpp-3m-sde, dpmpp-2m-sde, k-heun, k-lms, k-dpm-2, k-dpmpp-2s-ancestral, k-dpm-fast, k-dpm-adaptive/);
    expect(() => kSampler('rf-euler')).toThrow(/sampler "rf-euler" is for rectified-flow models/);
  });

  it('ancestral step: σ_down² + σ_up² = σ_to²', () => {
    const { sigmaDown, sigmaUp } = ancestralStep(2, 1);
    expect(sigmaUp).toBeCloseTo(Math.sqrt(3) / 2, 12);
    expect(sigmaDown ** 2 + sigmaUp ** 2).toBeCloseTo(1, 12);
    expect(ancestralStep(2, 0)).toEqual({ sigmaDown: 0, sigmaUp: 0 });
  });
});

const lmsFixture = path.join(FIXTURES, 'sampler', 'k_lms.safetensors');
describe('k-lms coefficients', () => {
  it('first step is Euler: ∫ 1 dσ = σ_1 − σ_0', () => {
    expect(linearMultistepCoeff(1, [5, 2, 0], 0, 0)).toBeCloseTo(-3, 12);
    expect(() => linearMultistepCoeff(3, [5, 2, 1, 0], 1, 0)).toThrow(/too high/);
  });
  it('match the reference (scipy quad) coefficients of the fixture', () => {
    const st = SafetensorsFile.open(lmsFixture);
    try {
      const sigmas = Array.from(st.readHost('outputs/sigmas').data);
      for (let i = 0; i < sigmas.length - 1; i++) {
        const expected = st.readHost(`intermediates/lms_coeffs.${i}`).data;
        const order = Math.min(i + 1, 4);
        expect(expected.length).toBe(order);
        for (let j = 0; j < order; j++) {
          const c = linearMultistepCoeff(order, sigmas, i, j);
          expect(Math.abs(c - expected[j])).toBeLessThanOrEqual(1e-5 * Math.abs(expected[j]) + 1e-9);
        }
      }
    } finally {
      st.close();
    }
  });
});
