// The production job runner. Generation runs in a worker thread (generation-worker.ts) that initialises the
// server's backend and keeps one model loaded, so the HTTP event loop stays free while a model samples: status,
// SSE, cancel and the page answer at once. A cancel is sent to the worker and takes effect at the sampler's next
// step. Progress, previews (decoded and rendered in the worker) and results come back as messages. Whatever a
// job reserved in the output directory is removed unless it finished: cancelled, failed, or the worker died.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { activeBackend } from '../backend/index.ts';
import { readConfig } from '../models/config.ts';
import { resolveModelDir } from '../models/load.ts';
import { GenerateError, resolveParams, type ModelLimits } from '../pipeline/generate.ts';
import { toGenerateOptions } from './job-executor.ts';
import type { JobFiles, JobResult, RunJob } from './jobs.ts';
import { reserveOutputs } from './files.ts';
import { removeOutputs, resultFiles } from './outputs.ts';
import { BadRequestError, type JobParams } from './params.ts';
import type { FromWorker, ToWorker, WorkerError, WorkerInit, WorkerMemory, WorkerRequest } from './worker-protocol.ts';

export { decodePreview, toGenerateOptions } from './job-executor.ts';

export interface PipelineRunnerOptions {
  outputDir: string;
  /** Backend for the worker (default: the one initialised in this process, else initBackend's default). */
  backend?: string;
}

export interface PipelineRunner {
  runJob: RunJob;
  /** Checks a request against the model's limits before it is queued (BadRequestError → HTTP 400). */
  validate(model: string, params: JobParams, files: JobFiles): void;
  /** Loads `name` in the worker now (e.g. at start-up) so the first job does not wait for it. */
  preload(name: string): Promise<void>;
  /** The worker's tfjs memory (tests check it for leaks); starts the worker if needed. */
  memory(): Promise<WorkerMemory>;
  /** Stops the worker (a running job is abandoned and its files removed). */
  dispose(): Promise<void>;
}

const ENTRY = new URL('./generation-worker.mjs', import.meta.url);

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onEvent?(m: FromWorker): void;
}

