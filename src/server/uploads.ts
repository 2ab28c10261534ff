// Receiving a generate request: multipart form fields + up to four media files, each streamed to a generated
// name in the server's private upload dir (never a client-chosen path), capped at the upload limit (→ 413);
// then every file is probed with ffmpeg so bad media is rejected with a clear 400 before the job is queued.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { MediaError, probeMedia } from '../io/ffmpeg.ts';
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
  try {
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
      await pipeline(part.file, fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 }));
      // Browsers send empty file inputs as a zero-byte part with an empty file name: not an upload.
      if (!part.filename && fs.statSync(dest).size === 0) {
        fs.rmSync(dest, { force: true });
        delete files[field];
      }
    }
    return { fields, files };
  } catch (e) {
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
    throw e;
  }
}

/** Probes each upload; a file that is not the media its field needs → BadRequestError naming the field. */
export async function validateMedia(files: JobFiles): Promise<void> {
  for (const field of UPLOAD_FIELDS) {
    const file = files[field];
    if (!file) continue;
    let info;
    try {
      info = await probeMedia(file);
    } catch (e) {
      if (e instanceof MediaError && e.code !== 'FFMPEG_NOT_FOUND') {
        throw new BadRequestError(`The ${LABEL[field]} upload is not a readable media file: ${firstLine(e.message)}`);
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
  }
}

function firstLine(s: string): string {
  // probeMedia's messages quote the temp path; the client only knows its own file name.
  return s.split('\n')[0].replace(/"[^"]*"/, 'the file');
}
