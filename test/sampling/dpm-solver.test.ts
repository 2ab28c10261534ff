// DPM-Solver-Fast and -adaptive (k-dpm-fast, k-dpm-adaptive): nodes, orders and the PID step control
// against the reference fixtures, accuracy on the Gaussian toy problem, progress through sampleK,
// callbacks that replace x, cancellation, bad input, and no leaked tensors.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import type { DenoiseFn } from '../../src/sampling/denoiser.ts';
import { dpmFastOrders, dpmSigma, dpmT, PidStepController, sampleDpmAdaptive, sampleDpmFast } from '../../src/sampling/dpm-solver.ts';
import { SeededNoise } from '../../src/nn/noise.ts';
import { sampleK, type SampleProgress } from '../../src/sampling/sample.ts';
import type { StepInfo } from '../../src/sampling/loop.ts';
import { linspaceF32 } from '../../src/sampling/schedule.ts';
import { FIXTURES } from '../helpers.ts';
import { exactOde, gaussianDenoiser, maxAbsDiff, ToyVModel } from './toy.ts';

const fastFixture = path.join(FIXTURES, 'sampler', 'k_dpm_fast.safetensors');
const adaptiveFixture = path.join(FIXTURES, 'sampler', 'k_dpm_adaptive.safetensors');

function readHost(file: string, names: string[]): number[][] {
  const st = SafetensorsFile.open(file);
  try {
    return names.map((n) => Array.from(st.readHost(`intermediates/${n}`).data, Number));
  } finally {
    st.close();
  }
}

/** A denoiser that counts its calls. */
function counted(d: DenoiseFn): { denoise: DenoiseFn; calls: () => number } {
  let n = 0;
  return { denoise: (x, s) => (n++, d(x, s)), calls: () => n };
}

describe('k-dpm-fast', () => {
  it('orders: DPM-Solver-3 steps, lower orders at the end, summing to the model-call budget', () => {
    expect(dpmFastOrders(8)).toEqual([3, 3, 2]);
    expect(dpmFastOrders(6)).toEqual([3, 2, 1]);
    expect(dpmFastOrders(3)).toEqual([2, 1]);
    expect(dpmFastOrders(2)).toEqual([2]);
    expect(dpmFastOrders(1)).toEqual([1]);
    for (let n = 1; n <= 40; n++) expect(dpmFastOrders(n).reduce((a, b) => a + b, 0)).toBe(n);
    expect(() => dpmFastOrders(0)).toThrow(/positive integer/);
    expect(() => dpmFastOrders(2.5)).toThrow(/positive integer/);
  });

  it("nodes t = −ln σ and the callbacks' σ are the reference's, bit for bit", async () => {
    const [ts, ...sigmas] = readHost(fastFixture, ['dpm_ts', 'sigma.0', 'sigma.1', 'sigma.2']);
    expect(linspaceF32(dpmT(500), dpmT(0.3), 4)).toEqual(ts);
    const seen: number[] = [];
    const x0 = tf.ones([1, 1, 4]);
    const out = await sampleDpmFast(gaussianDenoiser, x0, 0.3, 500, 8, { callback: ({ sigma }) => void seen.push(sigma) });
    expect(seen).toEqual(sigmas.map((s) => s[0]));
    tf.dispose([x0, out]);
  });

  it('solves the probability-flow ODE to σ_min (not to 0), error shrinking with the budget; nfe model calls', async () => {
    const noise = new SeededNoise(2).randn('initial', [1, 1, 256]);
    const x0 = noise.mul(80);
    const x0h = (await x0.data()) as Float32Array;
    const exact = exactOde(x0h, 80, 0.05); // σ_min = 0.05 is far from 0 for s = 0.5: the end point matters
    const errs: number[] = [];
    for (const nfe of [6, 24]) {
      const c = counted(gaussianDenoiser);
      const out = await sampleDpmFast(c.denoise, x0, 0.05, 80, nfe);
      expect(c.calls()).toBe(nfe);
      errs.push(maxAbsDiff(await out.data(), exact));
      out.dispose();
    }
    expect(errs[1]).toBeLessThan(errs[0] / 4);
    expect(errs[1]).toBeLessThan(2e-3);
    expect(maxAbsDiff(exact, exactOde(x0h, 80, 0))).toBeGreaterThan(1e-3); // so σ_min vs 0 is told apart
    tf.dispose([noise, x0]);
  });
});

