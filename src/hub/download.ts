// Hugging Face hub downloads with resume (.part + Range), size/etag/sha256 checks, and
// conversion of PyTorch checkpoints to safetensors once downloaded.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { convertCheckpoint } from '../../weights-converter/convert.ts';
import { hfEndpoint, hfToken, MODEL_NAMES, modelDir, modelSpec, resolveUrl, textEncoderModel, textEncoderNamesIn } from './models.ts';
import type { TextEncoderName } from './models.ts';

/** A download that failed (network, HTTP status, a file missing on the hub, a size that does not match); the message names the URL. */
export class HubError extends Error {}
/** A failure worth retrying (network drop, 5xx, 429). */
class RetryableError extends HubError {}

export interface DownloadProgress {
  file: string;
  /** Bytes on disk so far, including a resumed part. */
  received: number;
  total: number | null;
}

export type DownloadStage = 'cached' | 'offline' | 'downloading' | 'resuming' | 'retrying' | 'verifying' | 'converting' | 'done';

export interface DownloadEvent {
  file: string;
  stage: DownloadStage;
  message?: string;
}

export interface DownloadOptions {
  revision?: string;
  /** Cache root (default: audioxHome()). */
  home?: string;
  /** Keep model.ckpt / synchformer_state_dict.pth after converting them (default false). */
  keepOriginal?: boolean;
  onProgress?: (p: DownloadProgress) => void;
  onEvent?: (e: DownloadEvent) => void;
  /** Extra attempts after a network drop / 5xx (default 5). */
  retries?: number;
  /** Base delay between attempts, multiplied by the attempt number (default 1000 ms). */
  retryDelayMs?: number;
  /** Abort a transfer that receives nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
}

export interface DownloadedFile {
  file: string;
  /** Where the file is now (the converted safetensors for converted checkpoints). */
  path: string;
  status: 'downloaded' | 'resumed' | 'cached';
  convertedFrom?: string;
  /** The downloaded checkpoint, when it was kept next to its conversion. */
  original?: string;
}

export interface DownloadResult {
  name: string;
  dir: string;
  files: DownloadedFile[];
}

interface Meta {
  url: string;
  etag: string | null;
  size: number | null;
  complete: boolean;
  sha256?: string;
  converted?: string;
}

interface RemoteInfo {
  etag: string | null;
  size: number | null;
}

const SHA256 = /^[0-9a-f]{64}$/;
/** The most a body may bring when neither the hub nor the response announces a size (HF keeps files over 10 MB in LFS, which always announces one). */
export const MAX_UNANNOUNCED_BYTES = 16 * 1024 * 1024;

function readMeta(file: string): Meta | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Meta;
  } catch {
    return null;
  }
}

function writeMeta(file: string, meta: Meta): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(meta, null, 2));
  fs.renameSync(tmp, file);
}

function sizeOf(file: string): number | null {
  try {
    return fs.statSync(file).size;
  } catch {
    return null;
  }
}

function normEtag(v: string | null): string | null {
  if (!v) return null;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '');
}

