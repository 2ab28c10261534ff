// DPM-Solver (Lu et al. 2022) as k-diffusion 0.1.1 runs it (`DPMSolver`, `sample_dpm_fast`,
// `sample_dpm_adaptive`), with η = 0. It works in t = −ln σ between σ_max and σ_min (no final jump
// to σ = 0) with ε(x, t) = (x − D(x, σ(t)))/σ(t). The reference keeps t, h and σ(t) as float32
// tensors, so those scalars are rounded to float32 where torch rounds them: the adaptive sampler's
// accept/reject decisions and the fast sampler's nodes then see the same numbers.
import * as tf from '@tensorflow/tfjs';
import type { DenoiseFn } from './denoiser.ts';
import { checkpoint, report, type AdaptiveAttempt, type SamplerOptions } from './loop.ts';
import { linspaceF32 } from './schedule.ts';

const f32 = Math.fround;

/** σ(t) = e^{−t} (float32). */
export function dpmSigma(t: number): number {
  return f32(Math.exp(-t));
}

/** t(σ) = −ln σ of a float32 σ (float32). */
export function dpmT(sigma: number): number {
  return f32(-Math.log(f32(sigma)));
}

/** The ε evaluations of one step by node, each computed at most once (k-diffusion's `eps_cache`). */
class EpsCache {
  private readonly eps = new Map<string, tf.Tensor>();
  calls = 0;
  constructor(private readonly denoise: DenoiseFn) {}

  /** ε at node `key` (time t); `input` builds the model input only when the node is not cached yet. */
  get(key: string, t: number, input: () => tf.Tensor): tf.Tensor {
    const hit = this.eps.get(key);
    if (hit) return hit;
    const x = input();
    try {
      const { eps, denoised } = this.evaluate(x, t);
      denoised.dispose();
      this.eps.set(key, eps);
      return eps;
    } finally {
      x.dispose();
    }
  }

  /** The first node: ε and D at (x, t); ε is cached under "eps", D is the caller's. */
  first(x: tf.Tensor, t: number): tf.Tensor {
    const { eps, denoised } = this.evaluate(x, t);
    this.eps.set('eps', eps);
    return denoised;
  }

  private evaluate(x: tf.Tensor, t: number): { eps: tf.Tensor; denoised: tf.Tensor } {
    const sigma = dpmSigma(t);
    const denoised = this.denoise(x, sigma);
    this.calls++;
    return { eps: tf.tidy(() => x.sub(denoised).div(sigma)), denoised };
  }

  dispose(): void {
    for (const e of this.eps.values()) e.dispose();
    this.eps.clear();
  }
}

/** x − a·e (tidy). */
function xMinus(x: tf.Tensor, a: number, e: tf.Tensor): tf.Tensor {
  return tf.tidy(() => x.sub(e.mul(a)));
}

/** DPM-Solver-1 from t to tNext (needs the "eps" node). */
function dpmSolver1(cache: EpsCache, x: tf.Tensor, t: number, tNext: number): tf.Tensor {
  const h = f32(tNext - t);
  const eps = cache.get('eps', t, () => x.clone());
  return xMinus(x, f32(dpmSigma(tNext) * f32(Math.expm1(h))), eps);
}

/** DPM-Solver-2 with an intermediate node at t + r1·h. */
function dpmSolver2(cache: EpsCache, x: tf.Tensor, t: number, tNext: number, r1 = 1 / 2): tf.Tensor {
  const h = f32(tNext - t);
  const eps = cache.get('eps', t, () => x.clone());
  const r1h = f32(f32(r1) * h);
  const s1 = f32(t + r1h);
  const epsR1 = cache.get('eps_r1', s1, () => xMinus(x, f32(dpmSigma(s1) * f32(Math.expm1(r1h))), eps));
  const sNext = dpmSigma(tNext);
  const e = f32(Math.expm1(h));
  return tf.tidy(() => x.sub(eps.mul(f32(sNext * e))).sub(epsR1.sub(eps).mul(f32(f32(sNext / f32(2 * r1)) * e))));
}

