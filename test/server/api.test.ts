// The HTTP API with an injected job runner (queue mechanics, uploads, limits, traversal, SSE, cancel, failures).
// The real pipeline is exercised by pipeline.test.ts and e2e.test.ts.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFfmpeg } from '../../src/io/ffmpeg.ts';
import { readWavHeader } from '../../src/io/wav.ts';
import type { JobContext, JobResult, RunJob } from '../../src/server/jobs.ts';
import { saveResult } from '../../src/server/outputs.ts';
import { bindWarning, createServer, type AudioxServer } from '../../src/server/server.ts';
import { encodePng, renderSpectrogram } from '../../src/server/render.ts';

const SR = 8000;
let tmp = '';
let outputDir = '';
let videoFile = '';
let audioFile = '';

/** Controls of the fake runner: how long a step takes, whether to fail, a gate to hold jobs running. */
interface Control {
  stepMs: number;
  fail: boolean;
  gate: Promise<void> | null;
  seen: AbortSignal[];
}

function fakeRunner(ctl: Control): RunJob {
  return async (ctx: JobContext): Promise<JobResult> => {
    ctl.seen.push(ctx.signal);
    const steps = ctx.params.steps;
    ctx.progress({ stage: 'sampling', step: 0, steps });
    for (let i = 1; i <= steps; i++) {
      await sleep(ctl.stepMs, undefined, { signal: ctx.signal });
      ctx.progress({ step: i });
      if (ctx.params.previewEvery > 0 && i % ctx.params.previewEvery === 0) {
        ctx.preview(encodePng({ width: 2, height: 1, data: new Uint8Array([i, 0, 0, 0, i, 0]) }));
      }
    }
    const gate = ctl.gate;
    if (gate) {
      await new Promise<void>((resolve, reject) => {
        void gate.then(resolve);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
      });
    }
    if (ctl.fail) throw new Error('the fake model exploded');
    const n = Math.round(ctx.params.secondsTotal * SR);
    const ch = Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / SR));
    const items = await saveResult(outputDir, Array.from({ length: ctx.params.batchSize }, () => [ch, ch]), SR, {
      video: ctx.files.video,
      secondsStart: ctx.params.secondsStart,
      signal: ctx.signal,
    });
    return { items, seed: ctx.params.seed, sampleRate: SR, params: { ...ctx.params } };
  };
}

interface SseEvent {
  type: string;
  data: Record<string, any>;
}

/** Reads the job's event stream until it ends. */
async function collectEvents(base: string, id: string): Promise<SseEvent[]> {
  const r = await fetch(`${base}/api/jobs/${id}/events`);
  expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
  const text = await r.text();
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('event:'))
    .map((b) => {
      const [ev, data] = b.split('\n');
      return { type: ev.slice('event: '.length), data: JSON.parse(data.slice('data: '.length)) };
    });
}

