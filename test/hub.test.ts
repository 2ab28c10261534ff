// Runs the real download code against a mock hub on 127.0.0.1 (loopback only).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { downloadModel } from '../src/hub/download.ts';
import type { DownloadProgress } from '../src/hub/download.ts';
import { audioxHome, modelDir, resolveUrl } from '../src/hub/models.ts';
import { diffSafetensors } from '../weights-converter/compare.ts';
import { FIXTURES } from './helpers.ts';
import { startCli } from './cli/run-cli.ts';
import { floatCheckpoint } from './torch-archive.ts';

const CONVERT = path.join(FIXTURES, 'convert');
const CKPT = fs.readFileSync(path.join(CONVERT, 'model.ckpt'));
const SYNCH = fs.readFileSync(path.join(CONVERT, 'synchformer_state_dict.pth'));
const CONFIG = Buffer.from(JSON.stringify({ model_type: 'diffusion_cond', sample_rate: 44100 }));

interface Served {
  body: Buffer;
  /** LFS files answer the resolve URL with a redirect to the CDN and X-Linked-* headers. */
  lfs: boolean;
  etag?: string;
}

interface Logged {
  method: string;
  url: string;
  range?: string;
  auth?: string;
  server: 'hub' | 'cdn';
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

class MockHub {
  files = new Map<string, Served>();
  log: Logged[] = [];
  /** Paths whose first GET body is cut off half-way (socket destroyed). */
  cutFirst = new Set<string>();
  /** Paths served whole (200) even when a Range is asked for. */
  ignoreRange = new Set<string>();
  /** Paths whose GET body never ends (chunked, no Content-Length: the body repeated forever). */
  endless = new Set<string>();
  /** Paths whose HEAD announces no size. */
  noSize = new Set<string>();
  /** Body bytes handed to sockets by endless responses. */
  endlessSent = 0;
  private gets = new Map<string, number>();
  hub!: http.Server;
  cdn!: http.Server;
  hubUrl = '';
  cdnUrl = '';