/** DPM-Solver-3 with intermediate nodes at t + r1·h and t + r2·h. */
function dpmSolver3(cache: EpsCache, x: tf.Tensor, t: number, tNext: number, r1 = 1 / 3, r2 = 2 / 3): tf.Tensor {
  const h = f32(tNext - t);
  const eps = cache.get('eps', t, () => x.clone());
  const r1h = f32(f32(r1) * h);
  const r2h = f32(f32(r2) * h);
  const s1 = f32(t + r1h);
  const s2 = f32(t + r2h);
  const epsR1 = cache.get('eps_r1', s1, () => xMinus(x, f32(dpmSigma(s1) * f32(Math.expm1(r1h))), eps));
  const epsR2 = cache.get('eps_r2', s2, () =>
    tf.tidy(() => {
      const sig2 = dpmSigma(s2);
      const e2 = f32(Math.expm1(r2h));
      const phi = f32(f32(e2 / r2h) - 1);
      return x.sub(eps.mul(f32(sig2 * e2))).sub(epsR1.sub(eps).mul(f32(f32(sig2 * f32(r2 / r1)) * phi)));
    }),
  );
  const sNext = dpmSigma(tNext);
  const e = f32(Math.expm1(h));
  const phi = f32(f32(e / h) - 1);
  return tf.tidy(() => x.sub(eps.mul(f32(sNext * e))).sub(epsR2.sub(eps).mul(f32(f32(sNext / f32(r2)) * phi))));
}

const SOLVERS = { 1: dpmSolver1, 2: dpmSolver2, 3: dpmSolver3 } as const;

function checkRange(name: string, sigmaMin: number, sigmaMax: number): void {
  if (!(sigmaMin > 0) || !(sigmaMax > 0)) throw new Error(`${name}: sigma_min and sigma_max must be > 0, got ${sigmaMin}, ${sigmaMax}`);
}

/** The orders of DPM-Solver-Fast's steps for a budget of `nfe` model calls (they sum to nfe). */
export function dpmFastOrders(nfe: number): (1 | 2 | 3)[] {
  if (!Number.isInteger(nfe) || nfe < 1) throw new Error(`k-dpm-fast: steps (model calls) must be a positive integer, got ${nfe}`);
  const m = Math.floor(nfe / 3) + 1;
  const threes = Array.from({ length: nfe % 3 === 0 ? m - 2 : m - 1 }, () => 3 as const);
  return nfe % 3 === 0 ? [...threes, 2, 1] : [...threes, (nfe % 3) as 1 | 2];
}

/**
 * `sample_dpm_fast` (η = 0): DPM-Solver-3 steps (lower orders at the end) on m + 1 nodes evenly spaced
 * in t from σ_max to σ_min, `nfe` model calls in all. Ends at σ_min: the result is not denoised at σ = 0.
 * The callback runs once per step after its first evaluation (it may replace x; ε stays the one of
 * the x the model saw). `x0` is not consumed.
 */
