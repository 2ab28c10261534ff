// Hostile and careless requests against the HTTP API (issue 13), with an injected fake runner: byte ranges,
// broken multipart bodies, upload errors that must not reveal server paths, media that only pretend to be
// decodable, and cancellations that land while a job writes its results. Every hostile input is generated here.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFfmpeg } from '../../src/io/ffmpeg.ts';
import type { JobContext, JobResult, RunJob } from '../../src/server/jobs.ts';
import { saveResult } from '../../src/server/outputs.ts';
import { pngChunk } from '../../src/server/render.ts';
import { createServer, type AudioxServer } from '../../src/server/server.ts';

const SR = 8000;
let tmp = '';
let outputDir = '';
let srv: AudioxServer;
let base = '';

/** Hooks of the fake runner: called before the results are written; awaited after (the job ignores its signal). */
const ctl: { beforeWrite: ((ctx: JobContext) => void) | null; afterWrite: (() => Promise<void>) | null } = { beforeWrite: null, afterWrite: null };

const runner: RunJob = async (ctx: JobContext): Promise<JobResult> => {
  ctx.progress({ stage: 'sampling', step: 1, steps: 1 });
  const ch = new Float32Array(Math.round(ctx.params.secondsTotal * SR));
  ctl.beforeWrite?.(ctx);
  const items = await saveResult(outputDir, [[ch]], SR, { signal: ctx.signal });
  // A runner that finishes its work although the job was cancelled meanwhile: the queue must drop the files.
  if (ctl.afterWrite) await ctl.afterWrite();
  return { items, seed: ctx.params.seed, sampleRate: SR, params: {} };
};

/** A raw HTTP request (fetch would fix up headers and bodies that these tests must send broken). */
function raw(
  method: string,
  urlPath: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: urlPath, method, headers }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A 270-byte PNG whose header declares width × height RGB pixels (only one row of data follows). */
function hugePng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const row = zlib.deflateSync(Buffer.alloc(Math.min(width, 65535) * 3 + 1));
  return Buffer.concat([sig, pngChunk('IHDR', ihdr), pngChunk('IDAT', row), pngChunk('IEND', Buffer.alloc(0))]);
}

