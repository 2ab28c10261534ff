// Redis connections and the naming shared by the queue commands and the workers.
import { Redis } from 'ioredis';
import type { BatchItem } from '../batch/item.ts';

export const DEFAULT_QUEUE = 'audiox';
export const DEFAULT_REDIS = process.env.AUDIOX_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** What a job carries: the resolved item (absolute media paths, seed fixed at submit) and where to write. */
export interface QueueJobData {
  item: BatchItem;
  /** Absolute output directory, on a filesystem every worker reaches. */
  out: string;
  overwrite: boolean;
}

/** What a finished job returns (stored by BullMQ as the job's return value). */
export interface QueueJobResult {
  id: string;
  status: 'done' | 'skipped';
  seconds: number;
  wav: string;
  host: string;
  pid: number;
}

/**
 * The job id of an item: its id, so resubmitting a manifest adds nothing twice. BullMQ refuses ids that
 * read as integers; those get a "#" in front, which no item id can contain, so no two items share one.
 */
export function jobIdFor(id: string): string {
  return `${parseInt(id, 10)}` === id ? `#${id}` : id;
}

export function checkQueueName(name: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`queue name "${name}" must use only letters, digits, ".", "_" and "-"`);
  return name;
}

export interface ConnectOptions {
  /** Keep retrying when Redis goes away (workers); short-lived commands give up after a few tries. */
  persistent?: boolean;
  timeoutMs?: number;
}

/** Connects to Redis (BullMQ needs maxRetriesPerRequest: null); fails with a clear message when it cannot. */
export async function connectRedis(url: string, o: ConnectOptions = {}): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--redis "${url}" is not a URL; use redis://host:6379 (or rediss:// for TLS)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new Error(`--redis "${url}" must start with redis:// or rediss://`);
  const client = new Redis(url, {
    maxRetriesPerRequest: null,
    lazyConnect: true,
    retryStrategy: o.persistent ? (times: number) => Math.min(times * 200, 5000) : (times: number) => (times > 3 ? null : 200),
  });
  // Errors surface through the calls; without a listener ioredis would also print each one.
  client.on('error', () => {});
  const timeout = o.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeout / 1000} s`)), timeout);
      }),
    ]);
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${url}: ${(e as Error).message.replace(/\.$/, '')}. Is redis-server running there (see README "Generating a dataset")?`);
  } finally {
    clearTimeout(timer);
  }
  return client;
}