export async function sampleDpmFast(
  denoise: DenoiseFn,
  x0: tf.Tensor,
  sigmaMin: number,
  sigmaMax: number,
  nfe: number,
  opts: SamplerOptions = {},
): Promise<tf.Tensor> {
  checkRange('k-dpm-fast', sigmaMin, sigmaMax);
  const orders = dpmFastOrders(nfe);
  const ts = linspaceF32(dpmT(sigmaMax), dpmT(sigmaMin), Math.floor(nfe / 3) + 2);
  let x = x0.clone();
  try {
    for (let i = 0; i < orders.length; i++) {
      await checkpoint(opts.signal);
      const cache = new EpsCache(denoise);
      let xc = x;
      try {
        const denoised = cache.first(x, ts[i]);
        try {
          const sigma = dpmSigma(ts[i]);
          xc = await report(opts, { i, x, sigma, sigmaHat: sigma, denoised, steps: orders.length });
        } finally {
          denoised.dispose();
        }
        const next = SOLVERS[orders[i]](cache, xc, ts[i], ts[i + 1]);
        if (xc !== x) xc.dispose();
        x.dispose();
        x = next;
      } catch (e) {
        if (xc !== x) xc.dispose();
        throw e;
      } finally {
        cache.dispose();
      }
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  }
}

/** Options of the adaptive DPM-Solver (k-diffusion's `sample_dpm_adaptive`; defaults are its). */
export interface DpmAdaptiveOptions extends SamplerOptions {
  /** 2: DPM-Solver-1/2 pair, 3 (default): DPM-Solver-2/3 pair. */
  order?: 2 | 3;
  /** Relative error tolerance per step (default 0.05). */
  rtol?: number;
  /** Absolute error tolerance per step (default 0.0078). */
  atol?: number;
  /** First step size in t (default 0.05). */
  hInit?: number;
  /** PID controller: proportional coefficient (default 0). */
  pcoeff?: number;
  /** PID controller: integral coefficient (default 1). */
  icoeff?: number;
  /** PID controller: derivative coefficient (default 0). */
  dcoeff?: number;
  /** An attempt is accepted when the proposed step factor is at least this (default 0.81). */
  acceptSafety?: number;
}

/** k-diffusion's `PIDStepSizeController`: proposes the next h from the error history. */
export class PidStepController {
  private readonly b1: number;
  private readonly b2: number;
  private readonly b3: number;
  private errs: number[] = [];

  /**
   * @param h The current step size in t = −ln σ (updated by `propose`).
   * @param pcoeff Proportional coefficient.
   * @param icoeff Integral coefficient.
   * @param dcoeff Derivative coefficient.
   * @param order The solver's order (scales the coefficients).
   */
  constructor(
    public h: number,
    pcoeff: number,
    icoeff: number,
    dcoeff: number,
    order: number,
    private readonly acceptSafety = 0.81,
    private readonly eps = 1e-8,
  ) {
    this.b1 = (pcoeff + icoeff + dcoeff) / order;
    this.b2 = -(pcoeff + 2 * dcoeff) / order;
    this.b3 = dcoeff / order;
  }

  /** Scales h by the limited factor (on rejection too) and says whether the attempt is accepted. */
  propose(error: number): boolean {
    const inv = 1 / (error + this.eps);
    if (this.errs.length === 0) this.errs = [inv, inv, inv];
    this.errs[0] = inv;
    const raw = this.errs[0] ** this.b1 * this.errs[1] ** this.b2 * this.errs[2] ** this.b3;
    const factor = 1 + Math.atan(raw - 1);
    const accept = factor >= this.acceptSafety;
    if (accept) this.errs = [this.errs[0], this.errs[0], this.errs[1]];
    this.h *= factor;
    return accept;
  }
}

/** ‖(x_low − x_high)/δ‖₂ / √numel with δ = max(atol, rtol·max(|x_low|, |x_prev|)). */
async function embeddedError(xLow: tf.Tensor, xHigh: tf.Tensor, xPrev: tf.Tensor, atol: number, rtol: number): Promise<number> {
  const e = tf.tidy(() => {
    const delta = tf.maximum(tf.scalar(f32(atol)), tf.maximum(xLow.abs(), xPrev.abs()).mul(f32(rtol)));
    return tf.norm(xLow.sub(xHigh).div(delta)).div(f32(Math.sqrt(xLow.size)));
  });
  try {
    return (await e.data())[0];
  } finally {
    e.dispose();
  }
}

/**
 * `sample_dpm_adaptive` (η = 0): embedded DPM-Solver pairs from σ_max to σ_min with PID step-size
 * control; each attempt costs `order` model calls and is accepted iff the controller's factor ≥
 * acceptSafety. The callback runs after every attempt (accepted or not) with its `attempt` record,
 * σ after the attempt and the attempt's first D; `steps` is null (not known in advance). A
 * replacement x from the callback carries on into the next attempt. `x0` is not consumed.
 */
export async function sampleDpmAdaptive(
  denoise: DenoiseFn,
  x0: tf.Tensor,
  sigmaMin: number,
  sigmaMax: number,
  opts: DpmAdaptiveOptions = {},
): Promise<tf.Tensor> {
  checkRange('k-dpm-adaptive', sigmaMin, sigmaMax);
  const { order = 3, rtol = 0.05, atol = 0.0078, hInit = 0.05, pcoeff = 0, icoeff = 1, dcoeff = 0, acceptSafety = 0.81 } = opts;
  if (order !== 2 && order !== 3) throw new Error(`k-dpm-adaptive: order must be 2 or 3, got ${order}`);
  const tStart = dpmT(sigmaMax);
  const tEnd = dpmT(sigmaMin);
  if (!(tEnd > tStart)) throw new Error(`k-dpm-adaptive: sigma_min (${sigmaMin}) must be smaller than sigma_max (${sigmaMax})`);
  const stop = f32(tEnd - f32(1e-5));
  const pid = new PidStepController(Math.abs(hInit), pcoeff, icoeff, dcoeff, order, acceptSafety);
  const [low, high] = order === 2 ? [dpmSolver1, dpmSolver2] : [(c: EpsCache, x: tf.Tensor, a: number, b: number) => dpmSolver2(c, x, a, b, 1 / 3), dpmSolver3];

  let x = x0.clone();
  // Until the first accepted step, x_prev is x itself (the reference aliases them, so an in-place
  // callback write changes both).
  let xPrev = x;
  let s = tStart;
  const record = { accepts: 0, rejects: 0, modelCalls: 0 };
  try {
    for (let i = 0; s < stop; i++) {
      await checkpoint(opts.signal);
      const t = Math.min(tEnd, f32(s + f32(pid.h)));
      const cache = new EpsCache(denoise);
      let denoised: tf.Tensor | null = null;
      try {
        denoised = cache.first(x, s);
        let xLow: tf.Tensor | null = null;
        let xHigh: tf.Tensor | null = null;
        let error: number;
        try {
          xLow = low(cache, x, s, t);
          xHigh = high(cache, x, s, t);
          error = await embeddedError(xLow, xHigh, xPrev, atol, rtol);
          // A NaN would be rejected forever (h becomes NaN): stop instead.
          if (!Number.isFinite(error)) throw new Error(`k-dpm-adaptive: the error estimate is ${error} at σ = ${dpmSigma(s)} (non-finite model output?)`);
        } catch (e) {
          tf.dispose([xLow, xHigh].filter((v): v is tf.Tensor => v !== null));
          throw e;
        }
        record.modelCalls += cache.calls;
        const accepted = pid.propose(error);
        if (accepted) {
          if (xPrev !== x) xPrev.dispose();
          x.dispose();
          [xPrev, x, s] = [xLow!, xHigh!, t];
          record.accepts++;
        } else {
          tf.dispose([xLow, xHigh]);
          record.rejects++;
        }
        const done = !(s < stop);
        const sigma = dpmSigma(s);
        const fraction = done ? 1 : Math.min(1, Math.max(0, (s - tStart) / (tEnd - tStart)));
        const attempt: AdaptiveAttempt = { accepted, error, h: pid.h, t: s, ...record };
        const out = await report(opts, { i, x, sigma, sigmaHat: sigma, denoised, steps: null, fraction, attempt });
        if (out !== x) {
          if (xPrev === x) xPrev = out;
          x.dispose();
          x = out;
        }
      } finally {
        denoised?.dispose();
        cache.dispose();
      }
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    if (xPrev !== x) xPrev.dispose();
  }
}
