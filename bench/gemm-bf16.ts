// The opt-in bf16 GEMM (AUDIOX_GEMM=bf16, AMX) against the addon's fp32 sgemm on the full-size DiT's
// products (rows = CFG batch 2 × ~300 tokens), interleaved in one run: median of each and the ratio.
//   npx tsx bench/gemm-bf16.ts [--reps 5]
import { loadBlasAddon } from '../src/backend/blas.ts';

const addon = loadBlasAddon();
if (!addon) throw new Error('the native BLAS addon is not built: npm run build:native');
if (addon.setGemmPrecision(1) !== 1) throw new Error('this CPU (or kernel) has no AMX-BF16: nothing to compare');
addon.setGemmPrecision(0);

const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 5;
// [m, k, n, transB]: DiT projections as loaded ([in, out] weights: qkv, out, SwiGLU in/out) and F.linear (weight [out, in]).
const SHAPES: [number, number, number, boolean][] = [
  [600, 1536, 4608, false],
  [600, 1536, 1536, false],
  [600, 1536, 12288, false],
  [600, 6144, 1536, false],
  [600, 1536, 1536, true],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('| m × k × n (transB) | fp32 sgemm | bf16 AMX | speed-up | GFLOP/s fp32 → bf16 |');
console.log('| --- | --- | --- | --- | --- |');
for (const [m, k, n, tb] of SHAPES) {
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i));
  const c = new Float32Array(m * n);
  const t: Record<0 | 1, number[]> = { 0: [], 1: [] };
  for (let r = 0; r <= reps; r++) {
    for (const p of [0, 1] as const) {
      addon.setGemmPrecision(p);
      const t0 = performance.now();
      addon.gemm(a, b, c, 1, m, n, k, false, tb, 0, 0);
      if (r > 0) t[p].push(performance.now() - t0); // the first round warms up
    }
  }
  addon.setGemmPrecision(0);
  const [f32, b16] = [median(t[0]), median(t[1])];
  const gf = (ms: number) => ((2 * m * k * n) / ms / 1e6).toFixed(0);
  console.log(`| ${m} × ${k} × ${n}${tb ? ' (T)' : ''} | ${f32.toFixed(1)} ms | ${b16.toFixed(1)} ms | ${(f32 / b16).toFixed(2)}× | ${gf(f32)} → ${gf(b16)} |`);
}