  async start(): Promise<void> {
    this.hub = http.createServer((q, r) => this.handle('hub', q, r));
    this.cdn = http.createServer((q, r) => this.handle('cdn', q, r));
    for (const s of [this.hub, this.cdn]) await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    this.hubUrl = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    // A different origin (localhost vs 127.0.0.1), like HF's CDN: Authorization must not follow.
    this.cdnUrl = `http://localhost:${(this.cdn.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise((res) => s.close(res));
    }
  }

  reset(): void {
    this.files.clear();
    this.log = [];
    this.cutFirst.clear();
    this.ignoreRange.clear();
    this.endless.clear();
    this.noSize.clear();
    this.endlessSent = 0;
    this.gets.clear();
  }

  serve(repo: string, file: string, body: Buffer, lfs: boolean, etag?: string): void {
    this.files.set(`/${repo}/resolve/main/${file}`, { body, lfs, etag });
  }

  gotten(server: 'hub' | 'cdn' = 'cdn'): Logged[] {
    return this.log.filter((l) => l.method === 'GET' && l.server === server);
  }

  private handle(server: 'hub' | 'cdn', q: http.IncomingMessage, r: http.ServerResponse): void {
    const url = q.url ?? '';
    this.log.push({ method: q.method ?? '', url, range: q.headers.range, auth: q.headers.authorization, server });
    if (server === 'hub') {
      const f = this.files.get(url);
      if (!f) {
        r.writeHead(404, { 'Content-Type': 'text/plain' }).end('Entry not found');
        return;
      }
      if (f.lfs) {
        const etag = f.etag ?? sha256(f.body);
        r.writeHead(302, {
          Location: `${this.cdnUrl}/cdn${url}`,
          'X-Linked-Etag': `"${etag}"`,
          'X-Linked-Size': String(f.body.length),
          ETag: '"not-the-content-etag"',
        });
        r.end();
        return;
      }
      this.send(url, f, q, r, `"${f.etag ?? sha256(f.body).slice(0, 40)}"`);
      return;
    }
    const f = this.files.get(url.replace(/^\/cdn/, ''));
    if (!f) {
      r.writeHead(404).end();
      return;
    }
    this.send(url, f, q, r, `"${sha256(f.body)}"`);
  }

  private send(key: string, f: Served, q: http.IncomingMessage, r: http.ServerResponse, etag: string): void {
    const total = f.body.length;
    if (q.method === 'HEAD') {
      r.writeHead(200, this.noSize.has(key) ? { ETag: etag } : { 'Content-Length': String(total), ETag: etag }).end();
      return;
    }
    if (this.endless.has(key)) {
      r.writeHead(200, { ETag: etag });
      const pump = () => {
        while (!r.destroyed) {
          this.endlessSent += f.body.length;
          if (!r.write(f.body)) {
            r.once('drain', pump);
            return;
          }
        }
      };
      pump();
      return;
    }
    const n = (this.gets.get(key) ?? 0) + 1;
    this.gets.set(key, n);
    const m = /^bytes=(\d+)-$/.exec(q.headers.range ?? '');
    let start = 0;
    if (m && !this.ignoreRange.has(key)) {
      start = Number(m[1]);
      if (start >= total) {
        r.writeHead(416, { 'Content-Range': `bytes */${total}` }).end();
        return;
      }
      r.writeHead(206, {
        'Content-Length': String(total - start),
        'Content-Range': `bytes ${start}-${total - 1}/${total}`,
        ETag: etag,
      });
    } else {
      r.writeHead(200, { 'Content-Length': String(total), ETag: etag });
    }
    const body = f.body.subarray(start);
    if (n === 1 && this.cutFirst.has(key)) {
      r.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        setTimeout(() => r.socket?.destroy(), 20);
      });
      return;
    }
    r.end(body);
  }
}

const hub = new MockHub();
let home: string;
const savedEnv = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_TOKEN: process.env.HF_TOKEN, AUDIOX_HOME: process.env.AUDIOX_HOME };

beforeAll(async () => {
  await hub.start();
});
afterAll(async () => {
  await hub.stop();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
beforeEach(() => {
  hub.reset();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-hub-test-'));
  process.env.HF_ENDPOINT = hub.hubUrl;
  delete process.env.HF_TOKEN;
});
afterEach(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

const fast = { retryDelayMs: 5, idleTimeoutMs: 10_000 };

function expectSameTensors(actual: string, expected: string): void {
  const a = SafetensorsFile.open(actual);
  const e = SafetensorsFile.open(expected);
  try {
    expect(diffSafetensors(a, e)).toEqual([]);
  } finally {
    a.close();
    e.close();
  }
}

function serveAudioX(repo = 'HKUSTAudio/AudioX'): void {
  hub.serve(repo, 'config.json', CONFIG, false);
  hub.serve(repo, 'model.ckpt', CKPT, true);
}

describe('cache paths', () => {
  it('honours AUDIOX_HOME and builds <home>/models/<name>', () => {
    process.env.AUDIOX_HOME = '/some/where';
    expect(audioxHome()).toBe('/some/where');
    expect(modelDir('AudioX')).toBe(path.join('/some/where', 'models', 'AudioX'));
    delete process.env.AUDIOX_HOME;
    expect(audioxHome()).toBe(path.join(os.homedir(), '.cache', 'audiox'));
    expect(resolveUrl('HKUSTAudio/AudioX', 'model.ckpt')).toBe(`${hub.hubUrl}/HKUSTAudio/AudioX/resolve/main/model.ckpt`);
  });
});

describe('downloadModel against a mock hub', () => {
  it('downloads, reports progress, converts model.ckpt and deletes the original', async () => {
    serveAudioX();
    process.env.HF_TOKEN = 'hf_test_token';
    const progress: DownloadProgress[] = [];
    const r = await downloadModel('AudioX', { home, ...fast, onProgress: (p) => progress.push(p) });
    const dir = modelDir('AudioX', home);
    expect(r.dir).toBe(dir);
    expect(r.files.map((f) => [f.file, f.status, path.basename(f.path)])).toEqual([
      ['config.json', 'downloaded', 'config.json'],
      ['model.ckpt', 'downloaded', 'model.safetensors'],
    ]);
    expect(fs.readFileSync(path.join(dir, 'config.json'))).toEqual(CONFIG);
    expectSameTensors(path.join(dir, 'model.safetensors'), path.join(CONVERT, 'model.safetensors'));
    expect(fs.existsSync(path.join(dir, 'model.ckpt'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.part') || f.includes('.tmp'))).toEqual([]);

    const ck = progress.filter((p) => p.file === 'model.ckpt');
    expect(ck.length).toBeGreaterThan(1);
    expect(ck.every((p) => p.total === CKPT.length)).toBe(true);
    expect(ck.map((p) => p.received)).toEqual([...ck.map((p) => p.received)].sort((a, b) => a - b));
    expect(ck.at(-1)!.received).toBe(CKPT.length);
    expect(progress.filter((p) => p.file === 'config.json').at(-1)!.received).toBe(CONFIG.length);

    // The token goes to the hub but not to the CDN (another origin).
    expect(hub.log.filter((l) => l.server === 'hub').every((l) => l.auth === 'Bearer hf_test_token')).toBe(true);
    expect(hub.log.filter((l) => l.server === 'cdn').every((l) => l.auth === undefined)).toBe(true);
  });

  it('skips files that are already complete (same size and etag)', async () => {
    serveAudioX();
    await downloadModel('AudioX', { home, ...fast });
    const before = fs.statSync(path.join(modelDir('AudioX', home), 'model.safetensors')).mtimeMs;
    hub.log = [];
    const r = await downloadModel('AudioX', { home, ...fast });
    expect(r.files.map((f) => f.status)).toEqual(['cached', 'cached']);
    expect(hub.log.filter((l) => l.method === 'GET')).toEqual([]);
    expect(fs.statSync(path.join(modelDir('AudioX', home), 'model.safetensors')).mtimeMs).toBe(before);

    // A new upload (different content and etag) is fetched again.
    hub.serve('HKUSTAudio/AudioX', 'config.json', Buffer.from('{"v":2}'), false);
    const r2 = await downloadModel('AudioX', { home, ...fast });
    expect(r2.files.map((f) => f.status)).toEqual(['downloaded', 'cached']);
    expect(fs.readFileSync(path.join(modelDir('AudioX', home), 'config.json'), 'utf8')).toBe('{"v":2}');
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    serveAudioX('HKUSTAudio/AudioX-MAF');
    hub.serve('HKUSTAudio/AudioX-MAF', 'synchformer_state_dict.pth', SYNCH, true);
    const key = '/cdn/HKUSTAudio/AudioX-MAF/resolve/main/synchformer_state_dict.pth';
    hub.cutFirst.add(key);
    const events: string[] = [];
    const r = await downloadModel('AudioX-MAF', {
      home,
      ...fast,
      keepOriginal: true,
      onEvent: (e) => events.push(`${e.file}:${e.stage}`),
    });
    const gets = hub.gotten().filter((l) => l.url === key);
    expect(gets.length).toBe(2);
    expect(gets[0].range).toBeUndefined();
    expect(gets[1].range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(events).toContain('synchformer_state_dict.pth:retrying');
    expect(events).toContain('synchformer_state_dict.pth:resuming');
    const dir = modelDir('AudioX-MAF', home);
    expect(fs.readFileSync(path.join(dir, 'synchformer_state_dict.pth')).equals(SYNCH)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'model.ckpt')).equals(CKPT)).toBe(true);
    expectSameTensors(path.join(dir, 'synchformer.safetensors'), path.join(CONVERT, 'synchformer_state_dict.safetensors'));
    expect(r.files.find((f) => f.file === 'synchformer_state_dict.pth')!.status).toBe('resumed');
  });

  it('resumes a .part left by an earlier run, and restarts when the server ignores Range', async () => {
    serveAudioX();
    const key = '/cdn/HKUSTAudio/AudioX/resolve/main/model.ckpt';
    hub.cutFirst.add(key);
    await expect(downloadModel('AudioX', { home, ...fast, retries: 0 })).rejects.toThrow(/partial download is kept.*run the command again/);
    const dir = modelDir('AudioX', home);
    const partSize = fs.statSync(path.join(dir, 'model.ckpt.part')).size;
    expect(partSize).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(dir, 'model.ckpt'))).toBe(false);

    hub.ignoreRange.add(key);
    const r = await downloadModel('AudioX', { home, ...fast, keepOriginal: true });
    const last = hub.gotten().filter((l) => l.url === key).at(-1)!;
    expect(last.range).toBe(`bytes=${partSize}-`);
    expect(r.files[1].status).toBe('downloaded'); // the server sent it whole, so it started over
    expect(fs.readFileSync(path.join(dir, 'model.ckpt')).equals(CKPT)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'model.ckpt.part'))).toBe(false);
  });

  it('a 404 gives a clear error and leaves nothing marked complete', async () => {
    hub.serve('google-t5/t5-base', 'config.json', CONFIG, false);
    hub.serve('google-t5/t5-base', 'model.safetensors', fs.readFileSync(path.join(CONVERT, 'views.safetensors')), true);
    const err = await downloadModel('t5-base', { home, ...fast }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain(`${hub.hubUrl}/google-t5/t5-base/resolve/main/tokenizer.json`);
    expect(msg).toMatch(/tokenizer\.json not found.*HTTP 404.*model name.*HF_ENDPOINT/);
    const dir = modelDir('t5-base', home);
    expect(fs.existsSync(path.join(dir, 'tokenizer.json'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'tokenizer.json.part'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'tokenizer.json.meta.json'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'model.safetensors'))).toBe(false);
  });

  it('rejects a download whose sha256 does not match the LFS etag', async () => {
    hub.serve('HKUSTAudio/AudioX', 'config.json', CONFIG, false);
    hub.serve('HKUSTAudio/AudioX', 'model.ckpt', CKPT, true, 'ab'.repeat(32));
    await expect(downloadModel('AudioX', { home, ...fast })).rejects.toThrow(/sha256 .* does not match/);
    const dir = modelDir('AudioX', home);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model.'))).toEqual(['model.ckpt.meta.json']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'model.ckpt.meta.json'), 'utf8')).complete).toBe(false);
  });

  it('reports an unreachable endpoint as a network error', async () => {
    const s = http.createServer();
    await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
    const port = (s.address() as AddressInfo).port;
    await new Promise((res) => s.close(res));
    process.env.HF_ENDPOINT = `http://127.0.0.1:${port}`;
    await expect(downloadModel('AudioX', { home, ...fast })).rejects.toThrow(/network error fetching .*ECONNREFUSED.*HF_ENDPOINT/);
  });

