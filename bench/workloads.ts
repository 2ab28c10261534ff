// One bench workload per process (so that peak memory is per workload), random weights, fp32.
// Usage: tsx bench/workloads.ts dit|mmdit|vae|t5|clip|matmul [--layers 4] [--runs 2]
// Prints one JSON line: { workload, ms (best of runs), heapBytes (wasm heap high-water mark, or tf's
// bytes on other backends), rssBytes (process max RSS), backend, threads, layers }.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import type { Module } from '../src/nn/module.ts';
import { benchMatmul } from './matmul.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = process.env.AUDIOX_MANIFESTS ?? path.join(ROOT, 'test/fixtures/manifests');

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

/** Shapes shared with bench/torch_baseline.py (see the README's benchmark section). */
export const SHAPES = { batch: 2, frames: 236, context: 384, vaeLatents: 216, t5Tokens: 128, clipFrames: 50 };

function randomInit(m: Module): void {
  let seed = 1;
  m.initWeights((key, p) =>
    key.endsWith('.beta') || key.endsWith('inv_freq') || key.endsWith('position_ids')
      ? tf.zeros(p.shape, p.dtype as tf.DataType)
      : p.dtype === 'int32'
        ? tf.zeros(p.shape, 'int32')
        : tf.randomNormal(p.shape, 0, 0.5 / Math.sqrt(p.shape.at(-1) ?? 1), 'float32', seed++),
  );
}

function diffusionConfig(file: string, layers: number): Record<string, unknown> {
  const raw = JSON.parse(fs.readFileSync(path.join(MANIFESTS, file), 'utf8'));
  return { ...raw.model.diffusion.config, depth: layers };
}

async function build(name: string, layers: number): Promise<{ run: () => tf.Tensor; dispose: () => void }> {
  const { batch, frames, context } = SHAPES;
  const b = batch / 2; // CFG doubles the batch inside the model
  switch (name) {
    case 'dit':
    case 'mmdit': {
      const cfg = diffusionConfig(name === 'dit' ? 'audiox.config.json' : 'audiox-maf-mmdit.assumed.config.json', layers);
      const wrapper =
        name === 'dit'
          ? (await import('../src/models/dit.ts')).DiTWrapper.fromConfig(cfg as never)
          : (await import('../src/models/mmdit.ts')).MMDiTWrapper.fromConfig(cfg as never);
      randomInit(wrapper);
      const x = tf.randomNormal([b, 64, frames], 0, 1, 'float32', 100);
      const t = tf.fill([b], 0.7);
      const c = tf.randomNormal([b, context, 768], 0, 1, 'float32', 101);
      return {
        run: () => wrapper.forward(x, t, { crossAttnCond: c, cfgScale: 7 }),
        dispose: () => {
          tf.dispose([x, t, c]);
          wrapper.dispose();
        },
      };
    }
    case 'vae': {
      const raw = JSON.parse(fs.readFileSync(path.join(MANIFESTS, 'audiox.config.json'), 'utf8'));
      const { AutoencoderPretransform } = await import('../src/models/vae/pretransform.ts');
      const vae = AutoencoderPretransform.fromConfig(raw.model.pretransform);
      randomInit(vae);
      const z = tf.randomNormal([1, 64, SHAPES.vaeLatents], 0, 1, 'float32', 102) as tf.Tensor3D;
      return { run: () => vae.decode(z), dispose: () => (z.dispose(), vae.dispose()) };
    }
    case 't5': {
      const { T5EncoderModel, T5_BASE_CONFIG } = await import('../src/models/t5.ts');
      const t5 = T5EncoderModel.fromConfig(T5_BASE_CONFIG);
      randomInit(t5);
      const ids = tf.randomUniform([1, SHAPES.t5Tokens], 0, 32100, 'int32', 103) as tf.Tensor2D;
      const mask = tf.ones([1, SHAPES.t5Tokens], 'int32') as tf.Tensor2D;
      return { run: () => t5.forward(ids, mask), dispose: () => (tf.dispose([ids, mask]), t5.dispose()) };
    }
    case 'clip': {
      const { CLIPVisionModelWithProjection } = await import('../src/models/clip.ts');
      const clip = CLIPVisionModelWithProjection.fromConfig();
      randomInit(clip);
      const px = tf.randomNormal([SHAPES.clipFrames, 3, 224, 224], 0, 1, 'float32', 104) as tf.Tensor4D;
      return { run: () => clip.lastHiddenState(px), dispose: () => (px.dispose(), clip.dispose()) };
    }
    default:
      throw new Error(`unknown workload "${name}" (dit, mmdit, vae, t5, clip, matmul)`);
  }
}

function heapBytes(): number {
  const be = tf.backend() as unknown as { wasm?: { wasmMemory?: WebAssembly.Memory; HEAPU8?: Uint8Array } };
  const mem = be.wasm?.wasmMemory;
  if (mem) return mem.buffer.byteLength;
  if (be.wasm?.HEAPU8) return be.wasm.HEAPU8.buffer.byteLength;
  return tf.memory().numBytes;
}

async function main(): Promise<void> {
  const name = process.argv[2];
  const info = await initBackend();
  const backend = `${info.name} (${info.probes.find((p) => p.name === info.name)?.reason ?? info.tfBackend})`;
  if (name === 'matmul') {
    console.log(JSON.stringify({ workload: name, rows: await benchMatmul(), backend, threads: info.threads }));
    return;
  }
  const layers = arg('layers', 4);
  const runs = arg('runs', 2);
  const w = await build(name, layers);
  let best = Infinity;
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    const y = w.run();
    await y.data();
    y.dispose();
    if (r > 0) best = Math.min(best, performance.now() - t0); // run 0 is the warm-up
  }
  const heap = heapBytes();
  w.dispose();
  const rssBytes = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ workload: name, ms: best, heapBytes: heap, rssBytes, backend, threads: info.threads, layers }));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
