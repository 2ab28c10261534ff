// Receiving a generate request: multipart form fields + up to four media files, each streamed to a generated
// name in the server's private upload dir (never a client-chosen path), capped at the upload limit (→ 413);
// then every file is probed and test-decoded with ffmpeg (as generate()'s preflight does) so bad media is rejected
// with a clear 400 before the job is queued.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { MediaError, probeMedia } from '../io/ffmpeg.ts';
import { checkMediaInputs } from '../pipeline/media.ts';
import type { JobFiles } from './jobs.ts';
import { BadRequestError } from './params.ts';

export const UPLOAD_FIELDS = ['video', 'image', 'audio', 'initAudio'] as const;
export type UploadField = (typeof UPLOAD_FIELDS)[number];

const LABEL: Record<UploadField, string> = {
  video: 'video',
  image: 'image',
  audio: 'audio prompt',
  initAudio: 'init audio',
};

export class PayloadTooLargeError extends Error {
  readonly statusCode = 413;
  constructor(message: string) {
    super(message);
    this.name = 'PayloadTooLargeError';
  }
}

export function formatMB(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${+(bytes / 1024 / 1024).toFixed(1)} MB` : `${+(bytes / 1024).toFixed(1)} KB`;
}

/** Keeps a short alphanumeric extension of the client's file name (ffmpeg and image detection use it). */
function safeExtension(filename: string): string {
  const ext = path.extname(filename).toLowerCase();
  return /^\.[a-z0-9]{1,5}$/.test(ext) ? ext : '';
}

export interface ReceivedForm {
  fields: Record<string, string>;
  files: JobFiles;
}

export function removeFiles(files: JobFiles): void {
  for (const f of Object.values(files)) if (f) fs.rmSync(f, { force: true });
}

/** Streams a multipart request's files into `uploadDir`; on any error the files written so far are removed. */
export async function receiveMultipart(req: FastifyRequest, uploadDir: string, limitBytes: number): Promise<ReceivedForm> {
  const fields: Record<string, string> = {};
  const files: JobFiles = {};
  let writing: fs.WriteStream | null = null;
  try {
    // An empty body never reaches the parser, but it is not a form either (that needs at least a closing boundary).
    if (req.headers['content-length'] === '0') throw new Error('Unexpected end of form');
    const parts = req.parts({
      limits: { fileSize: limitBytes, files: UPLOAD_FIELDS.length, fields: 64, fieldSize: 64 * 1024, parts: 80 },
    });
    for await (const part of parts) {
      if (part.type === 'field') {
        if (typeof part.value !== 'string') throw new BadRequestError(`Field "${part.fieldname}" must be text.`);
        if (part.fieldname in fields) throw new BadRequestError(`Field "${part.fieldname}" was sent twice.`);
        fields[part.fieldname] = part.value;
        continue;
      }
      const field = part.fieldname as UploadField;
      if (!(UPLOAD_FIELDS as readonly string[]).includes(field)) {
        part.file.resume();
        throw new BadRequestError(`Unexpected file field "${part.fieldname}"; expected one of ${UPLOAD_FIELDS.join(', ')}.`);
      }
      if (files[field]) throw new BadRequestError(`File field "${field}" was sent twice.`);
      const dest = path.join(uploadDir, `${randomUUID()}${safeExtension(part.filename ?? '')}`);
      files[field] = dest;
      const out = fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 });
      writing = out;
      await pipeline(part.file, out);
      writing = null;
      // Browsers send empty file inputs as a zero-byte part with an empty file name: not an upload.
      if (!part.filename && fs.statSync(dest).size === 0) {
        fs.rmSync(dest, { force: true });
        delete files[field];
      }
    }
    return { fields, files };
  } catch (e) {
    // A write stream destroyed while its file was still being opened creates the file afterwards: wait for it.
    const w = writing as fs.WriteStream | null;
    if (w && !w.closed) {
      if (!w.destroyed) w.destroy();
      await new Promise<void>((resolve) => {
        w.once('close', () => resolve());
        setTimeout(resolve, 5000).unref();
      });
    }
    removeFiles(files);
    const code = (e as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') {
      const field = (e as { part?: { fieldname?: string } }).part?.fieldname as UploadField | undefined;
      throw new PayloadTooLargeError(
        `The ${(field && LABEL[field]) ?? 'file'} upload is larger than the upload limit of ${formatMB(limitBytes)} ` +
          '(start the server with a larger --max-upload-mb to allow it).',
      );
    }
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
      throw new PayloadTooLargeError(`Too many form parts (${(e as Error).message}).`);
    }
    throw formError(e);
  }
}

/**
 * Our own errors and the server's file-system errors pass; everything else the multipart parser throws (no or an
 * empty boundary, a body that ends before the closing boundary, malformed part headers, garbage) is the
 * client's fault → BadRequestError.
 */
function formError(e: unknown): unknown {
  if (e instanceof BadRequestError || e instanceof PayloadTooLargeError) return e;
  if (typeof (e as NodeJS.ErrnoException).errno === 'number' && (e as NodeJS.ErrnoException).syscall) return e;
  const msg = e instanceof Error ? e.message : String(e);
  let why: string;
  if (/boundary not found/i.test(msg)) why = 'its Content-Type has no boundary (expected multipart/form-data; boundary=…)';
  else if (/unexpected end/i.test(msg)) why = 'the body ended before the closing boundary (truncated or incomplete)';
  else if (/malformed part header/i.test(msg)) why = 'a part has a malformed header';
  else why = msg.split('\n')[0].slice(0, 200) || 'it could not be parsed';
  return new BadRequestError(`The multipart form could not be read: ${why}. Send a complete multipart/form-data body.`);
}

/**
 * Checks each upload as generate()'s preflight will (checkMediaInputs: the stream kind, and a cheap decode of
 * the conditioning window starting at `seekTime`), plus the field's own rules (a still image is not a video).
 * A file that fails → BadRequestError naming the field and the problem; never the server's upload path.
 */
export async function validateMedia(files: JobFiles, opts: { seekTime?: number } = {}): Promise<void> {
  for (const field of UPLOAD_FIELDS) {
    const file = files[field];
    if (!file) continue;
    let info;
    try {
      info = await probeMedia(file);
    } catch (e) {
      if (e instanceof MediaError && e.code !== 'FFMPEG_NOT_FOUND') {
        throw new BadRequestError(`The ${LABEL[field]} upload is not a readable media file: ${publicDetail(e.message, file)}`);
      }
      throw e;
    }
    if (field === 'video' && (!info.video || info.isStillImage)) {
      throw new BadRequestError(
        info.isStillImage
          ? 'The video upload is a still image; send it as "image" instead.'
          : 'The video upload has no video stream.',
      );
    }
    if (field === 'image' && !info.video) throw new BadRequestError('The image upload contains no picture.');
    if ((field === 'audio' || field === 'initAudio') && !info.audio) {
      throw new BadRequestError(`The ${LABEL[field]} upload has no audio stream.`);
    }
    try {
      await checkMediaInputs({ [field]: file }, { seekTime: opts.seekTime, labels: { [field]: '' } });
    } catch (e) {
      if (e instanceof MediaError && e.code !== 'FFMPEG_NOT_FOUND') {
        throw new BadRequestError(`The ${LABEL[field]} upload could not be decoded: ${publicDetail(e.message, file)}`);
      }
      throw e;
    }
  }
}

/** Lines of ffmpeg's stderr that say what went wrong (not its banner-like progress lines). */
const TELLING = /invalid|error|not |no |could|cannot|unsupported|too |exceed|missing|corrupt|truncat|empty/i;

/**
 * One line saying what is wrong with an upload, for the client: the upload's path (quoted or bare) becomes
 * "the file", any other absolute path "(path)", ffmpeg's "[decoder @ 0x…]" prefixes go, and when the first line
 * only announces ffmpeg's output ("…exited with code 1:") the first telling line of that output is used.
 */
export function publicDetail(message: string, file: string): string {
  const names = new Set([file, path.resolve(file)]);
  try {
    names.add(fs.realpathSync(file));
  } catch {
    // already removed
  }
  let text = message;
  for (const n of [...names].sort((a, b) => b.length - a.length)) text = text.split(`"${n}"`).join('the file').split(n).join('the file');
  text = text.replace(/(?<![\w.@+-])(?:\/[\w.@+-]+){2,}\/?/g, '(path)');
  const lines = text
    .split('\n')
    .map((l) => l.replace(/^(\s*\[[^\]]*@ ?0x[0-9a-f]+\]\s*)+/i, '').replace(/^:\s*/, '').trim())
    .filter((l) => l !== '');
  let line = lines[0] ?? 'unknown error';
  if (line.endsWith(':')) line = `${line.slice(0, -1)}: ${lines.slice(1).find((l) => TELLING.test(l)) ?? lines[1] ?? ''}`.trim();
  return line.length > 300 ? `${line.slice(0, 297)}…` : line;
}
