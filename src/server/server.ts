// `audiox serve`: the HTTP server behind the local web UI and its JSON API (documented in the README).
//   GET  /                         the page (src/server/public/)
//   GET  /api/info                 models, parameter table, examples, limits, queue state
//   POST /api/generate             multipart form (fields + video/image/audio/initAudio files) or JSON → 202 job
//   GET  /api/jobs/:id             job snapshot; /events: Server-Sent Events; /preview.png: latest preview
//   DELETE /api/jobs/:id           cancel (queued: dropped; running: the sampler is aborted)
//   GET  /outputs/:name            generated files (only from the output directory)
//   GET  /api/examples/video       a synthetic sample video for the one-click video examples
// The job runner is injected (createPipelineRunner in production, small functions in unit tests).
import fs from 'node:fs';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { MediaError } from '../io/ffmpeg.ts';
import { JobQueue, QueueFullError, type Job, type JobFiles, type JobSnapshot, type RunJob } from './jobs.ts';
import { DEFAULT_SAMPLERS, describeSamplers, type DiffusionObjective } from '../sampling/registry.ts';
import { PARAMS } from '../pipeline/params-schema.ts';
import { BadRequestError, EXAMPLES, PARAM_FIELDS, parseJobParams, type JobParams } from './params.ts';
import { ensureSampleVideo } from './sample-video.ts';
import { sendFileFrom } from './files.ts';
import { removeOutputs, resultFiles } from './outputs.ts';
import { PayloadTooLargeError, formatMB, receiveMultipart, removeFiles, validateMedia } from './uploads.ts';

const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');

export interface ServerOptions {
  runJob: RunJob;
  /** Checks a request against the chosen model before queueing (throw BadRequestError for a 400). */
  validate?: (model: string, params: JobParams, files: JobFiles) => void;
  /** Model names offered in the picker (the first is the default unless `defaultModel`). */
  models: string[];
  /** A model's diffusion objective (undefined: not known): picks its samplers and their default. */
  objectiveOf?: (model: string) => DiffusionObjective | undefined;
  defaultModel?: string;
  /** Where results are written and the only place /outputs serves from. */
  outputDir: string;
  /** Per-file upload limit in bytes (default 200 MB). */
  uploadLimitBytes?: number;
  /** Jobs allowed to wait behind the running one (default 4); past it POST /api/generate answers 429. */
  queueLimit?: number;
  /** Default `previewEvery` shown in the form. */
  previewEvery?: number;
  /** Probe uploads with ffmpeg before queueing (default true). */
  validateMedia?: boolean;
  /** Parent of the private upload dir (default os.tmpdir()). */
  tempRoot?: string;
  /** Where the loud non-loopback warning goes (default console.error). */
  warn?: (msg: string) => void;
}