function intHeader(v: string | null): number | null {
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  return Number(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function causeOf(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  const c = err.cause;
  return c ? `${c.code ?? c.message ?? String(c)}` : err.message;
}

function networkError(url: string, e: unknown): RetryableError {
  return new RetryableError(
    `network error fetching ${url}: ${causeOf(e)}. Check your connection` +
      (process.env.HF_ENDPOINT ? ` and HF_ENDPOINT (${process.env.HF_ENDPOINT})` : ''),
  );
}

function httpError(url: string, status: number, file: string): HubError {
  if (status === 404) {
    return new HubError(
      `${file} not found: ${url} returned HTTP 404. Check the model name (one of ${MODEL_NAMES.join(', ')}), ` +
        `the revision and HF_ENDPOINT (now ${hfEndpoint()})`,
    );
  }
  if (status === 401 || status === 403) {
    return new HubError(`access denied to ${url} (HTTP ${status}): set HF_TOKEN to a token that can read this repository`);
  }
  if (status === 429 || status >= 500) return new RetryableError(`${url} returned HTTP ${status}`);
  return new HubError(`${url} returned HTTP ${status}`);
}

/** fetch that follows redirects itself, dropping Authorization when the origin changes. */
async function request(url: string, init: { method?: string; headers: Record<string, string>; signal?: AbortSignal }, stopAt?: (r: Response) => boolean): Promise<{ res: Response; url: string }> {
  let u = url;
  const origin = new URL(url).origin;
  for (let hop = 0; hop < 10; hop++) {
    const headers = { ...init.headers };
    if (new URL(u).origin !== origin) delete headers.Authorization;
    let res: Response;
    try {
      res = await fetch(u, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: init.signal });
    } catch (e) {
      throw networkError(u, e);
    }
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc && !stopAt?.(res)) {
      await res.body?.cancel();
      u = new URL(loc, u).href;
      continue;
    }
    return { res, url: u };
  }
  throw new HubError(`too many redirects starting at ${url}`);
}

/** The file's etag and size, from a HEAD (HF puts them in X-Linked-* on the redirect for LFS files). */
async function remoteInfo(url: string, headers: Record<string, string>, file: string): Promise<RemoteInfo> {
  const { res, url: final } = await request(url, { method: 'HEAD', headers }, (r) => r.headers.has('x-linked-etag'));
  await res.body?.cancel();
  if (res.status >= 400) throw httpError(final, res.status, file);
  const linked = res.headers.get('x-linked-etag');
  return {
    etag: normEtag(linked ?? res.headers.get('etag')),
    size: intHeader(res.headers.get('x-linked-size')) ?? (res.status === 200 ? intHeader(res.headers.get('content-length')) : null),
  };
}

async function withRetries<T>(fn: () => Promise<T>, retries: number, delay: number): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof RetryableError) || attempt >= retries) throw e;
      await sleep(delay * (attempt + 1));
    }
  }
}

