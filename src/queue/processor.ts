// The BullMQ sandboxed processor: runs in a child process that BullMQ forks (and reuses between jobs), so
// the CPU-bound generation never blocks the worker's event loop, which keeps renewing the job's lock. The
// model is loaded once per child, on its first job.
import { UnrecoverableError, WaitingError, type SandboxedJob } from 'bullmq';
import { ItemRunner } from '../batch/runner.ts';
import type { QueueJobData, QueueJobResult } from './connection.ts';
import { isBadInput } from './retry-policy.ts';

// The worker died (SIGKILL, crash): its jobs will be retaken elsewhere once their locks expire, so this
// child must not keep writing their outputs.
process.on('disconnect', () => process.exit(1));

let runner: Promise<ItemRunner> | null = null;

function getRunner(): Promise<ItemRunner> {
  const model = process.env.AUDIOX_WORKER_MODEL;
  if (!model) throw new Error('AUDIOX_WORKER_MODEL is not set (the processor runs under `audiox worker`)');
  if (!runner) {
    console.error(`worker ${process.pid}: loading model ${model}…`);
    runner = ItemRunner.load(model);
    runner.catch(() => (runner = null));
  }
  return runner;
}

function checkData(d: QueueJobData | undefined): QueueJobData {
  if (!d?.item?.id || !d.item.options || typeof d.out !== 'string') {
    throw new UnrecoverableError('the job has no item or output directory (was it submitted with `audiox queue submit`?)');
  }
  return d;
}

export default async function processItem(job: SandboxedJob<QueueJobData, QueueJobResult>, _token?: string, signal?: AbortSignal): Promise<QueueJobResult> {
  const { item, out, overwrite } = checkData(job.data);
  const t0 = performance.now();
  try {
    const r = await (await getRunner()).run(item, out, {
      overwrite,
      signal,
      onProgress: (step, steps) => void job.updateProgress({ step, steps }).catch(() => {}),
    });
    return { id: item.id, status: r.status, seconds: (performance.now() - t0) / 1000, wav: r.record.outputs.wav.file, host: r.record.host, pid: process.pid };
  } catch (e) {
    // Cancelled because the worker released the job (it is back in the queue already): not a failure.
    if (signal?.aborted) throw new WaitingError();
    if (isBadInput(e)) throw new UnrecoverableError((e as Error).message);
    throw e;
  }
}