describe('PID step-size controller', () => {
  it('factor 1 + atan((1/(err + 1e-8))^(1/order) − 1); accepted iff ≥ 0.81; h scaled on rejection too', () => {
    const pid = new PidStepController(0.05, 0, 1, 0, 3);
    expect(pid.propose(1)).toBe(true); // factor 1 + atan(≈0) ≈ 1
    expect(pid.h).toBeCloseTo(0.05, 7);
    const f = 1 + Math.atan((1 / (8 + 1e-8)) ** (1 / 3) - 1); // 1 + atan(−0.5) ≈ 0.536
    expect(pid.propose(8)).toBe(false);
    expect(pid.h).toBeCloseTo(0.05 * f, 7);
    // the threshold: 1 + atan(y − 1) = 0.81 ⇔ y = 1 − tan(0.19)
    const edge = 1 / (1 - Math.tan(0.19)) ** 3 - 1e-8;
    expect(new PidStepController(1, 0, 1, 0, 3).propose(edge * 0.999)).toBe(true);
    expect(new PidStepController(1, 0, 1, 0, 3).propose(edge * 1.001)).toBe(false);
  });

  it("fed the reference's errors it takes the reference's decisions and step sizes", () => {
    const [errors, accept, hs] = readHost(adaptiveFixture, ['adaptive_error', 'adaptive_accept', 'adaptive_h']);
    const pid = new PidStepController(0.05, 0, 1, 0, 3);
    errors.forEach((e, i) => {
      expect(pid.propose(e), `attempt ${i}`).toBe(accept[i] === 1);
      expect(pid.h).toBeCloseTo(hs[i], 5);
    });
  });
});

describe('k-dpm-adaptive', () => {
  it('reaches σ_min accurately; every attempt reported with its decision; 3 model calls per attempt', async () => {
    const noise = new SeededNoise(3).randn('initial', [1, 2, 128]);
    const x0 = noise.mul(80);
    const exact = exactOde((await x0.data()) as Float32Array, 80, 0.05);
    const c = counted(gaussianDenoiser);
    const infos: Omit<StepInfo, 'x' | 'denoised'>[] = [];
    const out = await sampleDpmAdaptive(c.denoise, x0, 0.05, 80, {
      rtol: 1e-3,
      atol: 1e-3,
      callback: ({ x: _x, denoised: _d, ...rest }) => void infos.push(rest),
    });
    expect(maxAbsDiff(await out.data(), exact)).toBeLessThan(0.01); // ≈ 5·tol here
    const attempts = infos.map((i) => i.attempt!);
    expect(infos.map((i) => i.i)).toEqual(infos.map((_, k) => k));
    expect(infos.every((i) => i.steps === null)).toBe(true);
    expect(c.calls()).toBe(3 * infos.length);
    expect(attempts.at(-1)).toMatchObject({ modelCalls: c.calls(), accepts: attempts.filter((a) => a.accepted).length });
    expect(attempts.at(-1)!.rejects).toBe(attempts.filter((a) => !a.accepted).length);
    expect(attempts.at(-1)!.t).toBeCloseTo(dpmT(0.05), 5);
    expect(infos.at(-1)!.fraction).toBe(1);
    expect(infos.at(-1)!.sigma).toBeCloseTo(0.05, 5);
    const fr = infos.map((i) => i.fraction!);
    expect(fr.every((f, k) => f >= 0 && f <= 1 && (k === 0 || f >= fr[k - 1]))).toBe(true);
    // a rejected attempt does not move t
    attempts.forEach((a, k) => !a.accepted && expect(a.t).toBe(k === 0 ? dpmT(80) : attempts[k - 1].t));
    tf.dispose([noise, x0, out]);
  });

  it('a tighter tolerance takes more attempts', async () => {
    const x0 = new SeededNoise(4).randn('initial', [1, 1, 64]).mul(20);
    const count = async (rtol: number) => {
      const c = counted(gaussianDenoiser);
      (await sampleDpmAdaptive(c.denoise, x0, 0.1, 20, { rtol, atol: rtol })).dispose();
      return c.calls();
    };
    expect(await count(0.001)).toBeGreaterThan(await count(0.05));
    x0.dispose();
  });

  it('bad input is a clear error, not an endless loop', async () => {
    const x0 = tf.ones([1, 1, 4]);
    await expect(sampleDpmAdaptive(gaussianDenoiser, x0, 0, 10)).rejects.toThrow(/sigma_min and sigma_max must be > 0/);
    await expect(sampleDpmAdaptive(gaussianDenoiser, x0, 10, 1)).rejects.toThrow(/sigma_min \(10\) must be smaller than sigma_max \(1\)/);
    await expect(sampleDpmAdaptive(gaussianDenoiser, x0, 1, 10, { order: 4 as 3 })).rejects.toThrow(/order must be 2 or 3/);
    await expect(sampleDpmFast(gaussianDenoiser, x0, -1, 10, 4)).rejects.toThrow(/sigma_min and sigma_max must be > 0/);
    const before = tf.memory().numTensors;
    const nan: DenoiseFn = (x) => tf.fill(x.shape, NaN);
    await expect(sampleDpmAdaptive(nan, x0, 1, 10)).rejects.toThrow(/error estimate is NaN/);
    expect(tf.memory().numTensors).toBe(before);
    x0.dispose();
  });
});

