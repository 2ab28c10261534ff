// Our WGSL kernels vs tfjs' stock webgpu kernels, measured in one run on the adapter Dawn finds: each
// row times both paths on the same inputs (best of N, after a warm-up that compiles the shaders) and
// reports ours/stock. `--size full` uses the DiT's shapes (for a real GPU), default `small` fits llvmpipe.
// Usage: AUDIOX_BACKEND=webgpu tsx bench/webgpu-kernels.ts [--size small|full] [--reps 3] [--json]
import * as tf from '@tensorflow/tfjs';
import { initWebgpu } from '../src/backend/webgpu.ts';
import { attentionDispatches, registerWebgpuAttention } from '../src/backend/webgpu-attention.ts';
import { gemmDispatches, registerWebgpuGemm, setWebgpuGemmEnabled } from '../src/backend/webgpu-gemm.ts';
import { layerNormDispatches, registerWebgpuLayerNorm } from '../src/backend/webgpu-layernorm.ts';
import * as F from '../src/nn/functional.ts';
import { ATTENTION, LAYER_NORM } from '../src/nn/kernels.ts';

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

/** [B, H, Lq, Lk, D]: DiT self-attention (CFG batch 2) and cross-attention to the conditioning tokens. */
const ATTENTION_SHAPES: [number, number, number, number, number][] = FULL
  ? [[2, 24, 237, 237, 64], [2, 24, 237, 384, 64]]
  : [[2, 4, 237, 237, 64], [2, 4, 237, 64, 64], [1, 8, 16, 16, 64]];
/** [rows, C] of the DiT's layer norms. */
const LAYER_NORM_SHAPES: [number, number][] = FULL ? [[474, 1536], [768, 768]] : [[474, 512], [128, 768]];

/** An nn kernel of ours is on while registered: the op takes tf ops (tfjs' kernels) otherwise. */
const nnToggle = (name: string, register: () => void) => (on: boolean) => {
  if (on) register();
  else if (tf.getKernel(name, 'webgpu')) tf.unregisterKernel(name, 'webgpu');
};

function checkTaken(kernel: string, before: number, after: number): void {
  if (after !== before + REPS + 1) throw new Error(`${kernel} did not take our kernel`);
}

export async function benchWebgpuKernels(): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  registerWebgpuGemm();
  for (const [m, k, n] of GEMM_SHAPES) {
    const x = tf.randomNormal([m, k], 0, 1, 'float32', 1);
    const w = tf.randomNormal([n, k], 0, 1 / Math.sqrt(k), 'float32', 2);
    const calls = gemmDispatches();
    rows.push(await compare('gemm x·Wᵀ', `${m}x${k}x${n}`, () => tf.matMul(x, w, false, true), setWebgpuGemmEnabled));
    checkTaken(`gemm ${m}x${k}x${n}`, calls, gemmDispatches());
    tf.dispose([x, w]);
  }
  setWebgpuGemmEnabled(false); // the fused kernels are compared with tfjs' own ops, its GEMM included
  for (const [b, h, lq, lk, d] of ATTENTION_SHAPES) {
    const q = tf.randomNormal([b, h, lq, d], 0, 1, 'float32', 3) as tf.Tensor4D;
    const k = tf.randomNormal([b, h, lk, d], 0, 1, 'float32', 4) as tf.Tensor4D;
    const v = tf.randomNormal([b, h, lk, d], 0, 1, 'float32', 5) as tf.Tensor4D;
    const calls = attentionDispatches();
    rows.push(await compare('attention', `${b}x${h}x${lq}x${lk}x${d}`, () => F.attention(q, k, v), nnToggle(ATTENTION, registerWebgpuAttention)));
    checkTaken('attention', calls, attentionDispatches());
    tf.dispose([q, k, v]);
  }
  for (const [r, c] of LAYER_NORM_SHAPES) {
    const x = tf.randomNormal([r, c], 0, 1, 'float32', 6);
    const w = tf.randomNormal([c], 1, 0.1, 'float32', 7);
    const b = tf.randomNormal([c], 0, 0.1, 'float32', 8);
    const calls = layerNormDispatches();
    rows.push(await compare('layer norm', `${r}x${c}`, () => F.layerNorm(x, w, b), nnToggle(LAYER_NORM, registerWebgpuLayerNorm)));
    checkTaken('layer norm', calls, layerNormDispatches());
    tf.dispose([x, w, b]);
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