  it('rejects unknown model names', async () => {
    await expect(downloadModel('AudioY', { home })).rejects.toThrow(/unknown model "AudioY".*AudioX-MAF-MMDiT/);
  });

  it('a body that keeps coming past the announced size is cut off at once (#13.13)', async () => {
    hub.serve('HKUSTAudio/AudioX', 'config.json', CONFIG, false);
    const body = crypto.randomBytes(1 << 20);
    hub.serve('HKUSTAudio/AudioX', 'model.ckpt', body, true);
    hub.endless.add('/cdn/HKUSTAudio/AudioX/resolve/main/model.ckpt');
    const t0 = Date.now();
    const err = await downloadModel('AudioX', { home, ...fast }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/sent more than the announced 1048576 bytes for model\.ckpt; the transfer was stopped/);
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Whatever the socket buffers held, nothing near the 333 MB of the report.
    expect(hub.endlessSent).toBeLessThan(64 << 20);
    const dir = modelDir('AudioX', home);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('model.'))).toEqual(['model.ckpt.meta.json']);
  }, 30_000);

  it('a body of unannounced size is bounded too', async () => {
    hub.serve('HKUSTAudio/AudioX', 'config.json', Buffer.alloc(1 << 16, 0x20), false);
    const key = '/HKUSTAudio/AudioX/resolve/main/config.json';
    hub.noSize.add(key);
    hub.endless.add(key);
    const err = await downloadModel('AudioX', { home, ...fast }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/sent more than 16777216 bytes without announcing a size for config\.json/);
    expect(hub.endlessSent).toBeLessThan(96 << 20);
    expect(fs.readdirSync(modelDir('AudioX', home)).filter((f) => !f.endsWith('.meta.json'))).toEqual([]);
  }, 30_000);

  it('Ctrl-C during the conversion after a download leaves no temp file, only the download (#13.11)', async () => {
    const tensors: Record<string, Float32Array> = {};
    for (let i = 0; i < 4000; i++) tensors[`layer.${i}.weight`] = new Float32Array(2048).fill(i);
    hub.serve('HKUSTAudio/AudioX', 'config.json', CONFIG, false);
    hub.serve('HKUSTAudio/AudioX', 'model.ckpt', floatCheckpoint(tensors), true);
    const { child, done } = startCli(['download', 'AudioX'], { env: { HF_ENDPOINT: hub.hubUrl, AUDIOX_HOME: home } });
    const dir = modelDir('AudioX', home);
    const deadline = Date.now() + 60_000;
    let tmpSeen = '';
    while (!tmpSeen && Date.now() < deadline && child.exitCode === null) {
      tmpSeen = fs.existsSync(dir) ? (fs.readdirSync(dir).find((f) => f.startsWith('model.safetensors.tmp-')) ?? '') : '';
      if (!tmpSeen) await new Promise((r) => setTimeout(r, 3));
    }
    expect(tmpSeen, 'the conversion finished before it could be interrupted').not.toBe('');
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/download interrupted \(SIGINT\); removed .*model\.safetensors\.tmp-/);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'config.json.meta.json', 'model.ckpt', 'model.ckpt.meta.json']);
  }, 120_000);
});
