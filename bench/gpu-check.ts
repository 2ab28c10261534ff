// GPU check on the WebGPU backend (bundled by bench/gpu-pack.sh, run by bench/gpu.sh on a GPU machine):
// 1. parity of the small fixtures (t5, clip, vae, maf, dit) on the adapter Dawn finds;
// 2. full-size timings with random weights: one DiT forward with CFG (24 layers, B 2, 237 frames,
//    384 context tokens) and a 10 s VAE decode; a 10 s generation ≈ steps × DiT + VAE.
//    `--size small` shrinks the models (DiT width 256, 4 heads, 32 frames; VAE width 16, 8 latent frames) for a software adapter.
// AUDIOX_WEBGPU_KERNELS=1 runs both parts on our own WGSL kernels (src/backend/webgpu-kernels.ts).
// Usage: node gpu-check.mjs --fixtures DIR [--steps 100] [--layers 24] [--size full|small]
// Prints "PASS/FAIL …" lines and a final JSON line.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/backend/index.ts';
import { probeWebgpuAdapter } from '../src/backend/webgpu.ts';
import { compareOutputs, findFixtureFiles, openFixture } from '../src/parity/harness.ts';
import type { Runner } from '../src/parity/types.ts';
import { runner as clip } from '../src/parity/runners/clip.ts';
import { runner as dit } from '../src/parity/runners/dit.ts';
import { runner as maf } from '../src/parity/runners/maf.ts';
import { runner as t5 } from '../src/parity/runners/t5.ts';
import { runner as vae } from '../src/parity/runners/vae.ts';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const FIXTURES = arg('fixtures', 'fixtures');
const STEPS = Number(arg('steps', '100'));
const LAYERS = Number(arg('layers', '24'));
const SMALL = arg('size', 'full') === 'small';
const KERNELS = process.env.AUDIOX_WEBGPU_KERNELS === '1';

process.env.AUDIOX_BACKEND = 'webgpu';
await initBackend('webgpu');
const adapter = await probeWebgpuAdapter();
console.log(`adapter: ${adapter?.description} (${adapter?.backend}, ${adapter?.featureLevel}); kernels: ${KERNELS ? 'ours' : "tfjs'"}`);

// ---- parity ----
const runners = new Map<string, Runner>([clip, dit, maf, t5, vae].map((r) => [r.component, r]));
let passed = 0;
let failed = 0;
for (const file of fs.existsSync(FIXTURES) ? findFixtureFiles(FIXTURES) : []) {
  const fx = openFixture(file, FIXTURES);
  if (!fx) continue;
  const r = runners.get(fx.component);
  if (!r) {
    fx.file.close();
    continue;
  }
  try {
    const res = await r.run(fx);
    if ('outputs' in res) {
      const c = await compareOutputs(fx, res.outputs);
      for (const t of Object.values(res.outputs)) t.dispose();
      console.log(`${c.pass ? 'PASS' : 'FAIL'} ${path.relative(FIXTURES, file)} max_abs=${c.maxAbs} ${c.message}`);
      c.pass ? passed++ : failed++;
    } else {
      console.log(`${res.pass ? 'PASS' : 'FAIL'} ${path.relative(FIXTURES, file)} max_abs=${res.maxAbs}`);
      res.pass ? passed++ : failed++;
    }
  } catch (e) {
    console.log(`FAIL ${path.relative(FIXTURES, file)} error: ${(e as Error).message}`);
    failed++;
  } finally {
    fx.file.close();
  }
}
console.log(`${passed} passed, ${failed} failed`);
// Parity on its own line first: bench/gpu.sh's table keeps it when a timing below fails.
console.log(JSON.stringify({ adapter, kernels: KERNELS ? 'ours' : 'tfjs', parity: { passed, failed } }));

// ---- full-size timings (random weights) ----
async function best(fn: () => tf.Tensor, runs = 2): Promise<number> {
  let b = Infinity;
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    const y = fn();
    await y.data();
    y.dispose();
    if (i > 0) b = Math.min(b, performance.now() - t0);
  }
  return b;
}
let seed = 1;
const init = (_k: string, p: { shape: number[] }) => tf.randomNormal(p.shape, 0, 0.5 / Math.sqrt(p.shape.at(-1) ?? 1), 'float32', seed++);

const { DiTWrapper } = await import('../src/models/dit.ts');
const wrapper = DiTWrapper.fromConfig({
  io_channels: 64, embed_dim: SMALL ? 256 : 1536, depth: LAYERS, num_heads: SMALL ? 4 : 24, cond_token_dim: SMALL ? 256 : 768, global_cond_dim: SMALL ? 256 : 1536,
  project_cond_tokens: false, transformer_type: 'continuous_transformer',
} as never);
wrapper.initWeights(init);
const x = tf.randomNormal([1, 64, SMALL ? 32 : 236]);
const t = tf.fill([1], 0.7);
const c = tf.randomNormal(SMALL ? [1, 32, 256] : [1, 384, 768]);
const ditMs = await best(() => wrapper.forward(x, t, { crossAttnCond: c, cfgScale: 7 }));
tf.dispose([x, t, c]);
wrapper.dispose();

const { AutoencoderPretransform } = await import('../src/models/vae/pretransform.ts');
const vaeModel = AutoencoderPretransform.fromConfig({
  type: 'autoencoder', iterate_batch: true,
  config: {
    encoder: { type: 'oobleck', config: { in_channels: 2, channels: SMALL ? 16 : 128, c_mults: [1, 2, 4, 8, 16], strides: [2, 4, 4, 8, 8], latent_dim: 128, use_snake: true } },
    decoder: { type: 'oobleck', config: { out_channels: 2, channels: SMALL ? 16 : 128, c_mults: [1, 2, 4, 8, 16], strides: [2, 4, 4, 8, 8], latent_dim: 64, use_snake: true, final_tanh: false } },
    bottleneck: { type: 'vae' }, latent_dim: 64, downsampling_ratio: 2048, io_channels: 2,
  },
} as never);
vaeModel.initWeights((k, p) => tf.randomNormal(p.shape, 0, 0.05, 'float32', seed++));
const z = tf.randomNormal([1, 64, SMALL ? 8 : 216]) as tf.Tensor3D;
const vaeMs = await best(() => vaeModel.decode(z), 1);
z.dispose();
vaeModel.dispose();

console.log(`DiT forward (CFG, ${LAYERS} layers${SMALL ? ', small' : ''}): ${ditMs.toFixed(0)} ms; VAE decode ${SMALL ? '0.4 s, width 16' : '10 s'}: ${vaeMs.toFixed(0)} ms; ` +
  `${SMALL ? "small-model" : "10 s"} generation ≈ ${STEPS} × DiT + VAE = ${((STEPS * ditMs + vaeMs) / 1000).toFixed(1)} s`);
console.log(JSON.stringify({ adapter, kernels: KERNELS ? 'ours' : 'tfjs', size: SMALL ? 'small' : 'full', parity: { passed, failed }, ditMs, vaeMs, steps: STEPS, layers: LAYERS }));
