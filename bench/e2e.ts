// Our side of `npm run bench -- --e2e` (run by bench/run.ts in its own process; AUDIOX_BACKEND selects the
// backend): a full-size AudioX-MAF video-to-audio generation with random weights through the real pipeline —
// the model directory laid out by bench/fullsize-model.ts, loadModel, then generate() on a 10 s test video
// with a text prompt and no audio prompt. Prints one JSON line (OursE2e of bench/e2e-plan.ts, plus context).
//
//   npx tsx bench/e2e.ts [--steps 25] [--seconds 10] [--dtype f16|f32] [--home DIR]
import os from 'node:os';
import path from 'node:path';
import { parseE2eArgs, stepTimes, type OursE2e } from './e2e-plan.ts';

const o = parseE2eArgs(process.argv.slice(2), path.join(os.tmpdir(), 'audiox-fullsize'));
process.env.AUDIOX_HOME = path.resolve(o.home);
// Imported after AUDIOX_HOME is set (the hub reads it per call, but keep it obvious).
const { prepareFullsizeModel, testVideo } = await import('./fullsize-model.ts');
const { initBackend } = await import('../src/backend/index.ts');
const { loadModel } = await import('../src/pipeline/load.ts');
const { generate } = await import('../src/pipeline/generate.ts');
const { streamStats } = await import('../src/nn/streaming.ts');

const log = (s: string) => console.error(`[e2e ${(performance.now() / 1000).toFixed(1).padStart(7)} s] ${s}`);
const home = process.env.AUDIOX_HOME;
const prepared = await prepareFullsizeModel(o.model, home, o.dtype, log);
if (!prepared.manifestOk) throw new Error(`${o.model}: our parameter manifest differs from the released one (see above)`);
const video = await testVideo(home);
const info = await initBackend();
const backend = `${info.name} (${info.probes.find((p) => p.name === info.name)?.reason ?? info.tfBackend})`;

const t0 = performance.now();
const model = await loadModel(o.model);
const loadMs = performance.now() - t0;
log(`loaded in ${(loadMs / 1000).toFixed(1)} s (plan ${model.memoryPlan?.mode ?? 'none'})`);
streamStats.reset();
const elapsed: number[] = [];
const res = await generate(model, {
  prompt: 'a dog barking in the rain',
  video,
  steps: o.steps,
  secondsTotal: o.seconds,
  seed: 1,
  onProgress: (p) => {
    elapsed.push(p.elapsedMs);
    log(`step ${p.step + 1}/${p.steps}: ${(p.elapsedMs / 1000).toFixed(1)} s`);
  },
});
const t = res.timings;
const audio = res.audio[0];
const finite = audio.every((ch) => ch.every(Number.isFinite));
model.dispose();
const out: OursE2e & Record<string, unknown> = {
  loadMs,
  conditioningMs: t.conditioningMs,
  samplingMs: t.samplingMs,
  stepMs: stepTimes(elapsed, t.conditioningMs),
  decodeMs: t.decodeMs,
  totalMs: t.totalMs,
  backend,
  threads: info.threads,
  plan: model.memoryPlan?.mode ?? null,
  streamedUploads: streamStats.uploads,
  streamedBytes: streamStats.uploadedBytes,
  streamedMs: streamStats.uploadMs,
  rssBytes: process.resourceUsage().maxRSS * 1024,
  weightFiles: prepared.weightFiles,
  output: { channels: audio.length, samples: audio[0]?.length ?? 0, finite },
};
console.log(JSON.stringify(out));
if (!finite || audio.length !== 2) process.exitCode = 1;