async function sha256Of(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface FetchFileArgs {
  url: string;
  dest: string;
  file: string;
  remote: RemoteInfo;
  headers: Record<string, string>;
  opts: DownloadOptions;
}

/** Downloads `url` to `dest` through `dest.part`, resuming a matching part. Returns whether it resumed. */
async function fetchFile({ url, dest, file, remote, headers, opts }: FetchFileArgs): Promise<'downloaded' | 'resumed'> {
  const part = `${dest}.part`;
  const metaPath = `${dest}.meta.json`;
  const old = readMeta(metaPath);
  const partMatches = old && !old.complete && old.etag === remote.etag && old.size === remote.size;
  if (!partMatches || remote.etag === null) fs.rmSync(part, { force: true });
  writeMeta(metaPath, { url, etag: remote.etag, size: remote.size, complete: false });

  const retries = opts.retries ?? 5;
  const delay = opts.retryDelayMs ?? 1000;
  const idle = opts.idleTimeoutMs ?? 60_000;
  let resumed = false;
  let total = remote.size;
  for (let attempt = 0; ; attempt++) {
    let offset = sizeOf(part) ?? 0;
    if (total !== null && offset > total) {
      fs.rmSync(part, { force: true });
      offset = 0;
    }
    if (total !== null && offset === total) break;
    opts.onEvent?.({ file, stage: offset > 0 ? 'resuming' : 'downloading', message: offset > 0 ? `from byte ${offset}` : undefined });
    const ctrl = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => ctrl.abort(new Error(`no data for ${idle / 1000} s`)), idle);
    };
    try {
      arm();
      const h = offset > 0 ? { ...headers, Range: `bytes=${offset}-` } : headers;
      const { res, url: final } = await request(url, { headers: h, signal: ctrl.signal });
      if (res.status === 416 && offset > 0) {
        await res.body?.cancel();
        fs.rmSync(part, { force: true });
        throw new RetryableError(`${final} refused the resume range (HTTP 416); restarting`);
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw httpError(final, res.status, file);
      }
      let append = false;
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== offset) {
          await res.body?.cancel();
          fs.rmSync(part, { force: true });
          throw new RetryableError(`${final} answered the resume with range "${res.headers.get('content-range')}"; restarting`);
        }
        append = true;
        resumed = true;
        if (m[3] !== '*') total = Number(m[3]);
      } else {
        // 200: the server ignored Range (or this is a fresh start): write from byte 0.
        offset = 0;
        const len = intHeader(res.headers.get('content-length'));
        if (len !== null) total = len;
      }
      if (remote.size !== null && total !== null && total !== remote.size) {
        await res.body?.cancel();
        fs.rmSync(part, { force: true });
        throw new HubError(`${final} sends ${total} bytes but the hub announced ${remote.size}; the file changed on the server, retry`);
      }
      if (!res.body) throw new RetryableError(`${final} sent no body`);
      const fh = await fs.promises.open(part, append ? 'a' : 'w');
      let received = offset;
      // Never write past the announced size: a body that keeps coming is cut off at once.
      const limit = total ?? remote.size ?? MAX_UNANNOUNCED_BYTES;
      let overflow = false;
      try {
        opts.onProgress?.({ file, received, total });
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          if (received + chunk.byteLength > limit) {
            overflow = true;
            break;
          }
          await fh.write(chunk);
          received += chunk.byteLength;
          opts.onProgress?.({ file, received, total });
        }
      } catch (e) {
        if (e instanceof HubError) throw e;
        throw networkError(final, ctrl.signal.aborted ? ctrl.signal.reason : e);
      } finally {
        await fh.close();
      }
      if (overflow) {
        ctrl.abort();
        fs.rmSync(part, { force: true });
        const announced = total ?? remote.size;
        const what = announced !== null ? `more than the announced ${announced} bytes` : `more than ${limit} bytes without announcing a size`;
        throw new HubError(
          `${final} sent ${what} for ${file}; the transfer was stopped and the partial file deleted. ` +
            `Check HF_ENDPOINT (now ${hfEndpoint()})`,
        );
      }
      if (total !== null && received < total) throw new RetryableError(`${final}: transfer stopped at ${received} of ${total} bytes`);
      if (total === null) total = received;
      break;
    } catch (e) {
      if (!(e instanceof RetryableError) || attempt >= retries) {
        if (e instanceof RetryableError && sizeOf(part)) {
          throw new HubError(`${(e as Error).message}. The partial download is kept in ${part}; run the command again to resume`);
        }
        throw e;
      }
      opts.onEvent?.({ file, stage: 'retrying', message: (e as Error).message });
      await sleep(delay * (attempt + 1));
    } finally {
      clearTimeout(timer);
    }
  }

  const got = sizeOf(part) ?? 0;
  if (total !== null && got !== total) {
    fs.rmSync(part, { force: true });
    throw new HubError(`${url}: downloaded ${got} bytes, expected ${total}; the partial file was deleted, run again`);
  }
  const meta: Meta = { url, etag: remote.etag, size: got, complete: true };
  if (remote.etag && SHA256.test(remote.etag)) {
    opts.onEvent?.({ file, stage: 'verifying' });
    const digest = await sha256Of(part);
    if (digest !== remote.etag) {
      fs.rmSync(part, { force: true });
      throw new HubError(`${url}: sha256 ${digest} does not match the hub's ${remote.etag}; the download was deleted, run again`);
    }
    meta.sha256 = digest;
  }
  fs.renameSync(part, dest);
  writeMeta(metaPath, meta);
  return resumed ? 'resumed' : 'downloaded';
}

/**
 * Downloads a model's files into modelDir(name) and converts its PyTorch checkpoints to
 * safetensors. Files already complete (same size and etag as on the hub) are not fetched again.
 */
