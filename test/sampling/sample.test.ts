import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { InjectedNoise, SeededNoise } from '../../src/nn/noise.ts';
import { sampleK, sampleKSigmas, sampleRf } from '../../src/sampling/sample.ts';
import { samplersFor } from '../../src/sampling/registry.ts';
import { exactOde, gaussianDenoiser, maxAbsDiff, meanStd, MU, runK, S, ToyRfModel, ToyVModel, ZeroModel } from './toy.ts';

const base = { sigmaMin: 0.01, sigmaMax: 80, rho: 1, cond: {} };

describe('sampleK', () => {
  it.each(samplersFor('v'))('%s through the VDenoiser equals the sampler on the analytic denoiser', async (name) => {
    const noise = new SeededNoise(5).randn('initial', [2, 2, 8]);
    const sigmas = sampleKSigmas({ ...base, steps: 12 });
    const viaModel = await sampleK({ ...base, model: new ToyVModel(), noise, steps: 12, samplerType: name, noiseSource: new SeededNoise(9) });
    const x0 = noise.mul(sigmas[0]);
    const sde = new SeededNoise(9);
    const direct = await runK(name, gaussianDenoiser, x0, 12, { noiseSampler: () => sde.randn('sde', [2, 2, 8]) }, base);
    // σ = tan(t·π/2) inside the toy model is float32-sensitive near t = 1
    expect(maxAbsDiff(await viaModel.data(), await direct.data())).toBeLessThan(2e-3);
    tf.dispose([noise, viaModel, x0, direct]);
  });

  it('default sampler dpmpp-3m-sde converges in distribution, one sde draw per step with σ_next > 0', async () => {
    const src = new SeededNoise(11);
    const noise = src.randn('initial', [1, 4, 4000]);
    const sde = Array.from({ length: 49 }, () => src.randn('sde', [1, 4, 4000]));
    const injected = new InjectedNoise({ sde });
    const out = await sampleK({ ...base, model: new ToyVModel(), noise, steps: 50, noiseSource: injected });
    expect(injected.remaining('sde')).toBe(0);
    const { mean, std } = meanStd(await out.data());
    expect(Math.abs(mean - MU)).toBeLessThan(0.02);
    expect(Math.abs(std - S) / S).toBeLessThan(0.03);
    tf.dispose([noise, out, ...sde]);
  });

  it('variation: x_0 = init + noise·σ_0 with σ_max replaced by init_noise_level (hand check)', async () => {
    const model = new ZeroModel(); // F ≡ 0 ⇒ D(x, σ) = x/(σ² + 1)
    const noise = tf.tensor3d([1, -2, 0.5, 3], [1, 2, 2]);
    const init = tf.tensor3d([10, 20, 30, 40], [1, 2, 2]);
    const out = await sampleK({
      ...base, model, noise, initData: init, steps: 1, samplerType: 'k-heun', initNoiseLevel: 2, noiseSource: new SeededNoise(0),
    });
    const x0 = [10 + 2, 20 - 4, 30 + 1, 40 + 6];
    expect(model.inputs).toHaveLength(1);
    model.inputs[0].x.forEach((v, i) => expect(v).toBeCloseTo(x0[i] / Math.sqrt(5), 4)); // c_in·x_0 at σ = 2
    expect(model.inputs[0].t[0]).toBeCloseTo((Math.atan(2) * 2) / Math.PI, 6);
    Array.from(await out.data()).forEach((v, i) => expect(v).toBeCloseTo(x0[i] / 5, 4)); // Euler to 0 = D(x_0, 2)
    tf.dispose([noise, init, out]);
  });

  it('inpainting: shrinking binary mask, per-step re-noised init from the "inpaint" stream (hand check)', async () => {
    const model = new ZeroModel();
    const T = 4;
    const n = [0.5, -1, 2, 1];
    const init = [1, 2, 3, 4];
    const mask = [0, 0.4, 0.6, 1]; // step 0 keeps mask ≤ 1/2, step 1 keeps mask ≤ 1
    const z = [[0.1, 0.2, 0.3, 0.4], [-1, 1, -1, 1]];
    const zs = z.map((v) => tf.tensor3d(v, [1, 1, T]));
    const tensors = [tf.tensor3d(n, [1, 1, T]), tf.tensor3d(init, [1, 1, T]), tf.tensor1d(mask)];
    const noiseSource = new InjectedNoise({ inpaint: zs });
    const seen: number[] = [];
    const out = await sampleK({
      ...base, sigmaMin: 0.5, sigmaMax: 4, model, noise: tensors[0], initData: tensors[1], mask: tensors[2], steps: 2,
      samplerType: 'k-euler', noiseSource, onProgress: ({ step }) => void seen.push(step),
    });
    const [s0, s1] = sampleKSigmas({ ...base, sigmaMin: 0.5, sigmaMax: 4, steps: 2 });
    const b0 = mask.map((m) => (m <= 0.5 ? 1 : 0));
    // x_0 = (init + n·σ_0)·b_0 + n·σ_0·(1 − b_0)
    const x0 = n.map((v, i) => (init[i] + v * s0) * b0[i] + v * s0 * (1 - b0[i]));
    // step 0: D from x_0, then x ← (init + z_0·σ_0)·b_0 + x·(1 − b_0); Euler with d from the old x
    const d0 = x0.map((v) => (v - v / (s0 * s0 + 1)) / s0);
    const xa = x0.map((v, i) => (init[i] + z[0][i] * s0) * b0[i] + v * (1 - b0[i]));
    const x1 = xa.map((v, i) => v + d0[i] * (s1 - s0));
    // step 1: b_1 = 1 everywhere
    const d1 = x1.map((v) => (v - v / (s1 * s1 + 1)) / s1);
    const x2 = x1.map((_, i) => init[i] + z[1][i] * s1 + d1[i] * (0 - s1));
    model.inputs[0].x.forEach((v, i) => expect(v).toBeCloseTo(x0[i] / Math.sqrt(s0 * s0 + 1), 4));
    Array.from(await out.data()).forEach((v, i) => expect(v).toBeCloseTo(x2[i], 4));
    expect(noiseSource.remaining('inpaint')).toBe(0);
    expect(seen).toEqual([0, 1]);
    tf.dispose([out, ...zs, ...tensors]);
  });

  it('progress per step, cancellation between steps, nothing leaked', async () => {
    const noise = tf.randomNormal([1, 4, 16]);
    const model = new ToyVModel();
    const ac = new AbortController();
    const before = tf.memory().numTensors;
    const progress: { step: number; steps: number | null; sigma: number; size: number }[] = [];
    const run = sampleK({
      ...base, model, noise, steps: 8, noiseSource: new SeededNoise(1), signal: ac.signal,
      onProgress: ({ step, steps, sigma, denoised }) => {
        progress.push({ step, steps, sigma, size: denoised.size });
        if (step === 2) ac.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(model.calls).toBe(3); // steps 0, 1, 2 ran; step 3 never started
    expect(progress.map((p) => p.step)).toEqual([0, 1, 2]);
    expect(progress[0]).toMatchObject({ steps: 8, sigma: sampleKSigmas({ ...base, steps: 8 })[0], size: 64 });
    expect(tf.memory().numTensors).toBe(before);

    const pre = new AbortController();
    pre.abort();
    const m2 = new ToyVModel();
    await expect(sampleK({ ...base, model: m2, noise, steps: 8, noiseSource: new SeededNoise(1), signal: pre.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(m2.calls).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    noise.dispose();
  });

  it('a full run leaks nothing (incl. inpainting and progress)', async () => {
    const noise = tf.randomNormal([2, 3, 10]);
    const init = tf.randomNormal([2, 3, 10]);
    const mask = tf.linspace(0, 1, 10);
    const before = tf.memory().numTensors;
    for (const samplerType of ['dpmpp-3m-sde', 'k-lms', 'k-heun']) {
      const out = await sampleK({
        ...base, model: new ToyVModel(), noise, initData: init, mask, steps: 5, samplerType, noiseSource: new SeededNoise(2), onProgress: () => {},
      });
      out.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([noise, init, mask]);
  });

  it('bad arguments are clear errors', async () => {
    const noise = tf.zeros([1, 2, 3]);
    const args = { ...base, model: new ToyVModel(), noise, steps: 4, noiseSource: new SeededNoise(0) };
    await expect(sampleK({ ...args, samplerType: 'euler' })).rejects.toThrow(/unknown sampler "euler"; valid: dpmpp-3m-sde, dpmpp-2m-sde, k-heun/);
    await expect(sampleK({ ...args, samplerType: 'rf-euler' })).rejects.toThrow(/sampler "rf-euler" is for rectified-flow models/);
    await expect(sampleK({ ...args, mask: tf.ones([3]) })).rejects.toThrow(/needs initData/);
    await expect(sampleK({ ...args, initData: tf.zeros([1, 2, 4]) })).rejects.toThrow(/must have the noise's shape/);
    await expect(sampleK({ ...args, steps: 0 })).rejects.toThrow(/positive integer/);
    noise.dispose();
  });
});

describe('sampleRf', () => {
  it('Euler on the exact velocity converges to μ + s·noise, error shrinking with steps', async () => {
    const noise = new SeededNoise(4).randn('initial', [1, 1, 512]);
    const n = await noise.data();
    const exact = Array.from(n, (v) => MU + S * v);
    const errs: number[] = [];
    for (const steps of [10, 50]) {
      const model = new ToyRfModel();
      const out = await sampleRf({ model, noise, steps, sigmaMax: 500, cond: {} });
      expect(model.calls).toBe(steps);
      errs.push(maxAbsDiff(await out.data(), exact));
      out.dispose();
    }
    expect(errs[1]).toBeLessThan(errs[0] / 3);
    expect(errs[1]).toBeLessThan(0.06); // first order
    noise.dispose();
  });

  it('variation starts at init·(1 − σ_max) + noise·σ_max with σ_max = init_noise_level, capped at 1', async () => {
    const model = new ZeroModel(); // v ≡ 0 ⇒ x never moves
    const noise = tf.tensor3d([1, 2], [1, 1, 2]);
    const init = tf.tensor3d([10, 20], [1, 1, 2]);
    const out = await sampleRf({ model, noise, initData: init, steps: 3, initNoiseLevel: 0.25, cond: {} });
    Array.from(await out.data()).forEach((v, i) => expect(v).toBeCloseTo([10 * 0.75 + 0.25, 20 * 0.75 + 0.5][i], 5));
    expect(model.inputs.map((c) => c.t[0])).toEqual([0.25, Math.fround(0.25 - 0.25 / 3), Math.fround(0.25 / 3)].map((v) => expect.closeTo(v, 6)));
    out.dispose();
    const leaks = tf.memory().numTensors;
    const out2 = await sampleRf({ model: new ZeroModel(), noise, initData: init, steps: 2, initNoiseLevel: 7, cond: {} });
    Array.from(await out2.data()).forEach((v, i) => expect(v).toBeCloseTo([1, 2][i], 6)); // σ_max capped at 1 ⇒ x_0 = noise
    out2.dispose();
    expect(tf.memory().numTensors).toBe(leaks);
    tf.dispose([noise, init]);
  });
});
