// Full-size smoke test of the real-model path with random weights, offline:
// lays out what `audiox download <model>` produces (config.json, model.safetensors, synchformer.safetensors,
// t5-base/) under a temporary AUDIOX_HOME, then runs loadModel + generate like `audiox generate --model`.
//
//   npx tsx bench/fullsize-smoke.ts [AudioX|AudioX-MAF|AudioX-MAF-MMDiT] [--steps 1] [--seconds 2]
//       [--video f] [--audio f | --no-audio] [--home DIR] [--dtype f16|f32] [--clean]
//
// Files are kept (and reused) under --home (default $TMPDIR/audiox-fullsize) unless --clean.
//
// The weights are N(0, 0.02) (norm weights 1, Snake alpha/beta 0 = their reference init), written under
// exactly the keys of `createModelFromConfig(config).parameterManifest({ persistent: true })` (checked
// against test/fixtures/manifests).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const MANIFESTS = path.join(ROOT, 'test/fixtures/manifests');
const CONFIGS: Record<string, { config: string; manifest: string; sync: boolean }> = {
  AudioX: { config: 'configs/AudioX.json', manifest: 'audiox.json', sync: false },
  'AudioX-MAF': { config: 'configs/AudioX-MAF.assumed.json', manifest: 'audiox-maf.assumed.json', sync: true },
  'AudioX-MAF-MMDiT': { config: 'configs/AudioX-MAF-MMDiT.assumed.json', manifest: 'audiox-maf-mmdit.assumed.json', sync: true },
};
/** HF's google-t5/t5-base config.json (the keys the encoder reads, as published). */
const T5_BASE_HF_CONFIG = {
  architectures: ['T5ForConditionalGeneration'],
  d_ff: 3072,
  d_kv: 64,
  d_model: 768,
  decoder_start_token_id: 0,
  dropout_rate: 0.1,
  eos_token_id: 1,
  initializer_factor: 1.0,
  is_encoder_decoder: true,
  layer_norm_epsilon: 1e-6,
  model_type: 't5',
  n_positions: 512,
  num_heads: 12,
  num_layers: 12,
  output_past: true,
  pad_token_id: 0,
  relative_attention_num_buckets: 32,
  vocab_size: 32128,
};

const argv = process.argv.slice(2);
const opt = (name: string, dflt?: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const NAME = argv.find((a, i) => !a.startsWith('--') && (i === 0 || !argv[i - 1].startsWith('--'))) ?? 'AudioX';
const STEPS = Number(opt('steps', '1'));
const SECONDS = Number(opt('seconds', '2'));
const DTYPE = opt('dtype', 'f16') === 'f32' ? 'F32' : 'F16';
const HOME = path.resolve(opt('home', path.join(os.tmpdir(), 'audiox-fullsize'))!);
if (!CONFIGS[NAME]) throw new Error(`unknown model ${NAME}: one of ${Object.keys(CONFIGS).join(', ')}`);
process.env.AUDIOX_HOME = HOME;

// Imported after AUDIOX_HOME is set (the hub reads it per call, but keep it obvious).
const { initBackend, formatBytes, wasmBackendDetails } = await import('../src/backend/index.ts');
const { writeSafetensors, f32ToF16 } = await import('../src/io/safetensors.ts');
const { readConfig } = await import('../src/models/config.ts');
const { createModelFromConfig } = await import('../src/models/wrapper.ts');
const { T5EncoderModel } = await import('../src/models/t5.ts');
const { loadModel } = await import('../src/pipeline/load.ts');
const { describePlan } = await import('../src/models/memory.ts');
const { generate } = await import('../src/pipeline/generate.ts');
const { streamStats } = await import('../src/nn/streaming.ts');
const { runFfmpeg } = await import('../src/io/ffmpeg.ts');
type Module = import('../src/nn/module.ts').Module;

const GiB = 1024 ** 3;
const log = (s: string) => console.log(`[${(performance.now() / 1000).toFixed(1).padStart(7)} s] ${s}`);

// ---- random weights ----
const POOL = (() => {
  // N(0, 0.02) by Box–Muller from a seeded LCG; tensors copy windows of it at random offsets.
  const n = 1 << 20;
  const f = new Float32Array(n + 4096);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  for (let i = 0; i < f.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    f[i] = 0.02 * r * Math.cos(t);
    if (i + 1 < f.length) f[i + 1] = 0.02 * r * Math.sin(t);
  }
  return { f32: f, f16: f32ToF16(f), n };
})();

function initValue(key: string): number | null {
  const leaf = key.split('.').pop()!;
  if (leaf === 'alpha' || leaf === 'beta') return 0; // SnakeBeta (log-scale): exp(0) = 1, the reference init
  if (/norm/i.test(key) && (leaf === 'weight' || leaf === 'gamma' || leaf === 'scale')) return 1;
  return null;
}

function randomBytes(key: string, shape: number[], dtype: 'F32' | 'F16' | 'I32'): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'I32') return new Uint8Array(n * 4);
  const c = initValue(key);
  const f32 = dtype === 'F32';
  const out = f32 ? new Float32Array(n) : new Uint16Array(n);
  const pool = f32 ? POOL.f32 : POOL.f16;
  if (c !== null) out.fill(f32 ? c : c === 1 ? 0x3c00 : 0);
  else {
    let off = (key.length * 7919) % POOL.n;
    for (let i = 0; i < n; i += 4096) {
      off = (off * 1103515245 + 12345) % POOL.n;
      out.set(pool.subarray(off, off + Math.min(4096, n - i)) as never, i);
    }
  }
  return new Uint8Array(out.buffer);
}

