// Per-kernel profile of the diffusion transformer's forward at full width (one CFG call at the sampler's
// shapes, `--layers` of the 24 blocks, random weights): time per tfjs kernel (tf.profile), its share of the
// forward, and the GFLOP/s of the matrix products — where the time outside the GEMMs goes.
//
//   npx tsx bench/profile.ts [--model AudioX|AudioX-MAF-MMDiT] [--layers 2] [--markdown]
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import type { DiffusionModel } from '../src/models/diffusion-types.ts';
import type { Module } from '../src/nn/module.ts';
import { diffusionConfig, randomInit } from './workloads.ts';
import { summarizeKernels } from './kernel-profile.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const MODEL = opt('model', 'AudioX');
const LAYERS = Number(opt('layers', '2'));
const FILES: Record<string, string> = { AudioX: 'audiox.config.json', 'AudioX-MAF-MMDiT': 'audiox-maf-mmdit.assumed.config.json' };
if (!FILES[MODEL]) throw new Error(`--model: one of ${Object.keys(FILES).join(', ')}`);

const info = await initBackend();
const raw = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/manifests', FILES[MODEL]), 'utf8'));
const d = raw.model.diffusion;
const mmdit = d.type === 'mmdit';
const cfg = diffusionConfig(FILES[MODEL], LAYERS);
const wrapper = (mmdit
  ? (await import('../src/models/mmdit.ts')).MMDiTWrapper.fromConfig(cfg as never)
  : (await import('../src/models/dit.ts')).DiTWrapper.fromConfig(cfg as never)) as unknown as DiffusionModel & Module;
randomInit(wrapper);
const T = mmdit ? (d.config._latent_seq_len ?? 237) - 1 : 236;
const S = mmdit ? 384 : 128 + 128 + 215;
const x = tf.randomNormal([1, d.config.io_channels, T], 0, 1, 'float32', 100);
const t = tf.tensor1d([0.7]);
const c = tf.randomNormal([1, S, mmdit ? 768 : d.config.cond_token_dim], 0, 1, 'float32', 101);
const run = () => wrapper.forward(x, t, { crossAttnCond: c, cfgScale: 7 });
tf.tidy(() => run().dataSync()); // warm-up

const t0 = performance.now();
const prof = await tf.profile(() => {
  const y = run();
  y.dataSync();
  return y;
});
const wall = performance.now() - t0;
tf.dispose(prof.result as tf.Tensor);

const { rows, total, gemm } = summarizeKernels(prof.kernels);
console.log(`backend ${info.name}, ${info.threads} threads; ${MODEL} ${LAYERS} of 24 blocks, one CFG forward: ${wall.toFixed(0)} ms wall, ${total.toFixed(0)} ms in kernels`);
console.log('\n| kernel | calls | ms | share | GFLOP/s |\n| --- | --- | --- | --- | --- |');
for (const [name, r] of rows.slice(0, 15)) {
  console.log(`| ${name} | ${r.calls} | ${r.ms.toFixed(0)} | ${((100 * r.ms) / total).toFixed(1)} % | ${r.gflop ? (r.gflop / (r.ms / 1000)).toFixed(0) : ''} |`);
}
console.log(
  `\nproducts (matmul + conv): ${((100 * gemm.ms) / total).toFixed(1)} % of kernel time at ${(gemm.gflop / (gemm.ms / 1000)).toFixed(0)} GFLOP/s; ` +
    `everything else: ${(((total - gemm.ms) / total) * 100).toFixed(1)} %; whole forward ${(gemm.gflop / (wall / 1000)).toFixed(0)} GFLOP/s of products`,
);
tf.dispose([x, t, c]);
wrapper.dispose();
