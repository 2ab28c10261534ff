// Our WGSL kernels vs tfjs' stock webgpu kernels, measured in one run on the adapter Dawn finds: each
// row times both paths on the same inputs (best of N, after a warm-up that compiles the shaders) and
// reports ours/stock. `--size full` uses the DiT's shapes (for a real GPU), default `small` fits llvmpipe.
// Usage: AUDIOX_BACKEND=webgpu tsx bench/webgpu-kernels.ts [--size small|full] [--reps 3] [--json]
import * as tf from '@tensorflow/tfjs';
import { initWebgpu } from '../src/backend/webgpu.ts';
import { gemmDispatches, registerWebgpuGemm, setWebgpuGemmEnabled } from '../src/backend/webgpu-gemm.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const FULL = arg('size', 'small') === 'full';
const REPS = Number(arg('reps', '3'));

export interface KernelRow {
  kernel: string;
  shape: string;
  oursMs: number;
  stockMs: number;
  /** oursMs / stockMs: below 1 means ours is faster. */
  ratio: number;
  maxAbsDiff: number;
}

async function best(fn: () => tf.Tensor): Promise<{ ms: number; out: Float32Array }> {
  const warm = fn();
  const out = (await warm.data()) as Float32Array;
  warm.dispose();
  let ms = Infinity;
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    const y = fn();
    await y.data();
    ms = Math.min(ms, performance.now() - t0);
    y.dispose();
  }
  return { ms, out };
}

async function compare(kernel: string, shape: string, fn: () => tf.Tensor, toggle: (on: boolean) => void): Promise<KernelRow> {
  toggle(false);
  const stock = await best(fn);
  toggle(true);
  const ours = await best(fn);
  let d = 0;
  for (let i = 0; i < ours.out.length; i++) d = Math.max(d, Math.abs(ours.out[i] - stock.out[i]));
  return { kernel, shape, oursMs: ours.ms, stockMs: stock.ms, ratio: ours.ms / stock.ms, maxAbsDiff: d };
}

/** [M, K, N] of x·Wᵀ (F.linear): DiT tokens × width, the MLP, a single-row timestep MLP. */
const GEMM_SHAPES: [number, number, number][] = FULL
  ? [[474, 1536, 1536], [474, 1536, 6144], [474, 6144, 1536], [2, 256, 1536]]
  : [[128, 256, 256], [237, 512, 512], [237, 512, 2048], [2, 256, 1536]];

export async function benchWebgpuKernels(): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  registerWebgpuGemm();
  for (const [m, k, n] of GEMM_SHAPES) {
    const x = tf.randomNormal([m, k], 0, 1, 'float32', 1);
    const w = tf.randomNormal([n, k], 0, 1 / Math.sqrt(k), 'float32', 2);
    const calls = gemmDispatches();
    rows.push(await compare('gemm x·Wᵀ', `${m}x${k}x${n}`, () => tf.matMul(x, w, false, true), setWebgpuGemmEnabled));
    if (gemmDispatches() !== calls + REPS + 1) throw new Error(`gemm ${m}x${k}x${n} did not take our kernel`);
    tf.dispose([x, w]);
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const info = await initWebgpu();
  const rows = await benchWebgpuKernels();
  if (process.argv.includes('--json')) console.log(JSON.stringify({ adapter: info, rows }));
  else {
    console.log(`adapter: ${info.description} (${info.backend}, ${info.featureLevel})`);
    console.log('| kernel | shape | ours ms | tfjs ms | ours/tfjs | max abs diff |\n|---|---|---|---|---|---|');
    for (const r of rows)
      console.log(`| ${r.kernel} | ${r.shape} | ${r.oursMs.toFixed(1)} | ${r.stockMs.toFixed(1)} | ${r.ratio.toFixed(2)} | ${r.maxAbsDiff.toExponential(1)} |`);
  }
}
