// ffmpeg location, process spawning and ffprobe-free probing (`ffmpeg -hide_banner -i FILE`).
// Resolution order: env AUDIOX_FFMPEG, `ffmpeg-static`, `@ffmpeg-installer/ffmpeg`, `ffmpeg` on PATH.
// Processes are always spawned with an argument array, never through a shell.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export type FfmpegSource = 'AUDIOX_FFMPEG' | 'ffmpeg-static' | '@ffmpeg-installer/ffmpeg' | 'PATH';

export interface ResolvedFfmpeg {
  path: string;
  source: FfmpegSource;
}

export type MediaErrorCode =
  | 'FFMPEG_NOT_FOUND'
  | 'FFMPEG_FAILED'
  | 'FILE_NOT_FOUND'
  | 'EMPTY_FILE'
  | 'NOT_MEDIA'
  | 'NO_VIDEO_STREAM'
  | 'NO_AUDIO_STREAM'
  | 'NO_FRAMES'
  | 'INVALID_ARGUMENT';

/** Every failure of the media I/O layer; `code` says which kind. */
export class MediaError extends Error {
  /**
   * @param code The kind of failure (e.g. ffmpeg missing, unreadable file).
   * @param message What went wrong and what to do.
   */
  constructor(
    readonly code: MediaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MediaError';
  }
}

/** Where to look for candidates; injectable for tests. */
export interface FfmpegLookup {
  env: Record<string, string | undefined>;
  /** Path exported by `ffmpeg-static` (null/undefined when the package is absent). */
  ffmpegStatic: () => string | null | undefined;
  /** Path exported by `@ffmpeg-installer/ffmpeg` (undefined when absent). */
  ffmpegInstaller: () => string | null | undefined;
}

const require = createRequire(import.meta.url);

function isExecutableFile(p: string): boolean {
  try {
    if (!fs.statSync(p).isFile()) return false;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string, envPath: string | undefined): string | null {
  if (!envPath) return null;
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return null;
}

function optionalPackagePath(name: string): string | null {
  try {
    const mod: unknown = require(name);
    if (typeof mod === 'string') return mod;
    if (mod && typeof mod === 'object') {
      const p = (mod as { path?: unknown; default?: unknown }).path ?? (mod as { default?: unknown }).default;
      if (typeof p === 'string') return p;
    }
    return null;
  } catch {
    // Not installed, or (for @ffmpeg-installer) its platform binary is missing: it throws a string.
    return null;
  }
}

export const defaultFfmpegLookup: FfmpegLookup = {
  env: process.env,
  ffmpegStatic: () => optionalPackagePath('ffmpeg-static'),
  ffmpegInstaller: () => optionalPackagePath('@ffmpeg-installer/ffmpeg'),
};

/** Uncached resolution against an explicit lookup (exported for tests). */
export function resolveFfmpegWith(lookup: FfmpegLookup): ResolvedFfmpeg {
  const explicit = lookup.env.AUDIOX_FFMPEG;
  if (explicit !== undefined && explicit !== '') {
    // A bare command name ("ffmpeg6") is looked up on PATH; anything else is a file path.
    const isBare = !explicit.includes('/') && !explicit.includes(path.sep);
    const found = isBare ? searchPath(explicit, lookup.env.PATH) : isExecutableFile(explicit) ? explicit : null;
    if (!found) {
      throw new MediaError(
        'FFMPEG_NOT_FOUND',
        `AUDIOX_FFMPEG is set to "${explicit}", but that is not an executable file` +
          (isBare ? ' on PATH' : '') +
          '. Point AUDIOX_FFMPEG at an ffmpeg binary, or unset it to use the bundled one.',
      );
    }
    return { path: path.resolve(found), source: 'AUDIOX_FFMPEG' };
  }
  const tried: string[] = [];
  const fromStatic = lookup.ffmpegStatic();
  if (fromStatic && isExecutableFile(fromStatic)) return { path: fromStatic, source: 'ffmpeg-static' };
  tried.push(`ffmpeg-static (${fromStatic ? `path ${fromStatic} not executable` : 'not installed'})`);
  const fromInstaller = lookup.ffmpegInstaller();
  if (fromInstaller && isExecutableFile(fromInstaller)) return { path: fromInstaller, source: '@ffmpeg-installer/ffmpeg' };
  tried.push(`@ffmpeg-installer/ffmpeg (${fromInstaller ? `path ${fromInstaller} not executable` : 'not installed'})`);
  const onPath = searchPath('ffmpeg', lookup.env.PATH);
  if (onPath) return { path: onPath, source: 'PATH' };
  tried.push('ffmpeg on PATH (not found)');
  throw new MediaError(
    'FFMPEG_NOT_FOUND',
    `No ffmpeg binary found. Tried: ${tried.join('; ')}. ` +
      'Install ffmpeg (e.g. `apt install ffmpeg`), run `npm install` so @ffmpeg-installer/ffmpeg ships its binary, ' +
      'or set AUDIOX_FFMPEG=/path/to/ffmpeg.',
  );
}

let cached: ResolvedFfmpeg | null = null;

/** Locates ffmpeg (cached after the first success; see {@link clearFfmpegCache}). */
export function resolveFfmpeg(): ResolvedFfmpeg {
  if (!cached) cached = resolveFfmpegWith(defaultFfmpegLookup);
  return cached;
}

/** Forgets the cached ffmpeg location (e.g. after changing AUDIOX_FFMPEG). */
export function clearFfmpegCache(): void {
  cached = null;
}

export interface RunFfmpegOptions {
  /** Bytes written to ffmpeg's stdin (use with `-i pipe:0`). */
  input?: Buffer;
  signal?: AbortSignal;
  /** Receives stdout as it arrives (then FfmpegResult.stdout is empty): for outputs too large to buffer. */
  onStdout?: (chunk: Buffer) => void;
}

export interface FfmpegResult {
  stdout: Buffer;
  stderr: string;
}

interface RawResult extends FfmpegResult {
  code: number | null;
}

const STDERR_KEEP = 256 * 1024;

function lastLines(text: string, n: number): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.slice(-n).join('\n');
}

