// k-diffusion 0.1.1 samplers (docs/REFERENCE.md §7.2–7.5, §7.7) as functions over a denoiser D(x, σ).
// Each one walks the schedule σ_0 > … > σ_{N−1} > σ_N = 0 and returns the sample; the order of
// model calls, noise draws and callbacks is the reference's (that order is what parity needs).
// Scalar coefficients are computed in float64 (torch: float32 scalars, quirk 21; ≤ 1e-6 relative).
// The names users pick them by are in registry.ts; DPM-Solver-Fast/-adaptive are in dpm-solver.ts.
import * as tf from '@tensorflow/tfjs';
import type { DenoiseFn, VelocityFn } from './denoiser.ts';
import { addNoise, axpy, loop, needNoise, toD, withDenoised, withDerivative, type Sampler, type SamplerOptions } from './loop.ts';

export { abortError, type AdaptiveAttempt, type NoiseSampler, type Sampler, type SamplerOptions, type StepCallback, type StepInfo } from './loop.ts';

/** (σ_down, σ_up) of an ancestral step σ_from → σ_to with η = 1. */
export function ancestralStep(sigmaFrom: number, sigmaTo: number): { sigmaDown: number; sigmaUp: number } {
  const sigmaUp = Math.min(sigmaTo, Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2));
  return { sigmaDown: Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2), sigmaUp };
}

// ------------------------------------------------------------------------------------------------
// Karras-ODE samplers (s_churn = 0: deterministic)

/** Euler steps (Karras et al. 2022, Algorithm 2 with s_churn = 0). */
export const sampleEuler: Sampler = (denoise, x0, sigmas, opts = {}) =>
  loop(x0, sigmas, opts, (x, i) =>
    withDerivative(denoise, x, i, sigmas, opts, (xc, d) => axpy(xc, sigmas[i + 1] - sigmas[i], d)),
  );

/** Heun steps; the last step (σ_next = 0) is an Euler step. */
export const sampleHeun: Sampler = (denoise, x0, sigmas, opts = {}) =>
  loop(x0, sigmas, opts, (x, i) =>
    withDerivative(denoise, x, i, sigmas, opts, (xc, d) => {
      const [s, sNext] = [sigmas[i], sigmas[i + 1]];
      const x2 = axpy(xc, sNext - s, d);
      if (sNext === 0) return x2;
      const denoised2 = denoise(x2, sNext);
      const next = tf.tidy(() => xc.add(d.add(toD(x2, sNext, denoised2)).mul((sNext - s) / 2)));
      tf.dispose([x2, denoised2]);
      return next;
    }),
  );

/** DPM-Solver-2 inspired steps: a midpoint evaluation at σ_mid = √(σ_i·σ_{i+1}). */
export const sampleDpm2: Sampler = (denoise, x0, sigmas, opts = {}) =>
  loop(x0, sigmas, opts, (x, i) =>
    withDerivative(denoise, x, i, sigmas, opts, (xc, d) => {
      const [s, sNext] = [sigmas[i], sigmas[i + 1]];
      if (sNext === 0) return axpy(xc, sNext - s, d);
      const sMid = Math.exp((Math.log(s) + Math.log(sNext)) / 2);
      const x2 = axpy(xc, sMid - s, d);
      const denoised2 = denoise(x2, sMid);
      const next = tf.tidy(() => xc.add(toD(x2, sMid, denoised2).mul(sNext - s)));
      tf.dispose([x2, denoised2]);
      return next;
    }),
  );

/** ∫_{t_i}^{t_{i+1}} ℓ_j(τ) dτ, ℓ_j the Lagrange basis over t_i, t_{i−1}, …, t_{i−order+1} (float64). */
export function linearMultistepCoeff(order: number, t: number[], i: number, j: number): number {
  if (order - 1 > i) throw new Error(`Order ${order} too high for step ${i}`);
  const basis = (tau: number) => {
    let prod = 1;
    for (let k = 0; k < order; k++) if (k !== j) prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    return prod;
  };
  // 4-point Gauss–Legendre is exact for these polynomials of degree ≤ 3 (the reference's scipy
  // quad is too, to its tolerance).
  const nodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
  const weights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];
  const [half, mid] = [(t[i + 1] - t[i]) / 2, (t[i] + t[i + 1]) / 2];
  return half * nodes.reduce((acc, n, q) => acc + weights[q] * basis(mid + half * n), 0);
}