/** Writes random weights for `manifest` (dtypes from `m`'s tensors) to `file`, unless it exists. */
async function writeRandom(file: string, m: Module | null, manifest: Record<string, number[]>, skip: (k: string) => boolean = () => false): Promise<void> {
  if (fs.existsSync(file)) return log(`reuse ${file}`);
  const dtypes = new Map<string, string>(m ? [...m.namedTensors()].map(([k, p]) => [k, p.dtype]) : []);
  const entries = Object.entries(manifest)
    .filter(([k]) => !skip(k))
    .map(([name, shape]) => {
      const dtype = dtypes.get(name) === 'int32' ? 'I32' : DTYPE;
      return { name, dtype, shape, bytes: () => randomBytes(name, shape, dtype) } as const;
    });
  const t0 = performance.now();
  await writeSafetensors(file, entries.map((e) => ({ ...e })));
  log(`wrote ${file}: ${entries.length} tensors, ${formatBytes(fs.statSync(file).size)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

function compareManifest(what: string, ours: Record<string, number[]>, file: string): void {
  if (!fs.existsSync(file)) return log(`${what}: no reference manifest ${file}`);
  const ref = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number[]>;
  const missing = Object.keys(ref).filter((k) => !(k in ours));
  const extra = Object.keys(ours).filter((k) => !(k in ref));
  const shape = Object.keys(ref).filter((k) => k in ours && ref[k].join() !== ours[k].join());
  const ok = !missing.length && !extra.length && !shape.length;
  log(`${what}: ${Object.keys(ours).length} keys vs ${path.basename(file)}: ${ok ? 'identical' : `MISMATCH missing ${missing.slice(0, 5)} extra ${extra.slice(0, 5)} shape ${shape.slice(0, 5)}`}`);
  if (!ok) process.exitCode = 1;
}

async function prepare(): Promise<string> {
  const spec = CONFIGS[NAME];
  const dir = path.join(HOME, 'models', NAME);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(ROOT, spec.config), path.join(dir, 'config.json'));
  const w = createModelFromConfig(readConfig(path.join(dir, 'config.json')));
  const manifest = w.parameterManifest({ persistent: true });
  compareManifest(NAME, manifest, path.join(MANIFESTS, spec.manifest));
  await writeRandom(path.join(dir, 'model.safetensors'), w, manifest);
  if (spec.sync) {
    // synchformer_state_dict.pth converted as is (download.ts: → synchformer.safetensors, keys unchanged).
    const sync = JSON.parse(fs.readFileSync(path.join(MANIFESTS, 'synchformer.json'), 'utf8')) as Record<string, number[]>;
    await writeRandom(path.join(dir, 'synchformer.safetensors'), null, sync);
  }
  const t5Dir = path.join(HOME, 'models', 't5-base');
  fs.mkdirSync(t5Dir, { recursive: true });
  fs.writeFileSync(path.join(t5Dir, 'config.json'), JSON.stringify(T5_BASE_HF_CONFIG, null, 2));
  // No t5-base tokenizer offline: the demo Unigram tokenizer (ids < 261 < vocab_size 32128).
  fs.copyFileSync(path.join(ROOT, 'configs/demo/tokenizer.json'), path.join(t5Dir, 'tokenizer.json'));
  const t5 = T5EncoderModel.fromConfig(T5_BASE_HF_CONFIG);
  // HF's t5-base model.safetensors stores the tied embedding once, as shared.weight.
  await writeRandom(path.join(t5Dir, 'model.safetensors'), t5, t5.parameterManifest({ persistent: true }), (k) => k === 'encoder.embed_tokens.weight');
  return dir;
}

async function testVideo(): Promise<string> {
  const file = path.join(HOME, 'testsrc-10s.mp4');
  if (!fs.existsSync(file)) {
    await runFfmpeg(['-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', file]);
  }
  return file;
}

async function testTone(): Promise<string> {
  const file = path.join(HOME, 'sine-12s.wav');
  if (!fs.existsSync(file)) {
    await runFfmpeg(['-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=12', '-ac', '2', file]);
  }
  return file;
}

function wasmHeapBytes(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? 0;
}

const peaks = { tfBytes: 0, heap: 0 };
function sample(): void {
  peaks.tfBytes = Math.max(peaks.tfBytes, tf.memory().numBytes);
  peaks.heap = Math.max(peaks.heap, wasmHeapBytes());
}
const rss = () => process.resourceUsage().maxRSS * 1024;

const tPrep = performance.now();
const dir = await prepare();
log(`prepared ${dir} in ${((performance.now() - tPrep) / 1000).toFixed(1)} s`);
const backend = await initBackend();
const wd = wasmBackendDetails();
log(`backend ${backend.name} (${backend.threads} threads${wd ? `, BLAS ${wd.blas.available ? 'on' : 'off'}` : ''}), budget ${formatBytes(backend.memoryBudget)}`);

const tLoad = performance.now();
const model = await loadModel(NAME);
const loadMs = performance.now() - tLoad;
sample();
log(`loaded in ${(loadMs / 1000).toFixed(1)} s; plan:\n${model.memoryPlan ? describePlan(model.memoryPlan) : '(none)'}`);
log(`after load: tf ${formatBytes(tf.memory().numBytes)} in ${tf.memory().numTensors} tensors, wasm heap ${formatBytes(wasmHeapBytes())}, max RSS ${formatBytes(rss())}`);

const video = opt('video') ?? (CONFIGS[NAME].sync ? await testVideo() : undefined);
// Every released config has an audio-prompt conditioner (VAE encoder or mel): give it 12 s of sound.
const audioPrompt = opt('audio') ?? (argv.includes('--no-audio') ? undefined : await testTone());
log(`video ${video ?? '(none)'}, audio prompt ${audioPrompt ?? '(silence)'}`);
// The diffusion model's forward, timed during sampling; the last call's arguments are kept (cloned) so
// that the same forward can be rerun bare afterwards: step time / bare forward = the per-step overhead.
const dm = model.wrapper.model as unknown as { forward: (...a: unknown[]) => tf.Tensor };
const forwardOf = dm.forward;
let forwardMs = 0;
let lastArgs: unknown[] = [];
const cloneArg = (a: unknown): unknown =>
  a instanceof tf.Tensor ? tf.keep(a.clone()) : a && typeof a === 'object' && !Array.isArray(a)
    ? Object.fromEntries(Object.entries(a).map(([k, v]) => [k, cloneArg(v)])) : a;
const disposeArg = (a: unknown): void => {
  if (a instanceof tf.Tensor) a.dispose();
  else if (a && typeof a === 'object') Object.values(a).forEach(disposeArg);
};
dm.forward = function (...args: unknown[]) {
  lastArgs.forEach(disposeArg);
  lastArgs = args.map(cloneArg);
  const t0 = performance.now();
  const y = forwardOf.apply(this, args);
  y.dataSync(); // the step waits for it anyway
  forwardMs += performance.now() - t0;
  return y;
};
streamStats.reset();
const res = await generate(model, {
  prompt: 'a dog barking in the rain',
  video,
  audio: audioPrompt,
  steps: STEPS,
  secondsTotal: SECONDS,
  seed: 1,
  onProgress: (p) => {
    sample();
    log(`step ${p.step + 1}/${p.steps}: ${(p.elapsedMs / 1000).toFixed(1)} s, tf ${formatBytes(tf.memory().numBytes)}, heap ${formatBytes(wasmHeapBytes())}`);
  },
});
sample();
peaks.tfBytes = Math.max(peaks.tfBytes, streamStats.peakBytes);
dm.forward = forwardOf;
const uploadsInSampling = streamStats.uploads;
let bareMs = Infinity;
for (let r = 0; r < 2; r++) {
  const t0 = performance.now();
  const y = forwardOf.apply(dm, lastArgs);
  y.dataSync();
  y.dispose();
  bareMs = Math.min(bareMs, performance.now() - t0);
}
lastArgs.forEach(disposeArg);

const audio = res.audio[0];
const expected = Math.round(SECONDS * res.sampleRate);
let finite = true;
let peakAbs = 0;
for (const ch of audio) for (const v of ch) (Number.isFinite(v) ? (peakAbs = Math.max(peakAbs, Math.abs(v))) : (finite = false));
const t = res.timings;
const perStep = t.samplingMs / STEPS;
const rows = [
  ['model', NAME],
  ['plan', `${model.memoryPlan?.mode} (planned peak ${formatBytes(model.memoryPlan?.peak ?? 0)})`],
  ['load', `${(loadMs / 1000).toFixed(1)} s`],
  ['conditioning', `${(t.conditioningMs / 1000).toFixed(1)} s`],
  ['sampling', `${(t.samplingMs / 1000).toFixed(1)} s for ${STEPS} step(s) = ${(perStep / 1000).toFixed(1)} s/step`],
  ['forward share of sampling', `${(forwardMs / 1000).toFixed(1)} s of ${(t.samplingMs / 1000).toFixed(1)} s inside the model's forward`],
  ['bare forward (same args)', `${(bareMs / 1000).toFixed(1)} s: step / bare forward = ${(perStep / bareMs).toFixed(2)}×`],
  ['decoding', `${(t.decodeMs / 1000).toFixed(1)} s`],
  ['total', `${(t.totalMs / 1000).toFixed(1)} s`],
  ['250 steps (extrapolated)', `${((t.conditioningMs + t.decodeMs + 250 * perStep) / 60000).toFixed(0)} min`],
  ['peak tf bytes (sampled)', formatBytes(peaks.tfBytes)],
  ['peak wasm heap', `${formatBytes(peaks.heap)}${peaks.heap > 3.5 * GiB ? '  OVER 3.5 GiB' : ''}`],
  ['peak RSS', formatBytes(rss())],
  ['streamed uploads', `${uploadsInSampling} during conditioning + sampling; ${streamStats.uploads} (${formatBytes(streamStats.uploadedBytes)}, ${(streamStats.uploadMs / 1000).toFixed(1)} s)`],
  ['output', `${audio.length} ch × ${audio[0].length} samples (expected ${expected}) @ ${res.sampleRate} Hz, finite ${finite}, peak ${peakAbs.toFixed(3)}`],
];
console.log(`\n${rows.map(([k, v]) => `${k.padEnd(26)} ${v}`).join('\n')}`);
model.dispose();
log(`after dispose: ${tf.memory().numTensors} tensors`);
const ok = finite && audio.length === 2 && audio[0].length === expected && peaks.heap <= 3.5 * GiB;
if (argv.includes('--clean')) fs.rmSync(dir, { recursive: true, force: true }); // 3–6 GB per model
console.log(ok ? 'SMOKE OK' : 'SMOKE FAILED');
if (!ok) process.exitCode = 1;
