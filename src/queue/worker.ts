// `audiox worker`: takes jobs from the queue and runs each in a BullMQ sandboxed processor (a child
// process holding the model), so this process's event loop stays free to renew the job locks.
//
// Failure handling, chosen deliberately:
// - lock duration (default 60 s, renewed every half of it): a live worker always renews in time, since the
//   generation runs in the child; a dead worker's job is taken back within about lock + stalled interval.
// - stalled jobs (their worker died) go back to the queue up to --max-stalled times (default 2), then fail:
//   an item that kills its worker every time must not take the whole pool down with it.
// - SIGTERM / SIGINT: no new jobs; the current one finishes if it does within --grace seconds, otherwise
//   (or on a second signal) it is released: moved back to waiting, its generation cancelled, nothing written.
import { Worker, type Job } from 'bullmq';
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { COMPILED, siblingModule } from '../layout.ts';
import { preflightModel } from '../cli/commands/generate.ts';
import { checkQueueName, connectRedis, type QueueJobData, type QueueJobResult } from './connection.ts';

export interface WorkerOptions {
  redis: string;
  queue: string;
  model: string;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalled: number;
  /** Seconds a signalled worker waits for its jobs before releasing them. */
  graceSeconds: number;
  name?: string;
  log?: (line: string) => void;
}

export const WORKER_DEFAULTS = { concurrency: 1, lockDurationMs: 60_000, stalledIntervalMs: 30_000, maxStalled: 2, graceSeconds: 60 };

const PROCESSOR = siblingModule(import.meta.url, 'processor');

/** The child runs the TypeScript processor through tsx's loader, like bin/audiox.mjs does. */
function childExecArgv(): string[] {
  if (COMPILED) return [...process.execArgv];
  const loader = createRequire(import.meta.url).resolve('tsx');
  return [...process.execArgv, '--import', `file://${loader}`];
}

function itemId(job: Job<QueueJobData> | undefined): string {
  return job?.data?.item?.id ?? job?.id ?? '?';
}

/** Runs a worker until it is signalled and has finished or released its jobs. */
export async function runWorker(o: WorkerOptions): Promise<void> {
  const log = o.log ?? ((s: string) => console.error(s));
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new Error(`--concurrency must be a positive integer, got ${o.concurrency}`);
  if (!(o.lockDurationMs >= 1000)) throw new Error(`--lock-duration must be at least 1000 ms, got ${o.lockDurationMs}`);
  if (!(o.stalledIntervalMs >= 500)) throw new Error(`--stalled-interval must be at least 500 ms, got ${o.stalledIntervalMs}`);
  if (!Number.isInteger(o.maxStalled) || o.maxStalled < 0) throw new Error(`--max-stalled must be an integer ≥ 0, got ${o.maxStalled}`);
  if (!(o.graceSeconds >= 0)) throw new Error(`--grace must be ≥ 0 seconds, got ${o.graceSeconds}`);
  const model = preflightModel(o.model);
  const name = o.name ?? `${os.hostname()}-${process.pid}`;
  const connection = await connectRedis(o.redis, { persistent: true });
  const active = new Map<string, Job<QueueJobData>>();
  const worker = new Worker<QueueJobData, QueueJobResult>(checkQueueName(o.queue), PROCESSOR, {
    connection,
    name,
    concurrency: o.concurrency,
    lockDuration: o.lockDurationMs,
    stalledInterval: o.stalledIntervalMs,
    maxStalledCount: o.maxStalled,
    useWorkerThreads: false,
    workerForkOptions: { execArgv: childExecArgv(), env: { ...process.env, AUDIOX_WORKER_MODEL: o.model } },
    autorun: false,
  });
  worker.on('active', (job) => {
    active.set(job.id!, job);
    log(`${name}: start ${itemId(job)} (attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1})`);
  });
  worker.on('completed', (job, r) => {
    active.delete(job.id!);
    log(`${name}: ${r.status === 'skipped' ? 'already complete' : 'done'} ${itemId(job)} in ${r.seconds.toFixed(1)} s`);
  });
  worker.on('failed', (job, err) => {
    if (job) active.delete(job.id!);
    if (err.name === 'WaitingError') return;
    const retry = job && err.name !== 'UnrecoverableError' && job.attemptsMade < (job.opts.attempts ?? 1);
    log(`${name}: failed ${itemId(job)}: ${err.message}${retry ? ' (will retry)' : ''}`);
  });
  worker.on('stalled', (jobId) => log(`${name}: job ${jobId} stalled (its worker stopped renewing the lock); back in the queue`));
  worker.on('error', (err) => log(`${name}: ${err.message}`));

  let stopping: Promise<void> | null = null;
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    for (const job of active.values()) {
      try {
        await job.moveToWait(job.token);
        log(`${name}: released ${itemId(job)} back to the queue`);
      } catch (e) {
        log(`${name}: could not release ${itemId(job)}: ${(e as Error).message}`);
      }
    }
    worker.cancelAllJobs('released by the worker shutting down');
  };
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) {
      log(`${name}: ${sig} again: releasing the current job now`);
      void release();
      return;
    }
    const graceMs = o.graceSeconds * 1000;
    log(active.size ? `${name}: ${sig}: finishing the current job (up to ${o.graceSeconds} s, then it is released; signal again to release now)` : `${name}: ${sig}: stopping`);
    const timer = setTimeout(() => void release(), graceMs);
    stopping = worker.close().finally(() => clearTimeout(timer));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  log(`${name}: model ${model.name}, queue ${o.queue} at ${o.redis}, concurrency ${o.concurrency}; waiting for jobs`);
  try {
    await worker.run();
    if (stopping) await stopping;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    connection.disconnect();
  }
  log(`${name}: stopped`);
}