/** Linear multistep in σ over the derivatives of the last `order` steps. */
export function makeSampleLms(order = 4): Sampler {
  return (denoise, x0, sigmas, opts = {}) => {
    const ds: tf.Tensor[] = []; // newest last
    return loop(
      x0,
      sigmas,
      opts,
      (x, i) =>
        withDerivative(denoise, x, i, sigmas, opts, (xc, d) => {
          ds.push(d.clone());
          if (ds.length > order) ds.shift()!.dispose();
          const curOrder = Math.min(i + 1, order);
          const coeffs = Array.from({ length: curOrder }, (_, j) => linearMultistepCoeff(curOrder, sigmas, i, j));
          return tf.tidy(() => coeffs.reduce((acc, c, j) => acc.add(ds[ds.length - 1 - j].mul(c)), xc));
        }),
      () => ds,
    );
  };
}
/** k-diffusion's `sample_lms`: linear multistep of order 4 over the schedule (one model call per step). */
export const sampleLms: Sampler = makeSampleLms(4);

// ------------------------------------------------------------------------------------------------
// Ancestral samplers (η = 1; one noise draw per step with σ_next > 0)

/** x + (σ_to − σ)·d with d = (x − D)/σ: an Euler step from σ to σ_to. */
function eulerTo(x: tf.Tensor, sigma: number, denoised: tf.Tensor, sigmaTo: number): tf.Tensor {
  return tf.tidy(() => x.add(toD(x, sigma, denoised).mul(sigmaTo - sigma)));
}

/** An ancestral sampler: `toDown` moves x from σ_i to σ_down, then σ_up of fresh noise is added. */
function ancestral(
  name: string,
  toDown: (denoise: DenoiseFn, xc: tf.Tensor, denoised: tf.Tensor, sigma: number, sigmaDown: number) => tf.Tensor,
): Sampler {
  return async (denoise, x0, sigmas, opts = {}) => {
    const noise = needNoise(opts, name);
    return loop(x0, sigmas, opts, (x, i) =>
      withDenoised(denoise, x, i, sigmas, opts, (xc, denoised) => {
        const [s, sNext] = [sigmas[i], sigmas[i + 1]];
        const { sigmaDown, sigmaUp } = ancestralStep(s, sNext);
        const next = toDown(denoise, xc, denoised, s, sigmaDown);
        return sNext > 0 ? addNoise(next, noise, s, sNext, sigmaUp) : next;
      }),
    );
  };
}

/** Euler steps to σ_down, then σ_up of fresh noise. */
export const sampleEulerAncestral: Sampler = ancestral('k-euler-ancestral', (_, xc, denoised, s, sigmaDown) =>
  eulerTo(xc, s, denoised, sigmaDown),
);

/** DPM-Solver++(2S) ancestral: a single-step second-order update to σ_down in log-σ time. */
export const sampleDpmpp2sAncestral: Sampler = ancestral('k-dpmpp-2s-ancestral', (denoise, xc, denoised, s, sigmaDown) => {
  if (sigmaDown === 0) return eulerTo(xc, s, denoised, sigmaDown);
  const h = Math.log(s) - Math.log(sigmaDown);
  const sMid = Math.exp(Math.log(s) - h / 2);
  const x2 = tf.tidy(() => xc.mul(sMid / s).sub(denoised.mul(Math.expm1(-h / 2))));
  const denoised2 = denoise(x2, sMid);
  const next = tf.tidy(() => xc.mul(sigmaDown / s).sub(denoised2.mul(Math.expm1(-h))));
  tf.dispose([x2, denoised2]);
  return next;
});

// ------------------------------------------------------------------------------------------------
// DPM-Solver++ multistep samplers (h = ln σ_i − ln σ_{i+1}; the last step returns D)

/** The previous steps' denoised estimates and step sizes h, newest first. */
interface History {
  ds: tf.Tensor[];
  hs: number[];
}

/**
 * The multistep loop: keeps the last `depth` denoised estimates (and their h), returns D on the last
 * step (σ_next = 0) and otherwise `update(x, D, σ_i, σ_{i+1}, h, history before this step)`.
 */
function multistep(
  denoise: DenoiseFn,
  x0: tf.Tensor,
  sigmas: number[],
  opts: SamplerOptions,
  depth: number,
  update: (xc: tf.Tensor, denoised: tf.Tensor, s: number, sNext: number, h: number, prev: History) => tf.Tensor,
): Promise<tf.Tensor> {
  const history: History = { ds: [], hs: [] };
  return loop(
    x0,
    sigmas,
    opts,
    (x, i) =>
      withDenoised(denoise, x, i, sigmas, opts, (xc, denoised) => {
        const [s, sNext] = [sigmas[i], sigmas[i + 1]];
        const prev: History = { ds: history.ds.slice(), hs: history.hs.slice() };
        history.ds.unshift(denoised.clone());
        const dropped = history.ds.length > depth ? history.ds.pop() : undefined;
        try {
          if (sNext === 0) return denoised.clone();
          const h = Math.log(s) - Math.log(sNext);
          history.hs = [h, ...history.hs].slice(0, depth);
          return update(xc, denoised, s, sNext, h, prev);
        } finally {
          dropped?.dispose();
        }
      }),
    () => history.ds,
  );
}

