// A bounded storm against `audiox serve` on the demo model (issue 13, "keep it at zero"): waves of concurrent
// submits past the queue bound, cancels at every stage, uploads whose connection dies, SSE clients that vanish
// and malformed requests, all at once. Afterwards the server answers, the worker's tensor count and the temp
// directory are back to their baseline, and the output directory holds exactly the files of the jobs that finished.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFfmpeg } from '../../src/io/ffmpeg.ts';
import type { JobContext, RunJob } from '../../src/server/jobs.ts';
import { createPipelineRunner, type PipelineRunner } from '../../src/server/pipeline-runner.ts';
import { createServer, type AudioxServer } from '../../src/server/server.ts';

const WAVES = 4;
const SUBMITS_PER_WAVE = 6;
const STAGES = ['queued', 'loading model', 'conditioning', 'sampling', 'decoding', 'writing', null] as const;
type Stage = (typeof STAGES)[number];

let tmp = '';
let tempRoot = '';
let outputDir = '';
let audioFile = '';
let runner: PipelineRunner;
let srv: AudioxServer;
let base = '';

/** Where each accepted job is to be cancelled (null: never). */
const cancelAt = new Map<string, Stage>();
const runJob: RunJob = (ctx: JobContext) =>
  runner.runJob({
    ...ctx,
    progress: (p) => {
      ctx.progress(p);
      if (p.stage !== undefined && cancelAt.get(ctx.id) === p.stage) srv.queue.cancel(ctx.id);
    },
  });

/** Deterministic pseudo-random numbers (so a failure can be replayed). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const listing = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).sort();

function rawRequest(method: string, urlPath: string, headers: Record<string, string>, body?: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: urlPath, method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** A multipart upload that sends part of a file and then drops the connection. */
function abortedUpload(afterMs: number): Promise<void> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: '/api/generate', method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=storm', 'content-length': '500000' },
    });
    req.on('error', () => resolve());
    req.write('--storm\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n');
    req.write(fs.readFileSync(audioFile).subarray(0, 2000));
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}

/** An SSE client that goes away after `afterMs` (or stays to the end when afterMs is null). */
function sseClient(id: string, afterMs: number | null): Promise<void> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.get({ host: u.hostname, port: u.port, path: `/api/jobs/${id}/events` }, (res) => {
      res.resume();
      res.on('end', () => resolve());
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    if (afterMs !== null) {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, afterMs);
    }
  });
}

