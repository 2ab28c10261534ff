// One bench workload per process (so that peak memory is per workload), random weights, fp32.
// Usage: tsx bench/workloads.ts dit|mmdit|vae|t5|clip|sync|cond|matmul [--layers 4] [--runs 2] [--sync-frames 250]
// Prints one JSON line: { workload, ms (best of runs), heapBytes (wasm heap high-water mark, or tf's
// bytes on other backends), rssBytes (process max RSS), backend, threads, layers }.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/backend/index.ts';
import type { Module } from '../src/nn/module.ts';
import { SHAPES } from './flops.ts';
import { benchMatmul } from './matmul.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = process.env.AUDIOX_MANIFESTS ?? path.join(ROOT, 'test/fixtures/manifests');

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

export { SHAPES } from './flops.ts';

/** Seeded random weights for every tensor of `m` (betas, inv_freq, position ids zero), as each workload uses. */
export function randomInit(m: Module): void {
  let seed = 1;
  m.initWeights((key, p) =>
    key.endsWith('.beta') || key.endsWith('inv_freq') || key.endsWith('position_ids')
      ? tf.zeros(p.shape, p.dtype as tf.DataType)
      : p.dtype === 'int32'
        ? tf.zeros(p.shape, 'int32')
        : tf.randomNormal(p.shape, 0, 0.5 / Math.sqrt(p.shape.at(-1) ?? 1), 'float32', seed++),
  );
}

/** The diffusion section of a manifest config with `layers` blocks. */
export function diffusionConfig(file: string, layers: number): Record<string, unknown> {
  const raw = JSON.parse(fs.readFileSync(path.join(MANIFESTS, file), 'utf8'));
  return { ...raw.model.diffusion.config, depth: layers };
}

/** Synchformer features as the AudioX-MAF video conditioner's input preparation makes them: [1, S·8, 768]. */
async function syncWorkload(frames: number): Promise<{ run: () => tf.Tensor; dispose: () => void }> {
  const { Synchformer } = await import('../src/models/synchformer/synchformer.ts');
  const { encodeVideoWithSync, prepareSyncFrames } = await import('../src/models/synchformer/features.ts');
  const { withResident } = await import('../src/nn/streaming.ts');
  const sync = new Synchformer();
  randomInit(sync);
  // uint8 values as the video reader delivers them (int32), normalised inside the timed run like the pipeline.
  const raw = tf.randomUniform([1, frames, 3, 224, 224], 0, 256, 'int32', 105);
  return {
    run: () => {
      const x = prepareSyncFrames(raw);
      try {
        return withResident(sync.vfeat_extractor, () => encodeVideoWithSync(sync, x));
      } finally {
        x.dispose();
      }
    },
    dispose: () => (raw.dispose(), sync.dispose()),
  };
}

/**
 * The conditioning phase of a full-size AudioX-MAF video-to-audio generation (generate() step 1), minus the
 * media decoding: Synchformer features, the conditioners of the config (CLIP + temporal transformer + sync
 * projection, T5-base over 128 padded tokens, the mel conditioner on 10 s of silence) and the MAF block.
 */
/** A scaled run (--sync-frames < 250) gives fewer than 240 sync tokens: repeated to 240 (input consumed). */
function fitSyncTokens(f: tf.Tensor): tf.Tensor {
  const n = f.shape[1]!;
  if (n >= 240) return f;
  const out = tf.tidy(() => tf.tile(f, [1, Math.ceil(240 / n), 1]).slice([0, 0, 0], [1, 240, f.shape[2]!]));
  f.dispose();
  return out;
}

async function condWorkload(syncFrames: number): Promise<{ run: () => tf.Tensor; dispose: () => void }> {
  const { readConfig } = await import('../src/models/config.ts');
  const { createModelFromConfig } = await import('../src/models/wrapper.ts');
  const { T5EncoderModel, T5_BASE_CONFIG } = await import('../src/models/t5.ts');
  const { TextTokenizer } = await import('../src/models/tokenizer.ts');
  const { SeededNoise } = await import('../src/nn/noise.ts');
  const { T5Conditioner } = await import('../src/models/conditioners/text/t5.ts');
  const w = createModelFromConfig(readConfig(path.join(ROOT, 'configs/AudioX-MAF.assumed.json')));
  if (!w.maf_block) throw new Error('configs/AudioX-MAF.assumed.json: expected a MAF block');
  randomInit(w.conditioner);
  randomInit(w.maf_block);
  const t5 = T5EncoderModel.fromConfig(T5_BASE_CONFIG);
  randomInit(t5);
  const text = w.conditioner.get('text_prompt');
  if (!(text instanceof T5Conditioner)) throw new Error('AudioX-MAF: text_prompt is not a T5 conditioner');
  // The demo tokenizer (no t5-base tokenizer offline): the conditioner pads to max_length (128) either way.
  text.attach(t5, TextTokenizer.fromFile(path.join(ROOT, 'configs/demo/tokenizer.json')));
  const sync = await syncWorkload(syncFrames);
  const video = tf.randomUniform([1, SHAPES.clipFrames, 3, 224, 224], 0, 256, 'float32', 106);
  const audio = tf.zeros([1, 2, SHAPES.audioSamples]);
  return {
    run: () => {
      const syncFeatures = fitSyncTokens(sync.run());
      const inputs = { video_prompt: { video, syncFeatures }, text_prompt: ['a dog barking in the rain'], audio_prompt: audio };
      let cond: ReturnType<typeof w.condition> = {};
      try {
        cond = w.condition(inputs, { noise: new SeededNoise(1) });
        const ci = w.conditioningInputs(cond);
        tf.dispose(ci.crossAttnMask ?? []);
        return ci.crossAttnCond!;
      } finally {
        w.disposeCond(cond);
        syncFeatures.dispose();
      }
    },
    dispose: () => {
      tf.dispose([video, audio]);
      sync.dispose();
      w.dispose();
    },
  };
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
    case 'sync':
      return syncWorkload(arg('sync-frames', SHAPES.syncFrames));
    case 'cond':
      return condWorkload(arg('sync-frames', SHAPES.syncFrames));
    default:
      throw new Error(`unknown workload "${name}" (dit, mmdit, vae, t5, clip, sync, cond, matmul)`);
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
  let shape: number[] | null = null;
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    const y = w.run();
    await y.data();
    shape = y.shape;
    y.dispose();
    if (r > 0 || runs === 0) best = Math.min(best, performance.now() - t0); // run 0 is the warm-up (timed alone with --runs 0)
  }
  const heap = heapBytes();
  w.dispose();
  const rssBytes = process.resourceUsage().maxRSS * 1024;
  const out = { workload: name, ms: best, heapBytes: heap, rssBytes, backend, threads: info.threads, layers, ...(shape ? { shape } : {}) };
  console.log(JSON.stringify(out));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