/** DPM-Solver++(2M), deterministic. */
export const sampleDpmpp2m: Sampler = (denoise, x0, sigmas, opts = {}) =>
  multistep(denoise, x0, sigmas, opts, 1, (xc, denoised, s, sNext, h, { ds: [p1], hs: [h1] }) =>
    tf.tidy(() => {
      let dD = denoised;
      if (p1) {
        const r = h1 / h;
        dD = denoised.mul(1 + 1 / (2 * r)).sub(p1.mul(1 / (2 * r)));
      }
      return xc.mul(sNext / s).sub(dD.mul(Math.expm1(-h)));
    }),
  );

/** DPM-Solver++(2M) SDE, η = 1, midpoint solver (docs/REFERENCE.md §7.5). */
export const sampleDpmpp2mSde: Sampler = async (denoise, x0, sigmas, opts = {}) => {
  const noise = needNoise(opts, 'dpmpp-2m-sde');
  return multistep(denoise, x0, sigmas, opts, 1, (xc, denoised, s, sNext, h, { ds: [p1], hs: [h1] }) => {
    const oneMinusE2h = -Math.expm1(-2 * h); // 1 − e^{−2h} = −expm1(−h − ηh)
    const det = tf.tidy(() => {
      const y = xc.mul((sNext / s) * Math.exp(-h)).add(denoised.mul(oneMinusE2h));
      return p1 ? y.add(denoised.sub(p1).mul((0.5 * oneMinusE2h) / (h1 / h))) : y;
    });
    return addNoise(det, noise, s, sNext, sNext * Math.sqrt(oneMinusE2h));
  });
};

/** DPM-Solver++(3M) SDE, η = 1 (docs/REFERENCE.md §7.4) — the default sampler of the shipped front-ends. */
export const sampleDpmpp3mSde: Sampler = async (denoise, x0, sigmas, opts = {}) => {
  const noise = needNoise(opts, 'dpmpp-3m-sde');
  return multistep(denoise, x0, sigmas, opts, 2, (xc, denoised, s, sNext, h, { ds: [p1, p2], hs: [h1, h2] }) => {
    const hEta = 2 * h; // h·(η + 1)
    const phi2 = Math.expm1(-hEta) / hEta + 1;
    const phi3 = phi2 / hEta - 0.5;
    const det = tf.tidy(() => {
      const y = xc.mul(Math.exp(-hEta)).add(denoised.mul(-Math.expm1(-hEta)));
      if (!p1) return y;
      const r0 = h1 / h;
      const d10 = denoised.sub(p1).div(r0);
      if (!p2) return y.add(d10.mul(phi2));
      const r1 = h2 / h;
      const d11 = p1.sub(p2).div(r1);
      const D1 = d10.add(d10.sub(d11).mul(r0 / (r0 + r1)));
      const D2 = d10.sub(d11).div(r0 + r1);
      return y.add(D1.mul(phi2)).sub(D2.mul(phi3));
    });
    return addNoise(det, noise, s, sNext, sNext * Math.sqrt(-Math.expm1(-2 * h)));
  });
};

// ------------------------------------------------------------------------------------------------
// Rectified flow

/**
 * `sample_discrete_euler`: x ← x + (t_{k+1} − t_k)·v(x, t_k) over the timesteps `ts` (from
 * `rectifiedFlowTimesteps`). The callback gets σ = t_k and the clean estimate x − t_k·v as `denoised`.
 */
export async function sampleDiscreteEuler(
  velocity: VelocityFn,
  x0: tf.Tensor,
  ts: number[],
  opts: Omit<SamplerOptions, 'noiseSampler'> = {},
): Promise<tf.Tensor> {
  return loop(x0, ts, opts, async (x, k) => {
    const v = velocity(x, ts[k]);
    try {
      if (opts.callback) {
        const denoised = tf.tidy(() => x.sub(v.mul(ts[k])));
        try {
          const out = await opts.callback({ i: k, x, sigma: ts[k], sigmaHat: ts[k], denoised });
          if (out instanceof tf.Tensor) {
            if (out !== x) out.dispose();
            throw new Error('sampleDiscreteEuler: the callback cannot replace x');
          }
        } finally {
          denoised.dispose();
        }
      }
      return axpy(x, ts[k + 1] - ts[k], v);
    } finally {
      v.dispose();
    }
  });
}