async function submit(i: number, rand: () => number): Promise<string | null> {
  const fields = { prompt: `storm ${i}`, steps: String(2 + (i % 3)), secondsTotal: '1', seed: String(i), previewEvery: String(i % 2) };
  let r: Response;
  if (i % 3 === 0) {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.set(k, v);
    fd.set('audio', new Blob([new Uint8Array(fs.readFileSync(audioFile))]), 'a.wav');
    r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
  } else {
    r = await fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) });
  }
  const body = await r.json();
  if (r.status === 429) return null;
  expect(r.status, JSON.stringify(body)).toBe(202);
  const stage = STAGES[Math.floor(rand() * STAGES.length)];
  cancelAt.set(body.id, stage);
  if (stage === 'queued') await fetch(`${base}/api/jobs/${body.id}`, { method: 'DELETE' });
  return body.id as string;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-storm-test-'));
  tempRoot = path.join(tmp, 'temp');
  fs.mkdirSync(tempRoot);
  outputDir = path.join(tmp, 'out');
  audioFile = path.join(tmp, 'tone.wav');
  await runFfmpeg(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=300:duration=1', audioFile]);
  runner = createPipelineRunner({ outputDir });
  await runner.preload('demo');
  srv = await createServer({ runJob, validate: runner.validate, models: ['demo'], outputDir, tempRoot, queueLimit: 2 });
  base = await srv.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await srv?.close();
  await runner?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('storm', () => {
  it('leaves the server answering, no tensors, no temp files, and exactly the finished jobs’ outputs', async () => {
    // A warm-up job builds the model's lazily created constants; then the baselines.
    const warm = await submit(1, () => 0.99); // stage null: runs to the end
    await srv.queue.idle();
    const baselineTensors = (await runner.memory()).numTensors;
    const baselineTemp = listing(tempRoot);
    const accepted: string[] = [warm!];
    let refused = 0;

    const rand = lcg(1234);
    const chaos: Promise<unknown>[] = [];
    for (let wave = 0; wave < WAVES; wave++) {
      const ids = await Promise.all(Array.from({ length: SUBMITS_PER_WAVE }, (_, k) => submit(wave * SUBMITS_PER_WAVE + k + 2, rand)));
      for (const id of ids) {
        if (!id) {
          refused++;
          continue;
        }
        accepted.push(id);
        chaos.push(sseClient(id, rand() < 0.7 ? Math.floor(rand() * 400) : null));
        // A late cancel at a random time, racing whatever stage the job is in.
        if (rand() < 0.3) chaos.push(sleep(Math.floor(rand() * 1500)).then(() => fetch(`${base}/api/jobs/${id}`, { method: 'DELETE' })));
      }
      chaos.push(abortedUpload(Math.floor(rand() * 200)), abortedUpload(Math.floor(rand() * 200)));
      chaos.push(
        rawRequest('POST', '/api/generate', { 'content-type': 'multipart/form-data', 'content-length': '5' }, 'xxxxx').then((s) => expect(s).toBe(400)),
        rawRequest('GET', '/api/info', {}).then((s) => expect(s).toBe(200)),
      );
      await sleep(200 + Math.floor(rand() * 600));
    }
    await Promise.all(chaos);
    for (let i = 0; i < 600 && !(srv.queue.stats.running === null && srv.queue.stats.waiting === 0); i++) await sleep(100);
    await srv.queue.idle();

    expect(refused, 'the storm went past the queue bound').toBeGreaterThan(0);
    const info = await fetch(`${base}/api/info`);
    expect(info.status).toBe(200);
    expect((await info.json()).queue).toMatchObject({ running: null, waiting: 0 });

    const jobs = await Promise.all(accepted.map(async (id) => (await fetch(`${base}/api/jobs/${id}`)).json()));
    const statuses = jobs.map((j) => j.status);
    for (const j of jobs) {
      expect(['done', 'cancelled'], `${j.id}: ${j.status} ${j.error ?? ''}`).toContain(j.status);
      if (j.status !== 'done') expect(j.result).toBeNull();
    }
    expect(accepted.length, statuses.join(', ')).toBeGreaterThan(3);
    expect(statuses.filter((s) => s === 'cancelled').length, statuses.join(', ')).toBeGreaterThan(0);

    const finishedFiles = jobs
      .filter((j) => j.status === 'done')
      .flatMap((j) => j.result.items.flatMap((it: Record<string, unknown>) => Object.values(it).filter((v) => typeof v === 'string')));
    expect(listing(outputDir)).toEqual([...finishedFiles].sort());
    // Uploads of aborted requests may still be closing for a moment.
    for (let i = 0; i < 100 && listing(path.join(srv.privateDir, 'uploads')).length > 0; i++) await sleep(50);
    expect(listing(path.join(srv.privateDir, 'uploads'))).toEqual([]);
    expect(listing(tempRoot)).toEqual(baselineTemp);
    expect((await runner.memory()).numTensors).toBe(baselineTensors);

    // And a job after the storm runs normally.
    const after = await submit(1000, () => 0.99);
    await srv.queue.idle();
    const done = await (await fetch(`${base}/api/jobs/${after}`)).json();
    expect(done.status, done.error ?? '').toBe('done');
    const afterFiles = Object.values(done.result.items[0] as Record<string, unknown>).filter((v) => typeof v === 'string');
    expect(listing(outputDir)).toEqual([...finishedFiles, ...afterFiles].sort());
  }, 600_000);
});
