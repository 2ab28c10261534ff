// `audiox queue status | retry-failed | drain`: what the queue holds and how fast it empties.
import { Queue } from 'bullmq';
import { formatDuration } from '../batch/progress.ts';
import { checkQueueName, connectRedis, type QueueJobData } from './connection.ts';

export interface QueueCounts {
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  delayed: number;
  prioritized: number;
}

export interface QueueStatus {
  queue: string;
  counts: QueueCounts;
  workers: number;
  /** Completions per hour over the most recent completed jobs (NaN when there are none). */
  itemsPerHour: number;
  /** Seconds until the waiting, delayed and active jobs are done at that rate. */
  etaSeconds: number;
  active: { id: string; worker: string | null; step: number | null; steps: number | null; attempt: number }[];
  failures: { id: string; error: string; attempts: number; failedAt: string | null }[];
}

/** Completions within the newest this many completed jobs set the rate. */
const RATE_WINDOW = 100;

async function withQueue<T>(redis: string, name: string, fn: (q: Queue<QueueJobData>) => Promise<T>): Promise<T> {
  const connection = await connectRedis(redis);
  const queue = new Queue<QueueJobData>(checkQueueName(name), { connection });
  try {
    return await fn(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

function itemId(job: { id?: string; data?: QueueJobData }): string {
  return job.data?.item?.id ?? job.id ?? '?';
}

export async function queueStatus(redis: string, name: string, maxFailures = 20): Promise<QueueStatus> {
  return withQueue(redis, name, async (q) => {
    const c = await q.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized');
    const counts: QueueCounts = {
      waiting: c.waiting ?? 0,
      active: c.active ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
      delayed: c.delayed ?? 0,
      prioritized: c.prioritized ?? 0,
    };
    const recent = (await q.getJobs(['completed'], 0, RATE_WINDOW - 1)).filter((j) => j?.finishedOn && j.processedOn);
    let itemsPerHour = NaN;
    if (recent.length) {
      const newest = Math.max(...recent.map((j) => j.finishedOn!));
      const oldestStart = Math.min(...recent.map((j) => j.processedOn!));
      if (newest > oldestStart) itemsPerHour = (recent.length / (newest - oldestStart)) * 3_600_000;
    }
    const left = counts.waiting + counts.delayed + counts.prioritized + counts.active;
    const active = (await q.getActive()).filter(Boolean).map((j) => {
      const p = (j.progress ?? null) as { step?: number; steps?: number } | number | null;
      return {
        id: itemId(j),
        worker: j.processedBy ?? null,
        step: typeof p === 'object' && p ? (p.step ?? null) : null,
        steps: typeof p === 'object' && p ? (p.steps ?? null) : null,
        attempt: j.attemptsMade + 1,
      };
    });
    const failures = (await q.getFailed(0, maxFailures - 1)).filter(Boolean).map((j) => ({
      id: itemId(j),
      error: j.failedReason ?? '',
      attempts: j.attemptsMade,
      failedAt: j.finishedOn ? new Date(j.finishedOn).toISOString() : null,
    }));
    return {
      queue: name,
      counts,
      workers: await q.getWorkersCount(),
      itemsPerHour,
      etaSeconds: left === 0 ? 0 : (left / itemsPerHour) * 3600,
      active,
      failures,
    };
  });
}

export function formatStatus(s: QueueStatus): string {
  const c = s.counts;
  const rate = Number.isFinite(s.itemsPerHour) ? `${Math.round(s.itemsPerHour)} items/h` : '? items/h';
  const lines = [
    `queue ${s.queue}: ${c.waiting + c.prioritized} waiting, ${c.active} active, ${c.completed} completed, ${c.failed} failed, ${c.delayed} delayed (retry backoff)`,
    `workers: ${s.workers} | throughput: ${rate} | ETA ${formatDuration(s.etaSeconds)}`,
  ];
  for (const a of s.active) lines.push(`  active ${a.id}${a.worker ? ` on ${a.worker}` : ''}: ${a.step !== null ? `step ${a.step}/${a.steps}` : 'starting'} (attempt ${a.attempt})`);
  if (s.failures.length) lines.push('failures:');
  for (const f of s.failures) lines.push(`  ${f.id} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'}): ${f.error}`);
  if (c.failed > s.failures.length) lines.push(`  … and ${c.failed - s.failures.length} more`);
  return lines.join('\n');
}

/** Puts every failed job back in the queue (fresh attempts); returns how many. */
export async function retryFailed(redis: string, name: string): Promise<number> {
  return withQueue(redis, name, async (q) => {
    const n = await q.getFailedCount();
    if (n) await q.retryJobs({ state: 'failed', count: 1000 });
    return n;
  });
}

/** Removes the jobs not started yet (waiting, delayed); active jobs finish, finished jobs stay. Returns how many. */
export async function drainQueue(redis: string, name: string): Promise<number> {
  return withQueue(redis, name, async (q) => {
    const c = await q.getJobCounts('waiting', 'delayed', 'prioritized');
    await q.drain(true);
    return (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
  });
}