function spawnFfmpeg(args: readonly string[], opts: RunFfmpegOptions = {}): Promise<RawResult> {
  const { path: bin } = resolveFfmpeg();
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new MediaError('FFMPEG_FAILED', 'ffmpeg was aborted before it started'));
      return;
    }
    const child = spawn(bin, args as string[], {
      stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      signal: opts.signal,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    let err = '';
    // stdio is ['pipe'|'ignore', 'pipe', 'pipe'], so stdout and stderr exist.
    child.stdout!.on('data', (b: Buffer) => (opts.onStdout ? opts.onStdout(b) : out.push(b)));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      err += s;
      if (err.length > 2 * STDERR_KEEP) err = err.slice(-STDERR_KEEP);
    });
    let settled = false;
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      if (e.name === 'AbortError') reject(new MediaError('FFMPEG_FAILED', 'ffmpeg was aborted'));
      else reject(new MediaError('FFMPEG_FAILED', `Could not run ffmpeg at ${bin}: ${e.message}`));
    });
    child.on('close', (code) => {
      if (settled) return;
      settled = true;
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.input && child.stdin) {
      // ffmpeg may stop reading early (EPIPE); the exit code tells what happened.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** Runs ffmpeg with `args`; rejects (MediaError FFMPEG_FAILED) with the last stderr lines on a non-zero exit. */
export async function runFfmpeg(args: readonly string[], opts: RunFfmpegOptions = {}): Promise<FfmpegResult> {
  const r = await spawnFfmpeg(args, opts);
  if (r.code !== 0) {
    throw new MediaError(
      'FFMPEG_FAILED',
      `ffmpeg exited with code ${r.code}:\n${lastLines(r.stderr, 8) || '(no output on stderr)'}`,
    );
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------------
// Probing

export interface VideoStreamInfo {
  index: number;
  codec: string;
  width: number;
  height: number;
  /** Average frame rate ("fps" field), else the "tbr" rate; null when unknown. */
  fps: number | null;
  /** Rotation from the stream's metadata (ffmpeg auto-rotates; width/height are already swapped). */
  rotation: number;
}

export interface AudioStreamInfo {
  index: number;
  codec: string;
  sampleRate: number;
  channels: number;
}

export interface MediaStreamInfo {
  index: number;
  type: 'video' | 'audio' | 'subtitle' | 'data' | 'attachment' | 'unknown';
  codec: string;
}

export interface MediaInfo {
  file: string;
  /** Container format name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2", "png_pipe", "wav". */
  format: string;
  /** Container duration in seconds; null when ffmpeg reports N/A (e.g. still images). */
  duration: number | null;
  streams: MediaStreamInfo[];
  /** First video stream, if any. */
  video: VideoStreamInfo | null;
  /** First audio stream, if any. */
  audio: AudioStreamInfo | null;
  /** True for single-picture inputs (png/jpeg/bmp/webp... demuxers). */
  isStillImage: boolean;
}

const CHANNEL_LAYOUTS: Record<string, number> = {
  mono: 1,
  stereo: 2,
  '2.1': 3,
  '3.0': 3,
  '3.0(back)': 3,
  '3.1': 4,
  '4.0': 4,
  quad: 4,
  'quad(side)': 4,
  '4.1': 5,
  '5.0': 5,
  '5.0(side)': 5,
  '5.1': 6,
  '5.1(side)': 6,
  '6.0': 6,
  '6.1': 7,
  '7.0': 7,
  '7.1': 8,
  '7.1(wide)': 8,
  'downmix': 2,
};

function parseTimestamp(s: string): number {
  const [h, m, sec] = s.split(':');
  return Number(h) * 3600 + Number(m) * 60 + Number(sec);
}

function parseRate(s: string): number {
  return s.endsWith('k') ? Number(s.slice(0, -1)) * 1000 : Number(s);
}

/** Parses the stderr of `ffmpeg -hide_banner -i FILE` (exported for tests). */
export function parseFfmpegInfo(stderr: string, file: string): MediaInfo {
  const formatMatch = /^Input #0, (.+?), from '/m.exec(stderr);
  const durMatch = /Duration: (\d+:\d+:\d+(?:\.\d+)?)/.exec(stderr);
  const info: MediaInfo = {
    file,
    format: formatMatch ? formatMatch[1] : 'unknown',
    duration: durMatch ? parseTimestamp(durMatch[1]) : null,
    streams: [],
    video: null,
    audio: null,
    isStillImage: false,
  };
  const lines = stderr.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*Stream #0:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): ([^\s,]+)(.*)$/.exec(
      lines[i],
    );
    if (!m) continue;
    const index = Number(m[1]);
    const type = m[2].toLowerCase() as MediaStreamInfo['type'];
    const codec = m[3];
    const rest = m[4];
    info.streams.push({ index, type, codec });
    if (type === 'video' && !info.video) {
      const size = /,\s*(\d+)x(\d+)(?=[\s,[]|$)/.exec(rest);
      const fps = /,\s*(\d+(?:\.\d+)?k?) fps/.exec(rest) ?? /,\s*(\d+(?:\.\d+)?k?) tbr/.exec(rest);
      // Rotation lives in the stream's metadata / side data lines that follow.
      let rotation = 0;
      for (let j = i + 1; j < lines.length && !/^\s*Stream #/.test(lines[j]); j++) {
        const r = /^\s*rotate\s*:\s*(-?\d+)/.exec(lines[j]) ?? /rotation of (-?\d+(?:\.\d+)?) degrees/.exec(lines[j]);
        if (r) {
          rotation = Math.round(Number(r[1]));
          break;
        }
      }
      let width = size ? Number(size[1]) : 0;
      let height = size ? Number(size[2]) : 0;
      if (Math.abs(rotation) % 180 === 90) [width, height] = [height, width];
      info.video = { index, codec, width, height, fps: fps ? parseRate(fps[1]) : null, rotation };
    } else if (type === 'audio' && !info.audio) {
      const sr = /,\s*(\d+) Hz/.exec(rest);
      const layout = /Hz,\s*([^,]+)/.exec(rest);
      let channels = 0;
      if (layout) {
        const name = layout[1].trim();
        const n = /^(\d+) channels?/.exec(name);
        channels = n ? Number(n[1]) : (CHANNEL_LAYOUTS[name] ?? 0);
      }
      info.audio = { index, codec, sampleRate: sr ? Number(sr[1]) : 0, channels };
    }
  }
  info.isStillImage =
    info.video !== null &&
    (/_pipe$/.test(info.format) || info.format === 'image2') &&
    info.streams.filter((s) => s.type === 'video').length === 1;
  return info;
}

/** Checks that `file` exists, is a regular file and is not empty; returns its absolute path. */
export function checkInputFile(file: string, what = 'media file'): string {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new MediaError('FILE_NOT_FOUND', `The ${what} "${file}" does not exist (resolved to ${abs}).`);
  }
  if (!st.isFile()) throw new MediaError('FILE_NOT_FOUND', `The ${what} "${file}" is not a regular file.`);
  if (st.size === 0) throw new MediaError('EMPTY_FILE', `The ${what} "${file}" is empty (0 bytes).`);
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch {
    throw new MediaError('FILE_NOT_FOUND', `The ${what} "${file}" is not readable (permission denied).`);
  }
  return abs;
}

/** Probes a media file without ffprobe: runs `ffmpeg -hide_banner -i FILE` and parses stderr. */
export async function probeMedia(file: string, opts: { signal?: AbortSignal } = {}): Promise<MediaInfo> {
  const abs = checkInputFile(file);
  const r = await spawnFfmpeg(['-hide_banner', '-nostdin', '-i', abs], { signal: opts.signal });
  // Without an output file ffmpeg always exits 1; success is "Input #0" on stderr.
  if (!/^Input #0, /m.test(r.stderr)) {
    const tail = lastLines(r.stderr, 3);
    if (/Invalid data found when processing input|moov atom not found|could not find codec parameters/i.test(r.stderr)) {
      throw new MediaError(
        'NOT_MEDIA',
        `"${file}" is not a readable audio/video/image file (ffmpeg: ${lastLines(r.stderr, 1)}). ` +
          'Check that the file is complete and in a format ffmpeg supports.',
      );
    }
    throw new MediaError('NOT_MEDIA', `ffmpeg could not open "${file}":\n${tail}`);
  }
  return parseFfmpegInfo(r.stderr, abs);
}

/** Formats seconds for ffmpeg's -ss/-t (plain decimal, no exponent). */
export function ffTime(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new MediaError('INVALID_ARGUMENT', `Invalid time ${seconds}: expected a finite number of seconds ≥ 0.`);
  }
  return seconds.toFixed(6);
}

// ---------------------------------------------------------------------------------------------
// Atomic output helpers (temp file in the destination's directory, then rename)

/** A unique temp path next to `file` (same directory ⇒ rename is atomic), keeping its extension. */
export function tempPathFor(file: string): string {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  const ext = path.extname(abs);
  const rand = Math.random().toString(36).slice(2, 10);
  return path.join(dir, `.${path.basename(abs, ext)}.tmp-${process.pid}-${rand}${ext}`);
}

/** Throws a clear error when the directory that should hold `file` does not exist. */
export function checkOutputDir(file: string): void {
  const dir = path.dirname(path.resolve(file));
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new MediaError('INVALID_ARGUMENT', `Output directory "${dir}" does not exist; create it first.`);
}

/**
 * An output file we may write: its directory exists and is writable, and the path is not something
 * other than a regular file (a directory, a device such as /dev/full, a FIFO).
 */
export function checkOutputFile(file: string): void {
  checkOutputDir(file);
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new MediaError('INVALID_ARGUMENT', `Output directory "${dir}" is not writable.`);
  }
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(abs);
  } catch {
    st = null;
  }
  if (st?.isDirectory()) throw new MediaError('INVALID_ARGUMENT', `Output "${file}" is a directory; name a file in it (e.g. ${path.join(file, 'out.wav')}).`);
  if (st && !st.isFile()) throw new MediaError('INVALID_ARGUMENT', `Output "${file}" exists and is not a regular file (a device or a pipe); choose another path.`);
}

/** Runs `produce(tmp)` to write a temp file, then renames it onto `file`; removes the temp file on failure. */
export async function writeAtomically<T>(file: string, produce: (tmp: string) => Promise<T>): Promise<T> {
  checkOutputDir(file);
  const tmp = tempPathFor(file);
  try {
    const r = await produce(tmp);
    fs.renameSync(tmp, path.resolve(file));
    return r;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