const post = (body: unknown): Promise<Response> =>
  fetch(`${base}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

function uploads(): string[] {
  return fs.readdirSync(path.join(srv.privateDir, 'uploads'));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-hostile-test-'));
  outputDir = path.join(tmp, 'out');
  srv = await createServer({ runJob: runner, models: ['demo'], outputDir, tempRoot: tmp, uploadLimitBytes: 256 * 1024, queueLimit: 2 });
  base = await srv.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await srv?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('byte ranges (RFC 9110 §14)', () => {
  const name = 'ranges.wav';
  const size = 1000;
  beforeAll(() => fs.writeFileSync(path.join(outputDir, name), Buffer.alloc(size, 7)));
  const get = (range: string, extra: Record<string, string> = {}) => raw('GET', `/outputs/${name}`, { range, ...extra });

  it('unsatisfiable ranges → 416 with Content-Range: bytes */size', async () => {
    for (const range of ['bytes=5-1', 'bytes=1000-', 'bytes=5000-6000', 'bytes=-0', 'bytes=99999999999999999999999-', 'bytes=1000-1,2000-']) {
      const r = await get(range);
      expect(r.status, range).toBe(416);
      expect(r.headers['content-range'], range).toBe(`bytes */${size}`);
      expect(JSON.parse(r.body).error, range).toMatch(/cannot be satisfied/);
    }
  });

  it('malformed or foreign ranges are ignored → 200 with the whole file', async () => {
    for (const range of ['bytes=x-', 'bytes=', 'bytes=-', 'bytes=1-2-3', 'items=0-1', 'bytes 0-1', '=0-1', 'bytes=0x10-', 'bytes=--5', 'bytes=0-1,,', 'x'.repeat(5000)]) {
      const r = await get(range);
      expect(r.status, range).toBe(200);
      expect(r.body.length, range).toBe(size);
    }
    // Several ranges are not combined into multipart/byteranges: the whole file.
    const multi = await get('bytes=0-1, 5-6');
    expect(multi.status).toBe(200);
    // If-Range cannot match (no validators are sent): the whole file, as RFC 9110 §13.1.5 asks.
    expect((await get('bytes=0-1', { 'if-range': '"abc"' })).status).toBe(200);
  });

  it('satisfiable single ranges → 206 (clamped to the file, case-insensitive unit)', async () => {
    const cases: [string, string, number][] = [
      ['bytes=0-9', 'bytes 0-9/1000', 10],
      ['bytes=990-5000', 'bytes 990-999/1000', 10],
      ['bytes=-10', 'bytes 990-999/1000', 10],
      ['bytes=-5000', 'bytes 0-999/1000', 1000],
      ['Bytes = 10-19 ', 'bytes 10-19/1000', 10],
      ['bytes=999-', 'bytes 999-999/1000', 1],
    ];
    for (const [range, cr, len] of cases) {
      const r = await get(range);
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range'], range).toBe(cr);
      expect(r.body.length, range).toBe(len);
    }
  });
});

describe('broken multipart bodies → 400', () => {
  const part = (boundary: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nrain\r\n--${boundary}\r\n` +
    `Content-Disposition: form-data; name="audio"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF....WAVE`;

  it('no boundary, an empty boundary, truncated parts and garbage are refused with a clear message', async () => {
    const cases: [string, string, RegExp][] = [
      ['multipart/form-data', part('xyz'), /multipart.*boundary/i],
      ['multipart/form-data; boundary=', part('xyz'), /multipart.*boundary/i],
      ['multipart/form-data; boundary=""', part('xyz'), /multipart.*boundary/i],
      ['multipart/form-data; boundary=xyz', part('xyz'), /multipart.*(incomplete|truncated|ended)/i], // never closed
      ['multipart/form-data; boundary=xyz', `--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nrai`, /multipart/i],
      ['multipart/form-data; boundary=xyz', '\x00\xff garbage garbage \r\n\r\n\x01', /multipart/i],
      ['multipart/form-data; boundary=xyz', '', /multipart/i],
      [`multipart/form-data; boundary=${'b'.repeat(200)}`, part('b'.repeat(200)), /multipart/i],
    ];
    for (const [type, body, re] of cases) {
      const r = await raw('POST', '/api/generate', { 'content-type': type, 'content-length': String(Buffer.byteLength(body, 'latin1')) }, Buffer.from(body, 'latin1'));
      expect(r.status, `${type} / ${JSON.stringify(body.slice(0, 40))}: ${r.body}`).toBe(400);
      expect(JSON.parse(r.body).error, type).toMatch(re);
    }
    expect(uploads()).toEqual([]);
    expect(srv.queue.stats).toMatchObject({ running: null, waiting: 0 });
    // The server still works.
    expect((await raw('GET', '/api/info', {})).status).toBe(200);
  });

  it('an upload whose connection dies mid-file leaves nothing behind', async () => {
    const u = new URL(base);
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: u.hostname, port: u.port, path: '/api/generate', method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=xyz', 'content-length': '100000' },
      });
      req.on('error', () => resolve());
      req.write(part('xyz') + 'x'.repeat(5000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    for (let i = 0; i < 100 && uploads().length > 0; i++) await sleep(20);
    expect(uploads()).toEqual([]);
  });
});

