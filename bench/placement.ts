// Where the diffusion transformer's weights live vs how fast its forward runs: the same random weights
// loaded resident, 'host' (weight operands in host memory, read in place by the native kernels) and
// streamed (uploaded per forward), forwards interleaved in one process so that the ratios share the
// machine's conditions. Full width, `--layers` of the 24 blocks (the resident copy must fit the wasm heap);
// one CFG call at the sampler's shapes (batch 2, 237 tokens, 471 context tokens for the DiTs).
//
//   npx tsx bench/placement.ts [--model AudioX|AudioX-MAF|AudioX-MAF-MMDiT|all] [--layers 4] [--runs 3]
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import { MapSource } from '../src/io/safetensors.ts';
import { kernelRegistered, TO_HOST } from '../src/nn/kernels.ts';
import type { Module } from '../src/nn/module.ts';
import { loadStateDictStreamed, streamStats } from '../src/nn/streaming.ts';
import type { DiffusionModel } from '../src/models/diffusion-types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = path.join(ROOT, 'test/fixtures/manifests');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const LAYERS = Number(opt('layers', '4'));
const RUNS = Number(opt('runs', '3'));
const MODELS: Record<string, string> = {
  AudioX: 'audiox.config.json',
  'AudioX-MAF': 'audiox-maf.assumed.config.json',
  'AudioX-MAF-MMDiT': 'audiox-maf-mmdit.assumed.config.json',
};
const which = opt('model', 'all');
const names = which === 'all' ? Object.keys(MODELS) : [which];

const info = await initBackend();
if (!kernelRegistered(TO_HOST)) throw new Error(`the host placement needs wasm with the native BLAS addon (backend ${info.name})`);
console.log(`backend ${info.name}, ${info.threads} threads; ${LAYERS} of 24 blocks, best of ${RUNS} interleaved runs`);

async function build(name: string): Promise<() => DiffusionModel & Module> {
  const raw = JSON.parse(fs.readFileSync(path.join(MANIFESTS, MODELS[name]), 'utf8'));
  const d = raw.model.diffusion;
  const cfg = { ...d.config, depth: LAYERS };
  if (d.type === 'mmdit') {
    const { MMDiTWrapper } = await import('../src/models/mmdit.ts');
    return () => MMDiTWrapper.fromConfig(cfg) as unknown as DiffusionModel & Module;
  }
  const { DiTWrapper } = await import('../src/models/dit.ts');
  return () => DiTWrapper.fromConfig(cfg) as unknown as DiffusionModel & Module;
}

const rows: string[] = [];
for (const name of names) {
  const make = await build(name);
  const proto = make();
  let seed = 1;
  const weights: Record<string, tf.Tensor> = {};
  for (const [k, p] of proto.namedTensors()) {
    weights[k] = p.dtype === 'int32' ? tf.zeros(p.shape, 'int32') : tf.randomNormal(p.shape, 0, 0.5 / Math.sqrt(p.shape.at(-1) ?? 1), 'float32', seed++);
  }
  proto.dispose();
  const src = new MapSource(weights);
  const blocks = (m: Module) => [...m.getSubmodule('model.transformer.layers').children.values()];
  const resident = make();
  resident.loadStateDict(src);
  const host = make();
  loadStateDictStreamed(host, src, blocks(host), { hostUnits: blocks(host) });
  const streamed = make();
  loadStateDictStreamed(streamed, src, blocks(streamed));
  tf.dispose(Object.values(weights));

  const raw = JSON.parse(fs.readFileSync(path.join(MANIFESTS, MODELS[name]), 'utf8'));
  const c = raw.model.diffusion.config as { io_channels: number; cond_token_dim: number; _latent_seq_len?: number };
  const mmdit = raw.model.diffusion.type === 'mmdit';
  const T = mmdit ? (c._latent_seq_len ?? 237) - 1 : 236;
  const S = mmdit ? 384 : 128 + 128 + 215;
  const x = tf.randomNormal([1, c.io_channels, T], 0, 1, 'float32', 100);
  const t = tf.tensor1d([0.7]);
  const cond = tf.randomNormal([1, S, mmdit ? 768 : c.cond_token_dim], 0, 1, 'float32', 101);
  const time = (m: DiffusionModel): number => {
    const t0 = performance.now();
    const y = m.forward(x, t, { crossAttnCond: cond, cfgScale: 7 });
    y.dataSync();
    y.dispose();
    return performance.now() - t0;
  };
  const placements = { resident, host, streamed } as const;
  const best: Record<string, number> = { resident: Infinity, host: Infinity, streamed: Infinity };
  let uploadMs = 0;
  for (const m of Object.values(placements)) time(m); // warm-up (the streamed one derives here)
  for (let r = 0; r < RUNS; r++) {
    for (const [k, m] of Object.entries(placements)) {
      streamStats.reset();
      best[k] = Math.min(best[k], time(m));
      if (k === 'streamed') uploadMs = streamStats.uploadMs;
    }
  }
  const scale = 24 / LAYERS;
  rows.push(
    `| ${name} | ${((best.resident * scale) / 1000).toFixed(1)} s | ${((best.host * scale) / 1000).toFixed(1)} s | ` +
      `**${(best.host / best.resident).toFixed(2)}×** | ${((best.streamed * scale) / 1000).toFixed(1)} s | ${(best.streamed / best.resident).toFixed(2)}× ` +
      `(uploads ${((uploadMs * scale) / 1000).toFixed(1)} s) |`,
  );
  console.log(rows.at(-1));
  tf.dispose([x, t, cond]);
  for (const m of Object.values(placements)) m.dispose();
}
console.log(
  `\n| model (24-block forward, extrapolated from ${LAYERS}) | resident | host | host / resident | streamed | streamed / resident |\n| --- | --- | --- | --- | --- | --- |\n${rows.join('\n')}`,
);