function fromWorkerError(e: WorkerError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** The worker thread and its request/response bookkeeping. */
class GenerationWorker {
  private worker: Worker | null = null;
  private ready: Promise<Worker> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly init: WorkerInit) {}

  private start(): Promise<Worker> {
    if (this.ready) return this.ready;
    const w = new Worker(ENTRY, { workerData: this.init });
    this.worker = w;
    this.ready = new Promise<Worker>((resolve, reject) => {
      const fail = (e: Error): void => {
        reject(e);
        this.stopped(w, e);
      };
      w.on('message', (m: FromWorker) => {
        if (m.type === 'ready') return resolve(w);
        if (m.type === 'fatal') {
          void w.terminate();
          return fail(new Error(`The generation worker could not start: ${m.error.message}`));
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        if (m.type === 'done') {
          this.pending.delete(m.id);
          p.resolve(m.value);
        } else if (m.type === 'error') {
          this.pending.delete(m.id);
          p.reject(fromWorkerError(m.error));
        } else p.onEvent?.(m);
        this.updateRef();
      });
      w.on('error', (e) => fail(new Error(`The generation worker crashed: ${e.message}`)));
      w.on('exit', (code) => fail(new Error(`The generation worker stopped (exit code ${code}); the next job starts a new one.`)));
    });
    // Nothing rejects it unobserved: callers await it, and a failed start is reported to every pending request.
    this.ready.catch(() => {});
    return this.ready;
  }

  /** The worker is gone: every request still waiting fails, and the next one starts a new worker. */
  private stopped(w: Worker, e: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    this.ready = null;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(e);
  }

  /** Keeps the process alive only while a request is in flight. */
  private updateRef(): void {
    if (!this.worker) return;
    if (this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  async request<T>(msg: WorkerRequest, onEvent?: (m: FromWorker) => void): Promise<{ id: number; result: Promise<T> }> {
    const w = await this.start();
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
    });
    this.updateRef();
    w.postMessage({ ...msg, id } satisfies ToWorker);
    return { id, result };
  }

  /** A message about a request in flight (no answer expected). */
  send(m: Extract<ToWorker, { type: 'abort' | 'names' }>): void {
    this.worker?.postMessage(m);
  }

  /**
   * Aborts what runs and waits up to `graceMs` for it to wind down (the worker then removes its partial files
   * and stops its ffmpeg children), then terminates the worker.
   */
  async dispose(graceMs = 3000): Promise<void> {
    const w = this.worker;
    if (!w) return;
    for (const id of this.pending.keys()) w.postMessage({ type: 'abort', id, reason: 'the server is shutting down' } satisfies ToWorker);
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && this.worker === w && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await w.terminate();
    this.stopped(w, new Error('The generation worker was stopped (server shutting down).'));
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  const e = r instanceof Error ? r : new Error(typeof r === 'string' ? r : 'cancelled');
  return e;
}

export function createPipelineRunner(opts: PipelineRunnerOptions): PipelineRunner {
  let backend = opts.backend;
  if (backend === undefined) {
    try {
      backend = activeBackend().name;
    } catch {
      backend = undefined; // not initialised here: the worker picks the default order
    }
  }
  const worker = new GenerationWorker({ backend });
  const limits = new Map<string, ModelLimits>();

  /** The model's length limit from its config.json (no weights loaded). */
  function limitsOf(name: string): ModelLimits {
    let l = limits.get(name);
    if (!l) {
      const { name: resolved, dir } = resolveModelDir(name);
      const config = readConfig(path.join(dir, 'config.json'));
      l = { name: resolved, maxSeconds: config.sample_size / config.sample_rate };
      limits.set(name, l);
    }
    return l;
  }

  const runJob: RunJob = async (ctx): Promise<JobResult> => {
    ctx.signal.throwIfAborted();
    // Every output name the job may write, reserved here: whatever becomes of the worker, they can be removed.
    const reserved: string[] = [];
    let id = 0;
    const onEvent = (m: FromWorker): void => {
      if (m.type === 'progress') ctx.progress({ stage: m.stage, step: m.step, steps: m.steps });
      else if (m.type === 'preview') ctx.preview(Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength));
      else if (m.type === 'reserve') {
        try {
          ctx.signal.throwIfAborted();
          const names = reserveOutputs(opts.outputDir, m.suffixes);
          reserved.push(...names);
          worker.send({ type: 'names', id, names });
        } catch (e) {
          worker.send({ type: 'names', id, names: null, error: (e as Error).message });
        }
      }
    };
    const req = await worker.request<JobResult>(
      { type: 'run', model: ctx.model, params: ctx.params, files: ctx.files, outputDir: opts.outputDir },
      onEvent,
    );
    id = req.id;
    const result = req.result;
    const onAbort = (): void => worker.send({ type: 'abort', id, reason: abortReason(ctx.signal).message });
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await result;
      // The cancel crossed the finished job on its way to the worker: drop what it wrote.
      if (ctx.signal.aborted) {
        removeOutputs(opts.outputDir, [...reserved, ...resultFiles(res.items)]);
        throw abortReason(ctx.signal);
      }
      return res;
    } catch (e) {
      removeOutputs(opts.outputDir, reserved);
      throw e;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  };

  return {
    runJob,
    validate(model, params, files) {
      try {
        resolveParams(limitsOf(model), toGenerateOptions(params, files));
      } catch (e) {
        if (e instanceof GenerateError) throw new BadRequestError(e.message);
        throw new BadRequestError(`Model "${model}" is not usable: ${(e as Error).message}`);
      }
    },
    async preload(name) {
      await (await worker.request<null>({ type: 'preload', model: name })).result;
    },
    async memory() {
      return (await worker.request<WorkerMemory>({ type: 'memory' })).result;
    },
    dispose: () => worker.dispose(),
  };
}