async function waitFor<T>(fn: () => T | undefined | null | false, what: string, ms = 20_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function rawGet(base: string, rawPath: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: rawPath, method: 'GET' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function form(fields: Record<string, string>, files: Record<string, { name: string; data: Uint8Array }> = {}): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.set(k, v);
  for (const [k, f] of Object.entries(files)) fd.set(k, new Blob([Buffer.from(f.data)]), f.name);
  return fd;
}

const ctl: Control = { stepMs: 5, fail: false, gate: null, seen: [] };
let srv: AudioxServer;
let base = '';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-api-test-'));
  outputDir = path.join(tmp, 'out');
  videoFile = path.join(tmp, 'clip.mp4');
  audioFile = path.join(tmp, 'tone.wav');
  await runFfmpeg(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10:duration=2',
    '-c:v', 'mpeg4', '-pix_fmt', 'yuv420p', videoFile]);
  await runFfmpeg(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=300:duration=1', audioFile]);
  srv = await createServer({
    runJob: fakeRunner(ctl),
    models: ['demo', 'AudioX'],
    outputDir,
    tempRoot: tmp,
    uploadLimitBytes: 256 * 1024,
    queueLimit: 1,
  });
  base = await srv.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('audiox serve API', () => {
  it('serves the page, its assets and /api/info', async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('id="gen-form"');
    expect((await fetch(`${base}/static/app.js`)).status).toBe(200);
    const info = await (await fetch(`${base}/api/info`)).json();
    expect(info.models).toEqual(['demo', 'AudioX']);
    expect(info.examples.map((e: { task: string }) => e.task)).toEqual(['T2A', 'T2M', 'V2A', 'V2M', 'TV2A', 'TV2M']);
    expect(info.limits.uploadLimitBytes).toBe(256 * 1024);
  });

  it('runs a JSON job: progress and previews over SSE, result files served, parameters echoed', async () => {
    const r = await fetch(`${base}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a tone', steps: 6, secondsTotal: 0.5, seed: 42, previewEvery: 2, batchSize: 2 }),
    });
    expect(r.status).toBe(202);
    const job = await r.json();
    expect(job.params).toMatchObject({ prompt: 'a tone', steps: 6, seed: 42, sampler: 'dpmpp-3m-sde', cfgScale: 7 });
    const events = await collectEvents(base, job.id);
    const steps = events.filter((e) => e.type === 'progress').map((e) => e.data.progress.step);
    expect(steps).toContain(6);
    const last = events.at(-1)!;
    expect(last.type).toBe('done');
    // The stream may open after the first preview on a loaded machine; the job's own count is exact.
    expect(last.data.previews).toBe(3);
    expect(events.filter((e) => e.type === 'preview').length).toBeLessThanOrEqual(3);
    expect(last.data.result.seed).toBe(42);
    expect(last.data.result.items).toHaveLength(2);
    const item = last.data.result.items[0];
    expect(item.audio).toMatch(/^audiox-\d{8}-\d{6}-\d{3}(-\d+)?-1\.wav$/);
    const wav = await fetch(`${base}${item.urls.audio}`);
    expect(wav.status).toBe(200);
    expect(wav.headers.get('content-type')).toBe('audio/wav');
    expect(readWavHeader(path.join(outputDir, item.audio))).toMatchObject({ sampleRate: SR, channels: 2, bitsPerSample: 16 });
    const part = await fetch(`${base}${item.urls.audio}`, { headers: { range: 'bytes=0-11' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).toString('latin1', 8, 12)).toBe('WAVE');
    const png = await fetch(`${base}${item.urls.spectrogram}`);
    expect(png.headers.get('content-type')).toBe('image/png');
    const dl = await fetch(`${base}${item.urls.audio}?download=1`);
    expect(dl.headers.get('content-disposition')).toContain('attachment');
    const preview = await fetch(`${base}/api/jobs/${job.id}/preview.png`);
    expect(preview.status).toBe(200);
    expect((await (await fetch(`${base}/api/jobs/${job.id}`)).json()).status).toBe('done');
  });

  it('multipart job with a video: uploads stored under generated names, re-muxed mp4 returned, uploads removed', async () => {
    const fd = form(
      { prompt: 'x', steps: '2', secondsTotal: '1', seed: '', model: 'demo' },
      { video: { name: '../../evil name.mp4', data: fs.readFileSync(videoFile) }, audio: { name: 'a.wav', data: fs.readFileSync(audioFile) } },
    );
    const r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
    expect(r.status).toBe(202);
    const job = await r.json();
    expect(Number.isInteger(job.params.seed)).toBe(true);
    const uploads = fs.readdirSync(path.join(srv.privateDir, 'uploads'));
    for (const u of uploads) expect(u).toMatch(/^[0-9a-f-]{36}(\.[a-z0-9]+)?$/);
    const events = await collectEvents(base, job.id);
    const done = events.at(-1)!;
    expect(done.type).toBe('done');
    const mp4 = done.data.result.items[0].urls.video;
    expect(mp4).toMatch(/\.mp4$/);
    expect((await fetch(`${base}${mp4}`)).headers.get('content-type')).toBe('video/mp4');
    expect(fs.readdirSync(path.join(srv.privateDir, 'uploads'))).toEqual([]);
  });

  it('oversize upload → 413 with a clear message, nothing left behind', async () => {
    const big = new Uint8Array(256 * 1024 + 1);
    const r = await fetch(`${base}/api/generate`, { method: 'POST', body: form({ steps: '2' }, { video: { name: 'big.mp4', data: big } }) });
    expect(r.status).toBe(413);
    expect((await r.json()).error).toMatch(/video upload is larger than the upload limit of 256 KB/);
    expect(fs.readdirSync(path.join(srv.privateDir, 'uploads'))).toEqual([]);
  });

  it('bad media → 400 naming the field', async () => {
    const junk = new TextEncoder().encode('this is not a video at all'.repeat(10));
    let r = await fetch(`${base}/api/generate`, { method: 'POST', body: form({}, { video: { name: 'v.mp4', data: junk } }) });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/video upload is not a readable media file/);
    r = await fetch(`${base}/api/generate`, { method: 'POST', body: form({}, { audio: { name: 'v.mp4', data: fs.readFileSync(videoFile) } }) });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/audio prompt upload has no audio stream/);
    r = await fetch(`${base}/api/generate`, { method: 'POST', body: form({}, { other: { name: 'v.mp4', data: junk } }) });
    expect(r.status).toBe(400);
    expect(fs.readdirSync(path.join(srv.privateDir, 'uploads'))).toEqual([]);
  });

  it('bad parameters → 400 with the reason', async () => {
    const post = (body: unknown) =>
      fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const cases: [unknown, RegExp][] = [
      [{ steps: 0 }, /"steps" must be an integer in \[1, 1000\], got 0/],
      [{ steps: 2.5 }, /"steps" must be an integer/],
      [{ sampler: 'euler-magic' }, /"sampler" must be one of/],
      [{ model: 'nope' }, /Unknown model "nope"/],
      [{ seed: 'abc' }, /"seed" must be an integer/],
      [{ sigmaMin: 5, sigmaMax: 1 }, /must be greater than "sigmaMin"/],
      [{ stepz: 3 }, /Unknown parameter\(s\): stepz/],
      [{ inpaintStart: 10 }, /Inpainting needs both "inpaintStart" and "inpaintEnd"/],
      [{ inpaintStart: 10, inpaintEnd: 120 }, /"inpaintEnd" must be in \[0, 100\], got 120/],
      [{ fullLength: 'maybe' }, /"fullLength" must be true or false/],
      [[1, 2], /multipart form or a JSON object/],
    ];
    for (const [body, re] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect((await r.json()).error).toMatch(re);
    }
  });

  it('path traversal and odd names never leave the output directory', async () => {
    fs.writeFileSync(path.join(tmp, 'secret.txt'), 'secret');
    fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(outputDir, 'link.wav'));
    fs.mkdirSync(path.join(outputDir, 'sub.wav'));
    for (const p of [
      '/outputs/..%2fsecret.txt',
      '/outputs/..%2F..%2Fetc%2Fpasswd',
      '/outputs/%2e%2e%2fsecret.txt',
      '/outputs/../secret.txt',
      '/outputs/..',
      '/outputs/.hidden',
      '/outputs/link.wav',
      '/outputs/sub.wav',
      '/outputs/%00.wav',
      '/outputs/..%5csecret.txt',
      '/static/..%2fserver.ts',
      '/static/..%2f..%2f..%2fpackage.json',
    ]) {
      const code = await rawGet(base, p);
      expect([400, 404], p).toContain(code);
    }
    const r = await fetch(`${base}/outputs/..%2fsecret.txt`);
    expect(await r.text()).not.toContain('secret"');
  });

  it('queue: one job at a time, "position N" while waiting, 429 past the bound, cancel frees the slot', async () => {
    let open!: () => void;
    ctl.gate = new Promise((r) => (open = r));
    const post = () =>
      fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ steps: 1, secondsTotal: 0.1 }) });
    const a = await (await post()).json();
    await waitFor(() => srv.queue.get(a.id)?.status === 'running', 'job A running');
    const aSignal = ctl.seen.at(-1)!;
    const b = await post();
    expect(b.status).toBe(202);
    const bj = await b.json();
    expect(bj).toMatchObject({ status: 'queued', position: 1 });
    const c = await post();
    expect(c.status).toBe(429);
    expect((await c.json()).error).toMatch(/busy: 1 job\(s\) are already waiting/);

    // Cancel the queued job: dropped at once, the slot opens for another submit.
    const del = await fetch(`${base}/api/jobs/${bj.id}`, { method: 'DELETE' });
    expect((await del.json()).status).toBe('cancelled');
    const d = await post();
    expect(d.status).toBe(202);
    const dj = await d.json();

    // Cancel the running job: its signal fires, it ends as cancelled, and D starts.
    expect((await fetch(`${base}/api/jobs/${a.id}`, { method: 'DELETE' })).status).toBe(200);
    const aEvents = await collectEvents(base, a.id);
    expect(aEvents.at(-1)!.type).toBe('cancelled');
    expect(aSignal.aborted).toBe(true);
    await waitFor(() => srv.queue.get(dj.id)?.status === 'running', 'job D running');
    open();
    ctl.gate = null;
    expect((await collectEvents(base, dj.id)).at(-1)!.type).toBe('done');
    expect((await fetch(`${base}/api/jobs/${a.id}`, { method: 'DELETE' })).status).toBe(409);
    expect((await fetch(`${base}/api/jobs/nope`, { method: 'DELETE' })).status).toBe(404);
  });

  it('cancels a running job mid-sampling', async () => {
    ctl.stepMs = 50;
    const r = await fetch(`${base}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ steps: 200, secondsTotal: 0.1 }),
    });
    const job = await r.json();
    await waitFor(() => (srv.queue.get(job.id)?.progress?.step ?? 0) >= 2, 'two steps');
    const stepAtCancel = srv.queue.get(job.id)!.progress!.step;
    await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE' });
    const events = await collectEvents(base, job.id);
    expect(events.at(-1)!.type).toBe('cancelled');
    // Counted in steps, not seconds: the sampler stops at the next step boundary.
    expect(events.at(-1)!.data.progress.step).toBeLessThanOrEqual(stepAtCancel + 2);
    ctl.stepMs = 5;
  });

  it('a failing job is reported and the server keeps serving', async () => {
    ctl.fail = true;
    const post = () =>
      fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ steps: 1, secondsTotal: 0.1 }) });
    const bad = await (await post()).json();
    const ev = await collectEvents(base, bad.id);
    expect(ev.at(-1)).toMatchObject({ type: 'failed', data: { error: 'the fake model exploded' } });
    ctl.fail = false;
    const good = await (await post()).json();
    expect((await collectEvents(base, good.id)).at(-1)!.type).toBe('done');
  });

  it('outputs are never overwritten (same timestamp → numbered stem)', async () => {
    const ch = new Float32Array(800);
    const when = new Date(2024, 0, 2, 3, 4, 5, 6);
    const { reserveOutputs } = await import('../../src/server/files.ts');
    const a = reserveOutputs(outputDir, ['.wav', '.png'], when);
    const b = reserveOutputs(outputDir, ['.wav', '.png'], when);
    expect(a).toEqual(['audiox-20240102-030405-006.wav', 'audiox-20240102-030405-006.png']);
    expect(b).toEqual(['audiox-20240102-030405-006-2.wav', 'audiox-20240102-030405-006-2.png']);
    const items = await saveResult(outputDir, [[ch]], SR);
    expect(fs.statSync(path.join(outputDir, items[0].audio)).size).toBeGreaterThan(44);
  });

  it('refuses cross-origin writes and foreign Host headers (DNS rebinding)', async () => {
    const u = new URL(base);
    const send = (method: string, urlPath: string, headers: Record<string, string>): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: u.hostname, port: u.port, path: urlPath, method, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(method === 'POST' ? '{"steps":1}' : undefined);
      });
    const json = { 'content-type': 'application/json' };
    expect(await send('POST', '/api/generate', { ...json, origin: 'https://evil.example' })).toBe(403);
    expect(await send('POST', '/api/generate', { ...json, origin: 'null' })).toBe(403);
    expect(await send('DELETE', '/api/jobs/x', { origin: 'http://localhost:1' })).toBe(403);
    expect(await send('GET', '/api/info', { host: `evil.example:${u.port}` })).toBe(403);
    expect(await send('GET', '/api/info', { host: `localhost:${u.port}` })).toBe(200);
    expect(await send('DELETE', '/api/jobs/x', { origin: base })).toBe(404);
  });

  it('warns loudly only for non-loopback hosts', () => {
    expect(bindWarning('127.0.0.1')).toBeNull();
    expect(bindWarning('::1')).toBeNull();
    expect(bindWarning('localhost')).toBeNull();
    expect(bindWarning('0.0.0.0')).toMatch(/WARNING: audiox serve is bound to 0\.0\.0\.0/);
  });
});

describe('render', () => {
  it('encodes a valid PNG and puts a tone in the right spectrogram row', async () => {
    const sr = 16000;
    const x = Float32Array.from({ length: sr }, (_, i) => Math.sin((2 * Math.PI * 1000 * i) / sr));
    const img = renderSpectrogram([x], sr, { width: 16, height: 64 });
    const png = encodePng(img);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(16);
    expect(png.readUInt32BE(20)).toBe(64);
    // Brightest row of the middle column ↔ 1 kHz on the mel axis.
    const col = 8;
    let best = 0;
    let bestV = -1;
    for (let y = 0; y < 64; y++) {
      const o = (y * 16 + col) * 3;
      const v = img.data[o] + img.data[o + 1] + img.data[o + 2];
      if (v > bestV) [best, bestV] = [y, v];
    }
    const mel = (hz: number) => 2595 * Math.log10(1 + hz / 700);
    const expectedRow = 63 - Math.floor((mel(1000) / mel(8000)) * 64);
    expect(Math.abs(best - expectedRow)).toBeLessThanOrEqual(1);
  });
});