describe('upload errors', () => {
  it('the 400 for a file that is not media names the field and never a server path', async () => {
    const junk = new TextEncoder().encode('this is not a video at all'.repeat(10));
    for (const field of ['video', 'image', 'audio', 'initAudio']) {
      const fd = new FormData();
      fd.set(field, new Blob([junk]), `my-${field}.mp4`);
      const r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
      expect(r.status, field).toBe(400);
      const msg = (await r.json()).error as string;
      const label = { video: 'video', image: 'image', audio: 'audio prompt', initAudio: 'init audio' }[field]!;
      expect(msg, msg).toContain(`The ${label} upload`);
      expect(msg, msg).not.toContain(srv.privateDir);
      expect(msg, msg).not.toContain(os.tmpdir());
      expect(msg, msg).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/); // the generated upload name
      expect(msg, msg).not.toMatch(/\n/);
    }
    expect(uploads()).toEqual([]);
  });

  it('a PNG declaring 65535×65535 pixels is decoded at upload time and refused with 400', async () => {
    const fd = new FormData();
    fd.set('image', new Blob([new Uint8Array(hugePng(65535, 65535))]), 'huge.png');
    const r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toMatch(/^The image upload/);
    expect(body.error).toMatch(/could not be decoded|65535x65535/);
    expect(body.error).not.toContain(srv.privateDir);
    expect(uploads()).toEqual([]);
  });

  it('a video whose frames cannot be decoded is refused like generate() would', async () => {
    // A real mp4 cut after its header: ffmpeg opens it, but no frame of the window decodes.
    const clip = path.join(tmp, 'clip.mp4');
    await runFfmpeg(['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10:duration=2',
      '-c:v', 'mpeg4', '-movflags', '+faststart', '-pix_fmt', 'yuv420p', clip]);
    const fd = new FormData();
    fd.set('video', new Blob([new Uint8Array(fs.readFileSync(clip))]), 'clip.mp4');
    fd.set('secondsStart', '30'); // past the end of the 2 s clip
    const r = await fetch(`${base}/api/generate`, { method: 'POST', body: fd });
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(400);
    expect(body.error).toMatch(/^The video upload/);
    expect(body.error).not.toContain(srv.privateDir);
  });
});

describe('cancelled jobs leave no files', () => {
  const outputs = (): string[] => fs.readdirSync(outputDir).filter((f) => f.startsWith('audiox-'));

  it('saveResult: an abort that lands during a write removes everything it wrote', async () => {
    const before = outputs();
    const ch = new Float32Array(SR);
    for (const items of [1, 3]) {
      const ac = new AbortController();
      const saving = saveResult(outputDir, Array.from({ length: items }, () => [ch, ch]), SR, { signal: ac.signal });
      setImmediate(() => ac.abort(new Error('cancelled by the user')));
      await expect(saving).rejects.toThrow(/cancelled/);
      expect(fs.readdirSync(outputDir).filter((f) => f.startsWith('audiox-') || f.startsWith('.audiox-'))).toEqual(before);
    }
  });

  it('a cancel that lands while the results are written removes them', async () => {
    const before = outputs();
    ctl.beforeWrite = (ctx) => setImmediate(() => srv.queue.cancel(ctx.id));
    const job = await (await post({ steps: 1, secondsTotal: 0.5 })).json();
    await srv.queue.idle();
    ctl.beforeWrite = null;
    expect(srv.queue.get(job.id)!.status).toBe('cancelled');
    expect(outputs()).toEqual(before);
  });

  it('results returned by a runner after its job was cancelled are deleted', async () => {
    const before = outputs();
    let release!: () => void;
    const written = new Promise<void>((resolve) => {
      ctl.afterWrite = () => {
        resolve();
        return new Promise<void>((r) => (release = r));
      };
    });
    const job = await (await post({ steps: 1, secondsTotal: 0.5 })).json();
    await written;
    expect(outputs().length).toBeGreaterThan(before.length); // written, not yet returned
    expect((await fetch(`${base}/api/jobs/${job.id}`, { method: 'DELETE' })).status).toBe(200);
    release();
    await srv.queue.idle();
    ctl.afterWrite = null;
    const snap = await (await fetch(`${base}/api/jobs/${job.id}`)).json();
    expect(snap).toMatchObject({ status: 'cancelled', result: null });
    expect(outputs()).toEqual(before);
  });

  it('a finished job keeps its files', async () => {
    const before = outputs();
    const job = await (await post({ steps: 1, secondsTotal: 0.5 })).json();
    await srv.queue.idle();
    const snap = await (await fetch(`${base}/api/jobs/${job.id}`)).json();
    expect(snap.status).toBe('done');
    expect(outputs().length).toBe(before.length + 3);
  });
});