export interface AudioxServer {
  app: FastifyInstance;
  queue: JobQueue;
  /** Private directory holding uploads and the sample video (removed on close). */
  privateDir: string;
  listen(host?: string, port?: number): Promise<string>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** The loud warning printed when the server is bound to a non-loopback address (null for loopback). */
export function bindWarning(host: string): string | null {
  if (LOOPBACK.has(host)) return null;
  const line = '!'.repeat(78);
  return (
    `${line}\n!! WARNING: audiox serve is bound to ${host}, not 127.0.0.1.\n` +
    '!! Anyone who can reach this address can run generations, upload files and read the outputs;\n' +
    '!! there is no authentication. Bind 127.0.0.1 unless you know what you are doing.\n' +
    line
  );
}

/** The job as the API shows it: the snapshot plus URLs of its stream, preview and files. */
function view(s: JobSnapshot): Record<string, unknown> {
  const base = `/api/jobs/${s.id}`;
  return {
    ...s,
    urls: { self: base, events: `${base}/events`, preview: s.previews > 0 ? `${base}/preview.png?n=${s.previews}` : null },
    result: s.result && {
      ...s.result,
      items: s.result.items.map((it) => ({
        ...it,
        urls: Object.fromEntries(Object.entries(it).map(([k, name]) => [k, `/outputs/${name as string}`])),
      })),
    },
  };
}

export async function createServer(opts: ServerOptions): Promise<AudioxServer> {
  if (opts.models.length === 0) throw new Error('createServer: no models to offer');
  const uploadLimit = opts.uploadLimitBytes ?? 200 * 1024 * 1024;
  const defaultModel = opts.defaultModel ?? opts.models[0];
  const warn = opts.warn ?? ((m: string) => console.error(m));
  fs.mkdirSync(opts.outputDir, { recursive: true });
  const outputDir = fs.realpathSync(opts.outputDir);
  const privateDir = fs.mkdtempSync(path.join(opts.tempRoot ?? os.tmpdir(), 'audiox-serve-'));
  const uploadDir = path.join(privateDir, 'uploads');
  fs.mkdirSync(uploadDir, { mode: 0o700 });

  const queue = new JobQueue({
    run: opts.runJob,
    limit: opts.queueLimit ?? 4,
    onSettled: (job) => removeFiles(job.files),
    discard: (result) => removeOutputs(outputDir, resultFiles(result.items)),
  });
  const streams = new Set<ServerResponse>();

  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  await app.register(multipart, { throwFileSizeLimit: true });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (err instanceof QueueFullError) return reply.code(429).send({ error: err.message });
    if (err instanceof MediaError && err.code === 'FFMPEG_NOT_FOUND') return reply.code(500).send({ error: err.message });
    if (err instanceof BadRequestError || err instanceof MediaError) return reply.code(400).send({ error: err.message });
    if (err instanceof PayloadTooLargeError || err.statusCode === 413) {
      return reply.code(413).send({ error: err instanceof PayloadTooLargeError ? err.message : `Request too large: ${err.message}` });
    }
    const code = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    return reply.code(code).send({ error: err.message || 'Internal error' });
  });

  // Browser-borne attacks on a loopback server: other sites may not POST/DELETE here (Origin check), and when
  // bound to loopback a foreign Host header (DNS rebinding) is refused.
  let allowedHosts: Set<string> | null = null;
  app.addHook('onRequest', async (req, reply) => {
    if (allowedHosts && !allowedHosts.has(req.headers.host ?? '')) {
      return reply.code(403).send({ error: `Host "${req.headers.host}" is not allowed; use ${[...allowedHosts][0]}.` });
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined) {
      let host = '';
      try {
        host = new URL(origin).host;
      } catch {
        // "null" or garbage: refused below
      }
      if (host !== req.headers.host) return reply.code(403).send({ error: `Cross-origin request from ${origin} refused.` });
    }
  });

  const findJob = (req: FastifyRequest, reply: FastifyReply): Job | null => {
    const job = queue.get((req.params as { id: string }).id);
    if (!job) void reply.code(404).send({ error: 'No such job (it may have expired).' });
    return job ?? null;
  };

  app.get('/', (req, reply) => sendFileFrom(PUBLIC_DIR, 'index.html', req, reply));
  app.get('/static/:name', (req, reply) => sendFileFrom(PUBLIC_DIR, (req.params as { name: string }).name, req, reply));
  app.get('/outputs/:name', (req, reply) =>
    sendFileFrom(outputDir, (req.params as { name: string }).name, req, reply, (req.query as { download?: string }).download === '1'),
  );

  app.get('/api/info', async () => ({
    models: opts.models,
    defaultModel,
    samplers: describeSamplers(),
    defaultSamplers: DEFAULT_SAMPLERS,
    modelObjectives: Object.fromEntries(opts.models.map((m) => [m, opts.objectiveOf?.(m) ?? null])),
    fields: PARAM_FIELDS,
    defaults: { previewEvery: opts.previewEvery ?? PARAMS.previewEvery.default },
    examples: EXAMPLES,
    limits: { uploadLimitBytes: uploadLimit, uploadLimit: formatMB(uploadLimit), queueLimit: opts.queueLimit ?? 4 },
    queue: queue.stats,
  }));

  app.get('/api/examples/video', async (req, reply) => {
    const file = await ensureSampleVideo(privateDir);
    return sendFileFrom(path.dirname(file), path.basename(file), req, reply);
  });

  app.post('/api/generate', async (req, reply) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > uploadLimit * 4 + 1024 * 1024) {
      throw new PayloadTooLargeError(`The request (${formatMB(declared)}) exceeds the upload limit of ${formatMB(uploadLimit)} per file.`);
    }
    let fields: Record<string, unknown>;
    let files: JobFiles = {};
    if (req.isMultipart()) {
      const form = await receiveMultipart(req, uploadDir, uploadLimit);
      fields = form.fields;
      files = form.files;
    } else {
      if (req.body !== undefined && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
        throw new BadRequestError('Send a multipart form or a JSON object.');
      }
      fields = (req.body as Record<string, unknown> | undefined) ?? {};
    }
    try {
      const model = fields.model === undefined || fields.model === '' ? defaultModel : fields.model;
      if (typeof model !== 'string' || !opts.models.includes(model)) {
        throw new BadRequestError(`Unknown model ${JSON.stringify(model)}; available: ${opts.models.join(', ')}.`);
      }
      const params = parseJobParams(fields, opts.objectiveOf?.(model));
      opts.validate?.(model, params, files);
      if (opts.validateMedia !== false) await validateMedia(files, { seekTime: params.secondsStart });
      const job = queue.submit(model, params, files);
      return reply.code(202).send(view(job.snapshot()));
    } catch (e) {
      removeFiles(files);
      throw e;
    }
  });

  app.get('/api/jobs/:id', (req, reply) => {
    const job = findJob(req, reply);
    return job ? reply.send(view(job.snapshot())) : reply;
  });

  app.get('/api/jobs/:id/preview.png', (req, reply) => {
    const job = findJob(req, reply);
    if (!job) return reply;
    if (!job.previewPng) return reply.code(404).send({ error: 'No preview yet.' });
    return reply.header('Content-Type', 'image/png').header('Cache-Control', 'no-store').send(job.previewPng);
  });

  app.delete('/api/jobs/:id', (req, reply) => {
    const job = findJob(req, reply);
    if (!job) return reply;
    if (!queue.cancel(job.id)) {
      const what = job.status === 'done' ? 'finished' : job.status;
      return reply.code(409).send({ ...view(job.snapshot()), error: `The job has already ${what}.` });
    }
    return reply.send(view(job.snapshot()));
  });

  app.get('/api/jobs/:id/events', (req, reply) => {
    const job = findJob(req, reply);
    if (!job) return reply;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    const send = (type: string, s: JobSnapshot): void => {
      res.write(`event: ${type}\ndata: ${JSON.stringify(view(s))}\n\n`);
    };
    let open = true;
    const finish = (): void => {
      if (!open) return;
      open = false;
      clearInterval(ping);
      job.off('event', onEvent);
      streams.delete(res);
      res.end();
    };
    const onEvent = (type: string, s: JobSnapshot): void => {
      send(type, s);
      if (type === 'done' || type === 'failed' || type === 'cancelled') finish();
    };
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    streams.add(res);
    send(job.terminal ? job.status : 'status', job.snapshot());
    if (job.terminal) return finish();
    job.on('event', onEvent);
    req.raw.on('close', finish);
  });

  let url = '';
  return {
    app,
    queue,
    privateDir,
    async listen(host = '127.0.0.1', port = 7860): Promise<string> {
      const warning = bindWarning(host);
      if (warning) warn(warning);
      await app.listen({ host, port });
      const addr = app.server.address();
      const actualPort = addr && typeof addr === 'object' ? addr.port : port;
      url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
      if (LOOPBACK.has(host)) allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]'].map((h) => `${h}:${actualPort}`));
      return url;
    },
    async close(): Promise<void> {
      queue.cancelAll();
      await Promise.race([queue.idle(), new Promise((r) => setTimeout(r, 10_000).unref())]);
      for (const s of streams) s.end();
      await app.close();
      fs.rmSync(privateDir, { recursive: true, force: true });
    },
  };
}