describe('both through sampleK', () => {
  const base = { sigmaMin: 0.3, sigmaMax: 50, rho: 1, cond: {}, steps: 8 };

  it('progress: k-dpm-fast reports its 3 DPM steps of 8 model calls; k-dpm-adaptive reports attempts with steps null', async () => {
    const noise = new SeededNoise(6).randn('initial', [1, 2, 16]);
    const fast: SampleProgress[] = [];
    const m1 = new ToyVModel();
    const keep = ({ denoised: _d, ...p }: SampleProgress) => void fast.push(p as SampleProgress);
    (await sampleK({ ...base, model: m1, noise, samplerType: 'k-dpm-fast', noiseSource: new SeededNoise(1), onProgress: keep })).dispose();
    expect(m1.calls).toBe(8);
    expect(fast.map((p) => [p.step, p.steps, p.fraction])).toEqual([[0, 3, 1 / 3], [1, 3, 2 / 3], [2, 3, 1]]);
    expect(fast[0].sigma).toBe(dpmSigma(dpmT(50)));

    const adaptive: SampleProgress[] = [];
    const m2 = new ToyVModel();
    const out = await sampleK({
      ...base, model: m2, noise, samplerType: 'k-dpm-adaptive', noiseSource: new SeededNoise(1),
      onProgress: ({ denoised: _d, ...p }) => void adaptive.push(p as SampleProgress),
    });
    out.dispose();
    expect(adaptive.length).toBeGreaterThan(3);
    expect(adaptive.every((p) => p.steps === null && p.attempt !== undefined)).toBe(true);
    expect(adaptive.at(-1)!.fraction).toBe(1);
    expect(m2.calls).toBe(3 * adaptive.length);
    noise.dispose();
  });

  it.each(['k-dpm-fast', 'k-dpm-adaptive'])('%s: cancellation between steps stops the model and leaks nothing', async (samplerType) => {
    const noise = tf.randomNormal([1, 2, 16]);
    const before = tf.memory().numTensors;
    const model = new ToyVModel();
    const ac = new AbortController();
    const run = sampleK({
      ...base, steps: 30, model, noise, samplerType, noiseSource: new SeededNoise(1), signal: ac.signal,
      onProgress: ({ step }) => void (step === 1 && ac.abort()),
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(model.calls).toBe(6); // two steps (attempts) of 3 model calls; the third never started
    expect(tf.memory().numTensors).toBe(before);
    noise.dispose();
  });

  it.each(['k-dpm-fast', 'k-dpm-adaptive'])('%s: inpainting (a callback replacing x) runs and leaks nothing', async (samplerType) => {
    const noise = tf.randomNormal([1, 2, 16]);
    const init = tf.randomNormal([1, 2, 16]);
    const mask = tf.linspace(0, 1, 16);
    const before = tf.memory().numTensors;
    const out = await sampleK({ ...base, model: new ToyVModel(), noise, initData: init, mask, samplerType, noiseSource: new SeededNoise(2), onProgress: () => {} });
    expect(Array.from(await out.data()).every(Number.isFinite)).toBe(true);
    out.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([noise, init, mask]);
  });
});