export async function downloadModel(name: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const spec = modelSpec(name);
  const dir = modelDir(spec.name, opts.home);
  fs.mkdirSync(dir, { recursive: true });
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'audiox-ts' };
  const token = hfToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const files: DownloadedFile[] = [];

  for (const file of spec.files) {
    const url = resolveUrl(spec.repo, file, opts.revision ?? 'main');
    const dest = path.join(dir, file);
    const metaPath = `${dest}.meta.json`;
    const conv = spec.convert[file];
    const convPath = conv ? path.join(dir, conv) : null;
    const meta = readMeta(metaPath);
    const haveOriginal = meta?.complete === true && sizeOf(dest) === meta.size;
    const haveConverted = !!convPath && meta?.complete === true && meta.converted === conv && sizeOf(convPath) !== null;

    let remote: RemoteInfo;
    try {
      remote = await withRetries(() => remoteInfo(url, headers, file), Math.min(opts.retries ?? 5, 2), opts.retryDelayMs ?? 1000);
    } catch (e) {
      if (e instanceof RetryableError && (haveConverted || (!convPath && haveOriginal))) {
        opts.onEvent?.({ file, stage: 'offline', message: `${(e as Error).message}; using the cached copy` });
        files.push({ file, path: haveConverted ? convPath! : dest, status: 'cached', convertedFrom: haveConverted ? file : undefined });
        continue;
      }
      throw e;
    }
    const same = meta?.complete === true && meta.etag === remote.etag && (remote.size === null || meta.size === remote.size);

    let status: DownloadedFile['status'];
    if (same && haveConverted) {
      opts.onEvent?.({ file, stage: 'cached' });
      files.push({ file, path: convPath!, status: 'cached', convertedFrom: file });
      continue;
    }
    if (same && haveOriginal) {
      status = 'cached';
      opts.onEvent?.({ file, stage: 'cached' });
    } else {
      status = await fetchFile({ url, dest, file, remote, headers, opts });
    }

    if (convPath) {
      opts.onEvent?.({ file, stage: 'converting', message: `→ ${conv}` });
      try {
        await convertCheckpoint(dest, convPath);
      } catch (e) {
        throw new HubError(
          `converting ${dest} to ${conv} failed: ${(e as Error).message}. The download is kept; ` +
            `delete it to fetch it again, or run "audiox convert ${dest} ${convPath}"`,
        );
      }
      const done = readMeta(metaPath)!;
      writeMeta(metaPath, { ...done, converted: conv });
      if (!opts.keepOriginal) fs.rmSync(dest, { force: true });
      files.push({ file, path: convPath, status, convertedFrom: file, original: opts.keepOriginal ? dest : undefined });
    } else {
      files.push({ file, path: dest, status });
    }
    opts.onEvent?.({ file, stage: 'done' });
  }
  return { name: spec.name, dir, files };
}

/**
 * The text encoders a downloaded model's config.json names (`t5_model_name` of its text conditioners),
 * deduplicated; an unsupported name throws, naming the file, the key and the supported encoders.
 */
export function textEncodersOf(dir: string): TextEncoderName[] {
  const file = path.join(dir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return []; // no or no valid config.json: nothing to add (loading reports the config itself)
  }
  const out = new Set<TextEncoderName>();
  for (const { name, where } of textEncoderNamesIn(raw)) out.add(textEncoderModel(name, `${file}: ${where}`));
  return [...out];
}

/**
 * downloadModel, then the text encoders the model's config names (the reference loads them by name from
 * the hub at build time). Returns the model's result first.
 */
export async function downloadModelWithTextEncoders(name: string, opts: DownloadOptions = {}): Promise<DownloadResult[]> {
  const main = await downloadModel(name, opts);
  const results = [main];
  for (const enc of textEncodersOf(main.dir)) {
    // `revision` names a commit of the model's repository, not of the encoder's.
    if (enc !== main.name) results.push(await downloadModel(enc, { ...opts, revision: undefined }));
  }
  return results;
}
