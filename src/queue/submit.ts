// `audiox queue submit`: a checked manifest becomes one BullMQ job per item, its id the item's id (a
// resubmit adds only what is not queued yet). Complete items in the output directory are not queued.
import { Queue, type JobsOptions } from 'bullmq';
import fs from 'node:fs';
import path from 'node:path';
import type { ItemDefaults } from '../batch/item.ts';
import { readManifest } from '../batch/manifest.ts';
import { isComplete } from '../batch/outputs.ts';
import { preflightModel } from '../cli/commands/generate.ts';
import { checkQueueName, connectRedis, jobIdFor, type QueueJobData } from './connection.ts';

export interface SubmitOptions {
  redis: string;
  queue: string;
  out: string;
  seed: number;
  defaults: ItemDefaults;
  /** Checks lengths against this model's limits (needs its files here); default: no model-specific check. */
  model?: string;
  overwrite?: boolean;
  /** Tries per job for transient errors (bad input fails at once). */
  attempts: number;
  /** First retry delay; doubles with each retry. */
  backoffMs: number;
}

export interface SubmitSummary {
  total: number;
  added: number;
  /** Items whose job exists already (any state), by state. */
  alreadyQueued: Record<string, number>;
  /** Items complete in the output directory (not queued). */
  complete: number;
}

const CHUNK = 500;

export async function submitManifest(manifest: string, o: SubmitOptions): Promise<SubmitSummary> {
  const limits = o.model ? preflightModel(o.model) : undefined;
  const items = readManifest(manifest, { defaults: o.defaults, seed: o.seed, limits });
  const out = path.resolve(o.out);
  fs.mkdirSync(out, { recursive: true });
  const connection = await connectRedis(o.redis);
  const queue = new Queue<QueueJobData>(checkQueueName(o.queue), { connection });
  const summary: SubmitSummary = { total: items.length, added: 0, alreadyQueued: {}, complete: 0 };
  try {
    const opts: JobsOptions = {
      attempts: o.attempts,
      backoff: { type: 'exponential', delay: o.backoffMs },
      // Kept, so `queue status` can count and explain them (a job is about a kilobyte).
      removeOnComplete: false,
      removeOnFail: false,
    };
    const pending = o.overwrite ? items : items.filter((it) => !isComplete(out, it));
    summary.complete = items.length - pending.length;
    for (let i = 0; i < pending.length; i += CHUNK) {
      const chunk = pending.slice(i, i + CHUNK);
      const states = await Promise.all(chunk.map((it) => queue.getJobState(jobIdFor(it.id))));
      const add: typeof chunk = [];
      for (const [k, it] of chunk.entries()) {
        const state = states[k];
        if (state === 'unknown') add.push(it);
        else if (o.overwrite && state !== 'active') {
          await queue.remove(jobIdFor(it.id));
          add.push(it);
        } else summary.alreadyQueued[state] = (summary.alreadyQueued[state] ?? 0) + 1;
      }
      await queue.addBulk(add.map((item) => ({ name: 'generate', data: { item, out, overwrite: !!o.overwrite }, opts: { ...opts, jobId: jobIdFor(item.id) } })));
      summary.added += add.length;
    }
  } finally {
    await queue.close();
    connection.disconnect();
  }
  return summary;
}
