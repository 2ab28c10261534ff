// The server on the real pipeline (built-in demo model through generate()): several jobs over the API leave the
// tensor count unchanged, a cancelled job stops the sampler, and `audiox serve` starts and answers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWavHeader, writeWav } from '../../src/io/wav.ts';
import { createPipelineRunner, type PipelineRunner } from '../../src/server/pipeline-runner.ts';
import { createServer, type AudioxServer } from '../../src/server/server.ts';
import { REPO } from '../helpers.ts';

let tmp = '';
let runner: PipelineRunner;
let srv: AudioxServer;
let base = '';

async function runJob(body: Record<string, unknown>): Promise<Record<string, any>> {
  const r = await fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(r.status).toBe(202);
  const job = await r.json();
  await (await fetch(`${base}${job.urls.events}`)).text(); // ends with the job
  return (await fetch(`${base}/api/jobs/${job.id}`)).json();
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-pipe-test-'));
  runner = createPipelineRunner({ outputDir: path.join(tmp, 'out') });
  srv = await createServer({ runJob: runner.runJob, validate: runner.validate, models: ['demo'], outputDir: path.join(tmp, 'out'), tempRoot: tmp });
  base = await srv.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await srv?.close();
  await runner?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('server on the demo model', () => {
  it('runs jobs with the real pipeline and leaks no tensors across jobs', async () => {
    const first = await runJob({ prompt: 'rain', steps: 4, secondsTotal: 1, seed: 7, previewEvery: 2 });
    expect(first.status, first.error).toBe('done');
    const wav = path.join(tmp, 'out', first.result.items[0].audio);
    expect(readWavHeader(wav)).toMatchObject({ sampleRate: 44100, channels: 2, bitsPerSample: 16 });
    expect(readWavHeader(wav).duration).toBeCloseTo(1, 1);
    expect(first.result.seed).toBe(7);
    expect(first.previews).toBeGreaterThan(0);
    const counts: number[] = [];
    for (const body of [
      { prompt: 'wind', steps: 3, secondsTotal: 1, previewEvery: 1 },
      { prompt: 'birds', steps: 3, secondsTotal: 1, sampler: 'k-euler', batchSize: 2 },
      { prompt: 'x', steps: 3, secondsTotal: 1, cfgScale: 1, cfgRescale: 0.5 },
    ]) {
      const job = await runJob(body);
      expect(job.status, job.error).toBe('done');
      counts.push((await runner.memory()).numTensors);
    }
    expect(new Set(counts).size, `numTensors after each job: ${counts.join(', ')}`).toBe(1);
  }, 300_000);

  it('same seed and parameters → the same audio', async () => {
    const a = await runJob({ prompt: 'bells', steps: 3, secondsTotal: 0.5, seed: 123 });
    const b = await runJob({ ...a.params, model: a.model });
    const read = (j: Record<string, any>) => fs.readFileSync(path.join(tmp, 'out', j.result.items[0].audio)).subarray(44);
    expect(Buffer.compare(read(a), read(b))).toBe(0);
  });

  it('requests beyond the model\'s limits are refused with 400 before queueing', async () => {
    const r = await fetch(`${base}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secondsTotal: 11, windowOverlap: 5 }),
    });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/window overlap must be at most half the model's window \(4\.97 s\)/);
    expect(srv.queue.stats.waiting).toBe(0);
  });

  it('long-form over the API: seconds beyond the window are made window by window into one WAV', async () => {
    const j = await runJob({ prompt: 'rain', steps: 2, secondsTotal: 12, windowOverlap: 2, seed: 5 });
    expect(j.status, j.error).toBe('done');
    expect(readWavHeader(path.join(tmp, 'out', j.result.items[0].audio))).toMatchObject({ sampleRate: 44100, channels: 2, numFrames: 12 * 44100 });
    expect(j.result.params).toMatchObject({ windows: 2, seconds: 12 });
    expect(j.result.items[0].spectrogram).toMatch(/\.png$/);
  }, 600_000);

  it('inpainting over the API: the sliders (percent) with an init audio upload; fullLength keeps the window', async () => {
    const tone = path.join(tmp, 'tone.wav');
    const s = new Float32Array(44100).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 330 * i) / 44100));
    await writeWav(tone, [s, s], 44100);
    const fd = new FormData();
    const fields = { prompt: 'x', steps: '2', secondsTotal: '1', seed: '5', inpaintStart: '20', inpaintEnd: '60', inpaintSoftnessL: '5', inpaintMarination: '0.1', fullLength: 'on' };
    for (const [k, v] of Object.entries(fields)) fd.set(k, v);
    fd.set('initAudio', new Blob([fs.readFileSync(tone)]), 'init.wav');
    const r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
    expect(r.status).toBe(202);
    const job = await r.json();
    expect(job.params).toMatchObject({ inpaintStart: 20, inpaintEnd: 60, inpaintSoftnessL: 5, inpaintMarination: 0.1, fullLength: true });
    await (await fetch(`${base}${job.urls.events}`)).text();
    const done = await (await fetch(`${base}/api/jobs/${job.id}`)).json();
    expect(done.status, done.error).toBe('done');
    expect(done.result.params.inpaint).toMatchObject({ maskStart: 20, maskEnd: 60, softnessL: 5, softnessR: 0, pasteTo: 100 });
    expect(done.result.params.initNoiseLevel).toBeNull();
    expect(readWavHeader(path.join(tmp, 'out', done.result.items[0].audio)).numFrames).toBe(215 * 2048);
    // Inpainting without init audio is refused before queueing.
    const bad = await fetch(`${base}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inpaintStart: 10, inpaintEnd: 50 }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/inpainting needs init audio/);
  });

  it('cancelling a running job aborts the sampler', async () => {
    const before = (await runner.memory()).numTensors;
    const r = await fetch(`${base}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ steps: 500, secondsTotal: 1 }),
    });
    const job = await r.json();
    for (let i = 0; i < 2000 && (srv.queue.get(job.id)?.progress?.step ?? 0) < 2; i++) await new Promise((res) => setTimeout(res, 20));
    await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE' });
    await srv.queue.idle();
    const snap = srv.queue.get(job.id)!.snapshot();
    expect(snap.status).toBe('cancelled');
    expect(snap.progress!.step).toBeLessThan(500);
    expect((await runner.memory()).numTensors).toBe(before);
  });
});

describe('audiox serve (CLI)', () => {
  it('starts on 127.0.0.1, prints its URL, serves the page and stops on SIGTERM', async () => {
    const out = path.join(tmp, 'cli-out');
    const child = spawn(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), 'serve', '--model', 'demo', '--port', '0', '--no-preload', '--output-dir', out], {
      cwd: REPO,
      env: { ...process.env, AUDIOX_BACKEND: process.env.AUDIOX_BACKEND ?? 'wasm' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no URL printed:\n${log}`)), 60_000);
        child.stdout.on('data', () => {
          const m = /audiox serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
          if (m) {
            clearTimeout(t);
            resolve(m[1]);
          }
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${log}`)));
      });
      const info = await (await fetch(`${url}/api/info`)).json();
      expect(info.models).toContain('demo');
      expect(info.defaultModel).toBe('demo');
      expect(log).not.toMatch(/WARNING/);
    } finally {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });
});
