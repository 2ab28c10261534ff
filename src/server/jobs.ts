// The job queue behind the web UI: one generation at a time (the tfjs backend and the loaded model are shared),
// a bounded FIFO of waiting jobs, cancellation (queued: removed; running: its AbortSignal fires and the slot is
// freed when the runner returns), and per-job events for the SSE stream. A runner that throws only fails its job.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { SAMPLER_REGISTRY } from '../sampling/registry.ts';
import type { JobParams } from './params.ts';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** Conditioning / init files of a job (absolute paths inside the server's private upload dir). */
export interface JobFiles {
  video?: string;
  image?: string;
  audio?: string;
  initAudio?: string;
}

export interface JobProgress {
  /** What the job is doing: 'loading model', 'conditioning', 'sampling', 'decoding', 'writing'. */
  stage: string;
  /** 1-based count of finished sampler steps. */
  step: number;
  /** Steps in all; null when the sampler picks them as it goes (k-dpm-adaptive). */
  steps: number | null;
  /** Fraction of the sampling done, 0 … 1. */
  fraction: number;
  /** Since the job started running. */
  elapsedMs: number;
  /** Remaining sampling time from the progress rate so far; null until two steps were reported. */
  etaMs: number | null;
}

/** One generated item (a batch element): file names inside the output directory. */
export interface JobResultItem {
  audio: string;
  video?: string;
  spectrogram: string;
  waveform: string;
}

export interface JobResult {
  items: JobResultItem[];
  seed: number;
  sampleRate: number;
  /** Every parameter as resolved by the pipeline, to repeat the run. */
  params: Record<string, unknown>;
  timings?: Record<string, number>;
}

/** What a runner gets for one job. */
export interface JobContext {
  id: string;
  model: string;
  params: JobParams;
  files: JobFiles;
  signal: AbortSignal;
  progress(p: ProgressUpdate): void;
  /** A PNG of the current denoised estimate. */
  preview(png: Buffer): void;
}

export interface ProgressUpdate {
  stage?: string;
  step?: number;
  steps?: number | null;
  /** Default: step / steps (kept as it was when steps are not known). */
  fraction?: number;
}

export type RunJob = (ctx: JobContext) => Promise<JobResult>;

export interface JobSnapshot {
  id: string;
  model: string;
  status: JobStatus;
  /** 1-based place among the waiting jobs; 0 when not waiting. */
  position: number;
  cancelRequested: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  progress: JobProgress | null;
  /** Increments with every preview image (0: none yet). */
  previews: number;
  params: JobParams;
  result: JobResult | null;
  error: string | null;
}

export type JobEvent = 'status' | 'progress' | 'preview' | 'done' | 'failed' | 'cancelled';

export class QueueFullError extends Error {
  constructor(readonly limit: number) {
    super(`The server is busy: ${limit} job(s) are already waiting (the queue limit). Try again later.`);
    this.name = 'QueueFullError';
  }
}

export class Job extends EventEmitter {
  readonly id = randomUUID();
  readonly createdAt = new Date();
  status: JobStatus = 'queued';
  position = 0;
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  progress: JobProgress | null = null;
  previewPng: Buffer | null = null;
  previews = 0;
  result: JobResult | null = null;
  error: string | null = null;
  readonly controller = new AbortController();
  /** Wall time and progress fraction of the first sampling progress report (for the ETA). */
  samplingStart = 0;
  samplingStartFraction = 0;

  constructor(
    readonly model: string,
    readonly params: JobParams,
    readonly files: JobFiles,
  ) {
    super();
    this.setMaxListeners(100);
  }

  get terminal(): boolean {
    return this.status === 'done' || this.status === 'failed' || this.status === 'cancelled';
  }

  snapshot(): JobSnapshot {
    return {
      id: this.id,
      model: this.model,
      status: this.status,
      position: this.position,
      cancelRequested: this.controller.signal.aborted,
      createdAt: this.createdAt.toISOString(),
      startedAt: this.startedAt?.toISOString() ?? null,
      finishedAt: this.finishedAt?.toISOString() ?? null,
      progress: this.progress,
      previews: this.previews,
      params: this.params,
      result: this.result,
      error: this.error,
    };
  }

  emitEvent(type: JobEvent): void {
    this.emit('event', type, this.snapshot());
  }
}

export interface JobQueueOptions {
  run: RunJob;
  /** Most jobs waiting behind the running one; a submit past it throws QueueFullError. */
  limit: number;
  /** Called once a job is settled (e.g. to delete its uploads). */
  onSettled?: (job: Job) => void;
  /** Called with a result the runner returned although its job was cancelled meanwhile (delete its files). */
  discard?: (result: JobResult) => void;
  /** Settled jobs kept for GET /api/jobs/:id (oldest dropped first). */
  keep?: number;
}

export class JobQueue {
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private running: Job | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: JobQueueOptions) {}

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  get stats(): { running: string | null; waiting: number; limit: number } {
    return { running: this.running?.id ?? null, waiting: this.waiting.length, limit: this.opts.limit };
  }

  submit(model: string, params: JobParams, files: JobFiles): Job {
    if (this.waiting.length >= this.opts.limit) throw new QueueFullError(this.opts.limit);
    const job = new Job(model, params, files);
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    this.renumber();
    this.prune();
    queueMicrotask(() => this.pump());
    return job;
  }

  /** Cancels a job; false when it had already finished. */
  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job || job.terminal) return false;
    if (job.status === 'queued') {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      this.renumber();
      this.settle(job, 'cancelled');
    } else if (!job.controller.signal.aborted) {
      job.controller.abort(new Error('cancelled by the user'));
      job.emitEvent('status');
    }
    return true;
  }

  /** Resolves when nothing runs or waits (used on shutdown and in tests). */
  idle(): Promise<void> {
    if (!this.running && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels everything (shutdown). */
  cancelAll(): void {
    for (const job of [...this.waiting]) this.cancel(job.id);
    if (this.running) this.cancel(this.running.id);
  }

  private renumber(): void {
    this.waiting.forEach((job, i) => {
      if (job.position !== i + 1) {
        job.position = i + 1;
        job.emitEvent('status');
      }
    });
  }

  private pump(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (!job) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
      return;
    }
    this.running = job;
    this.renumber();
    void this.execute(job).finally(() => {
      this.running = null;
      this.pump();
    });
  }

  private async execute(job: Job): Promise<void> {
    job.status = 'running';
    job.position = 0;
    job.startedAt = new Date();
    const steps = SAMPLER_REGISTRY[job.params.sampler].progressSteps(job.params.steps);
    job.progress = { stage: 'starting', step: 0, steps, fraction: 0, elapsedMs: 0, etaMs: null };
    job.emitEvent('status');
    const ctx: JobContext = {
      id: job.id,
      model: job.model,
      params: job.params,
      files: job.files,
      signal: job.controller.signal,
      progress: (p) => this.onProgress(job, p),
      preview: (png) => {
        job.previewPng = png;
        job.previews++;
        job.emitEvent('preview');
      },
    };
    try {
      const result = await this.opts.run(ctx);
      if (job.controller.signal.aborted) {
        try {
          this.opts.discard?.(result);
        } catch {
          // Cleanup failures must not change the job's outcome.
        }
        return this.settle(job, 'cancelled');
      }
      job.result = result;
      this.settle(job, 'done');
    } catch (e) {
      if (job.controller.signal.aborted) return this.settle(job, 'cancelled');
      job.error = e instanceof Error ? e.message : String(e);
      this.settle(job, 'failed');
    }
  }

  private onProgress(job: Job, p: ProgressUpdate): void {
    if (job.terminal || !job.startedAt) return;
    const prev = job.progress!;
    const now = Date.now();
    const stage = p.stage ?? prev.stage;
    const step = p.step ?? prev.step;
    const steps = p.steps === undefined ? prev.steps : p.steps;
    const fraction = p.fraction ?? (steps ? Math.min(1, step / steps) : prev.fraction);
    if (step > 0 && job.samplingStart === 0) {
      job.samplingStart = now;
      job.samplingStartFraction = fraction;
    }
    let etaMs: number | null = null;
    if (fraction > job.samplingStartFraction && job.samplingStart > 0) {
      etaMs = Math.round(((now - job.samplingStart) / (fraction - job.samplingStartFraction)) * (1 - fraction));
    }
    job.progress = { stage, step, steps, fraction, elapsedMs: now - job.startedAt.getTime(), etaMs };
    job.emitEvent('progress');
  }

  private settle(job: Job, status: 'done' | 'failed' | 'cancelled'): void {
    try {
      this.opts.onSettled?.(job);
    } catch {
      // Cleanup failures must not change the job's outcome.
    }
    job.status = status;
    job.position = 0;
    job.finishedAt = new Date();
    if (job.progress && job.startedAt) job.progress = { ...job.progress, elapsedMs: Date.now() - job.startedAt.getTime(), etaMs: 0 };
    job.emitEvent(status);
  }

  private prune(): void {
    const keep = this.opts.keep ?? 200;
    if (this.jobs.size <= keep) return;
    for (const [id, job] of this.jobs) {
      if (this.jobs.size <= keep) break;
      if (job.terminal) this.jobs.delete(id);
    }
  }
}
