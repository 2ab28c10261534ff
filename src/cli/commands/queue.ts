// `audiox queue submit|status|retry-failed|drain` and `audiox worker`: a dataset over many machines through
// a Redis queue (BullMQ); README "Generating a dataset".
import type { Command } from 'commander';
import { RELEASED_MODELS } from '../../models/load.ts';
import { DEFAULT_QUEUE, DEFAULT_REDIS } from '../../queue/connection.ts';
import { formatStatus, drainQueue, queueStatus, retryFailed } from '../../queue/status.ts';
import { submitManifest } from '../../queue/submit.ts';
import { WORKER_DEFAULTS, runWorker } from '../../queue/worker.ts';
import { addItemDefaultsOptions, itemDefaults, type ItemDefaultsCliOptions } from '../item-defaults.ts';
import { int, num } from './generate.ts';

interface QueueCliOptions {
  redis: string;
  queue: string;
}

function queueOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'Redis server (or AUDIOX_REDIS_URL)', DEFAULT_REDIS)
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE);
}

interface SubmitCliOptions extends QueueCliOptions, ItemDefaultsCliOptions {
  out: string;
  model?: string;
  overwrite?: boolean;
  attempts: number;
  backoff: number;
}

interface StatusCliOptions extends QueueCliOptions {
  json?: boolean;
  failures: number;
}

interface WorkerCliOptions extends QueueCliOptions {
  model: string;
  concurrency: number;
  lockDuration: number;
  stalledInterval: number;
  maxStalled: number;
  grace: number;
  name?: string;
}

export function register(program: Command): void {
  const queue = program.command('queue').description('a dataset on many machines: jobs on a Redis queue, run by `audiox worker`s');

  const submit = queueOptions(queue.command('submit <manifest>').description('check a manifest and queue one job per item (job id = item id; resubmitting adds only new items)'))
    .option('-o, --out <dir>', 'output directory on a filesystem every worker reaches (stored absolute in each job)', 'out')
    .option('-m, --model <name|dir>', 'check lengths against this model (its files must be here); workers use their own --model')
    .option('--overwrite', 'regenerate items that are already complete (replaces their finished jobs)')
    .option('--attempts <n>', 'tries per job for transient errors; bad input fails at once', int('--attempts'), 3)
    .option('--backoff <ms>', 'delay before the first retry, doubling after each', int('--backoff'), 10_000);
  addItemDefaultsOptions(submit).action(async (manifest: string, o: SubmitCliOptions) => {
    if (o.attempts < 1) throw new Error(`--attempts must be at least 1, got ${o.attempts}`);
    const s = await submitManifest(manifest, {
      redis: o.redis,
      queue: o.queue,
      out: o.out,
      seed: o.seed,
      defaults: itemDefaults(o),
      model: o.model,
      overwrite: o.overwrite,
      attempts: o.attempts,
      backoffMs: o.backoff,
    });
    const queued = Object.entries(s.alreadyQueued).map(([state, n]) => `${n} ${state}`);
    console.log(
      `${s.total} items: ${s.added} queued, ${s.complete} already complete in the output directory` +
        (queued.length ? `, already in the queue: ${queued.join(', ')}` : ''),
    );
  });

  queueOptions(queue.command('status').description('job counts, throughput, ETA, active jobs and failures with their messages'))
    .option('--json', 'machine-readable output')
    .option('--failures <n>', 'failures to list', int('--failures'), 20)
    .action(async (o: StatusCliOptions) => {
      const s = await queueStatus(o.redis, o.queue, o.failures);
      console.log(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  queueOptions(queue.command('retry-failed').description('put every failed job back in the queue')).action(async (o: QueueCliOptions) => {
    console.log(`${await retryFailed(o.redis, o.queue)} failed jobs queued again`);
  });

  queueOptions(queue.command('drain').description('remove the jobs not started yet (active jobs finish; finished jobs stay)')).action(async (o: QueueCliOptions) => {
    console.log(`${await drainQueue(o.redis, o.queue)} waiting jobs removed`);
  });

  const d = WORKER_DEFAULTS;
  queueOptions(program.command('worker').description('run queued jobs on this machine (the model is loaded once per --concurrency slot)'))
    .requiredOption('-m, --model <name|dir>', `${[...RELEASED_MODELS, 'demo'].join(', ')}, or a model directory`)
    .option('--concurrency <n>', 'jobs at once, each in its own process with its own copy of the model', int('--concurrency'), d.concurrency)
    .option('--lock-duration <ms>', "how long a job's lock lasts (renewed at half of it); a dead worker's job is retaken after it", int('--lock-duration'), d.lockDurationMs)
    .option('--stalled-interval <ms>', 'how often to look for jobs whose worker died', int('--stalled-interval'), d.stalledIntervalMs)
    .option('--max-stalled <n>', 'times a job may lose its worker before it is failed', int('--max-stalled'), d.maxStalled)
    .option('--grace <s>', 'on SIGTERM/SIGINT, seconds to let the current job finish before releasing it to the queue', num('--grace'), d.graceSeconds)
    .option('--name <name>', 'worker name in `queue status` (default: host-pid)')
    .action(async (o: WorkerCliOptions) => {
      await runWorker({
        redis: o.redis,
        queue: o.queue,
        model: o.model,
        concurrency: o.concurrency,
        lockDurationMs: o.lockDuration,
        stalledIntervalMs: o.stalledInterval,
        maxStalled: o.maxStalled,
        graceSeconds: o.grace,
        name: o.name,
      });
    });
}
