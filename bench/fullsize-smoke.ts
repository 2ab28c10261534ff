// Full-size smoke test of the real-model path with random weights, offline:
// lays out what `audiox download <model>` produces (config.json, model.safetensors, synchformer.safetensors,
// t5-base/) under a temporary AUDIOX_HOME, then runs loadModel + generate like `audiox generate --model`.
//
//   npx tsx bench/fullsize-smoke.ts [AudioX|AudioX-MAF|AudioX-MAF-MMDiT] [--steps 1] [--seconds 2]
//       [--video f] [--audio f | --no-audio] [--home DIR] [--dtype f16|f32] [--clean]
//
// Files are kept (and reused) under --home (default $TMPDIR/audiox-fullsize) unless --clean. The layout and
// the random weights: bench/fullsize-model.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

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
process.env.AUDIOX_HOME = HOME;

// Imported after AUDIOX_HOME is set (the hub reads it per call, but keep it obvious).
const { FULLSIZE_MODELS, isFullsizeModel, prepareFullsizeModel, testTone, testVideo } = await import('./fullsize-model.ts');
const { initBackend, formatBytes, wasmBackendDetails } = await import('../src/backend/index.ts');
const { loadModel } = await import('../src/pipeline/load.ts');
const { describePlan } = await import('../src/models/memory.ts');
const { generate } = await import('../src/pipeline/generate.ts');
const { streamStats } = await import('../src/nn/streaming.ts');
if (!isFullsizeModel(NAME)) throw new Error(`unknown model ${NAME}: one of ${Object.keys(FULLSIZE_MODELS).join(', ')}`);

const GiB = 1024 ** 3;
const log = (s: string) => console.log(`[${(performance.now() / 1000).toFixed(1).padStart(7)} s] ${s}`);

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
const prepared = await prepareFullsizeModel(NAME, HOME, DTYPE, log);
if (!prepared.manifestOk) process.exitCode = 1;
const dir = prepared.dir;
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

const video = opt('video') ?? (FULLSIZE_MODELS[NAME].sync ? await testVideo(HOME) : undefined);
// Every released config has an audio-prompt conditioner (VAE encoder or mel): give it 12 s of sound.
const audioPrompt = opt('audio') ?? (argv.includes('--no-audio') ? undefined : await testTone(HOME));
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
