// Noise-level schedules (docs/REFERENCE.md §7.3, §7.7). The reference builds them as float32 tensors on the
// device (quirk 21), so every value here is rounded to float32 exactly where torch rounds: the
// sampler's end test `σ_{i+1} == 0` and the model's timesteps then see the same numbers.
const f32 = Math.fround;

/** torch.linspace(start, end, n) in float32 (CPU kernel: the second half is computed from the end). */
export function linspaceF32(start: number, end: number, n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`linspace: n must be a positive integer, got ${n}`);
  if (n === 1) return [f32(start)];
  const a = f32(start);
  const b = f32(end);
  const step = f32((b - a) / (n - 1));
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? f32(a + f32(step * i)) : f32(b - f32(step * (n - 1 - i)))));
}

/**
 * k-diffusion `get_sigmas_polyexponential`: a polynomial (degree ρ) in log σ from σ_max down to
 * σ_min over `n` levels, then a trailing 0 — `n + 1` values (ρ = 1 ⇒ geometric).
 */
export function polyexponentialSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 1): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`steps must be a positive integer, got ${n}`);
  if (!(sigmaMin > 0) || !(sigmaMax > 0)) throw new Error(`sigma_min and sigma_max must be > 0, got ${sigmaMin}, ${sigmaMax}`);
  if (!(rho > 0)) throw new Error(`rho must be > 0, got ${rho}`);
  const span = f32(Math.log(sigmaMax) - Math.log(sigmaMin));
  const logMin = f32(Math.log(sigmaMin));
  const sigmas = linspaceF32(1, 0, n).map((r) => f32(Math.exp(f32(f32(f32(r ** rho) * span) + logMin))));
  return [...sigmas, 0];
}

/** Rectified-flow timesteps of `sample_discrete_euler`: linspace(min(σ_max, 1), 0, steps + 1). */
export function rectifiedFlowTimesteps(steps: number, sigmaMax = 1): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (!(sigmaMax > 0)) throw new Error(`sigma_max must be > 0, got ${sigmaMax}`);
  return linspaceF32(Math.min(sigmaMax, 1), 0, steps + 1);
}
