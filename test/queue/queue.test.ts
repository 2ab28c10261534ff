// The Redis queue end to end, with a real redis-server and real worker processes on the demo model:
// submit (dedup on resubmit), two workers, one SIGKILLed in the middle of a job (the other retakes it,
// the output exists once and complete, nothing partial), a bad item that fails once with its message,
// `queue status` counts, retry-failed, drain, SIGTERM (finish when idle, release with --grace 0), and
// bit-identical audio through generate, batch and the queue.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItemRecord } from '../../src/batch/outputs.ts';
import { jobIdFor, type QueueJobData } from '../../src/queue/connection.ts';
import { readWavHeader } from '../../src/io/wav.ts';
import { formatStatus, type QueueStatus } from '../../src/queue/status.ts';
import { submitManifest } from '../../src/queue/submit.ts';
import { runCli } from '../cli/run-cli.ts';
import { REPO } from '../helpers.ts';
import { makeTone, tempDir } from '../pipeline/media-helpers.ts';
import { HAVE_REDIS, startRedis, type RedisServer } from './redis-server.ts';

const REQUIRED = process.env.AUDIOX_E2E === '1';
if (!HAVE_REDIS && !REQUIRED) {
  console.warn('test/queue: redis-server not found, queue tests skipped (apt-get install redis-server; .ci/run sets AUDIOX_E2E=1, which makes them mandatory).');
}

interface WorkerProc {
  name: string;
  child: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

let redis: RedisServer;
let dir: string;
let connection: Redis;
const queues: Queue[] = [];
const workers: WorkerProc[] = [];

function startWorker(name: string, queueName: string, extra: string[] = []): WorkerProc {
  const child = spawn(
    process.execPath,
    [path.join(REPO, 'bin/audiox.mjs'), 'worker', '-m', 'demo', '--redis', redis.url, '--queue', queueName, '--name', name, '--lock-duration', '3000', '--stalled-interval', '1500', ...extra],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (log += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (log += s));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const w = { name, child, log: () => log, exited };
  workers.push(w);
  return w;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${workers.map((w) => `--- ${w.name}\n${w.log()}`).join('\n')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function openQueue(name: string): Queue<QueueJobData> {
  const q = new Queue<QueueJobData>(name, { connection });
  queues.push(q);
  return q;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const PROMPTS = ['rain on a tin roof', 'a dog barking', 'rain on a tin roof', 'wind', 'a bell', 'footsteps', 'a dog barking', 'birdsong', 'a car passing', 'applause'];

describe.skipIf(!HAVE_REDIS && !REQUIRED)('audiox queue + worker (real Redis, demo model)', () => {
  beforeAll(async () => {
    redis = await startRedis();
    connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    dir = tempDir('queue');
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const q of queues) await q.close();
    connection?.disconnect();
    await redis?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('12 items over 2 workers: one killed mid-job, a bad item, status, retry-failed; same audio as generate and batch', async () => {
    const out = path.join(dir, 'out');
    const gone = await makeTone(path.join(dir, 'gone.wav'), 1);
    const rows = [
      { id: 'slow', prompt: 'thunder', steps: 40 },
      ...PROMPTS.map((prompt, i) => ({ id: `n${String(i + 1).padStart(2, '0')}`, prompt })),
      { id: 'bad', prompt: 'a tone', audio: 'gone.wav' },
    ];
    const manifest = path.join(dir, 'items.jsonl');
    fs.writeFileSync(manifest, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const submit = ['queue', 'submit', manifest, '--redis', redis.url, '--queue', 'main', '-o', out, '--steps', '2', '--seconds', '0.5'];
    const s1 = await runCli(submit);
    expect(s1.stderr).not.toMatch(/audiox:/);
    expect(s1.stdout).toMatch(/12 items: 12 queued/);
    // Job ids are item ids: a resubmit adds nothing.
    const again = await submitManifest(manifest, { redis: redis.url, queue: 'main', out, seed: 0, defaults: { steps: 2, secondsTotal: 0.5 }, attempts: 3, backoffMs: 10_000 });
    expect(again).toEqual({ total: 12, added: 0, complete: 0, alreadyQueued: { waiting: 12 } });
    // The file vanishes after the (checked) submit: the worker finds it missing.
    fs.rmSync(gone);

    const q = openQueue('main');
    const w1 = startWorker('w1', 'main');
    const w2 = startWorker('w2', 'main');
    // Kill whichever worker runs the slow job, in the middle of it.
    let victim: WorkerProc | undefined;
    await waitFor('the slow job to be under way', async () => {
      const job = await q.getJob('slow');
      const p = job?.progress as { step?: number } | undefined;
      if (!job || (await job.getState()) !== 'active' || !p?.step || p.step < 3) return false;
      victim = [w1, w2].find((w) => w.name === job.processedBy);
      return !!victim;
    });
    const survivor = victim === w1 ? w2 : w1;
    const victimChild = Number(/worker (\d+): loading model/.exec(victim!.log())?.[1]);
    victim!.child.kill('SIGKILL');
    await victim!.exited;

    await waitFor('all jobs to finish', async () => {
      const c = await q.getJobCounts('completed', 'failed');
      return c.completed + c.failed === 12;
    }, 120_000);
    // The killed worker's sandboxed child went with it.
    expect(victimChild).toBeGreaterThan(0);
    await waitFor('the killed worker child to exit', () => !alive(victimChild), 10_000);

    const slow = (await q.getJob('slow'))!;
    expect(await slow.getState()).toBe('completed');
    expect(slow.processedBy).toBe(survivor.name);
    expect(survivor.log()).toMatch(/stalled/);
    const bad = (await q.getJob('bad'))!;
    expect(await bad.getState()).toBe('failed');
    expect(bad.attemptsMade).toBe(1); // bad input: no retries
    expect(bad.failedReason).toMatch(/^audio: .*gone\.wav.* does not exist/);
    expect((survivor.log() + victim!.log()).match(/failed bad:/g)).toHaveLength(1);

    // Each output exactly once, complete; nothing partial, nothing of the bad item.
    const files = fs.readdirSync(out).sort();
    const ids = rows.map((r) => r.id).filter((id) => id !== 'bad').sort();
    expect(files).toEqual(ids.flatMap((id) => [`${id}.json`, `${id}.wav`]).sort());
    const rec = JSON.parse(fs.readFileSync(path.join(out, 'slow.json'), 'utf8')) as ItemRecord;
    expect(rec.params.steps).toBe(40);
    expect(readWavHeader(path.join(out, 'slow.wav'))).toMatchObject({ channels: 2, numFrames: 22050 });
    expect(fs.statSync(path.join(out, 'slow.wav')).size).toBe(rec.outputs.wav.bytes);

    // queue status: the counts, and the failure with its message.
    const st = await runCli(['queue', 'status', '--redis', redis.url, '--queue', 'main', '--json']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as QueueStatus;
    expect(status.counts).toMatchObject({ waiting: 0, active: 0, completed: 11, failed: 1, delayed: 0 });
    expect(status.failures).toEqual([{ id: 'bad', error: bad.failedReason, attempts: 1, failedAt: expect.any(String) }]);
    expect(status.itemsPerHour).toBeGreaterThan(0);
    expect(status.workers).toBe(1);
    const human = formatStatus(status as QueueStatus);
    expect(human).toMatch(/0 waiting, 0 active, 11 completed, 1 failed/);
    expect(human).toMatch(/bad \(1 attempt\): audio: /);

    // retry-failed, once the file is back: everything completes.
    await makeTone(gone, 1);
    const retry = await runCli(['queue', 'retry-failed', '--redis', redis.url, '--queue', 'main']);
    expect(retry.stdout).toMatch(/1 failed jobs queued again/);
    await waitFor('the retried job', async () => (await q.getJobCounts('completed')).completed === 12);
    expect(fs.existsSync(path.join(out, 'bad.wav'))).toBe(true);

    // Reproducibility: the queue's audio is the batch's and generate's, bit for bit.
    const n3 = rows[3];
    const n3rec = JSON.parse(fs.readFileSync(path.join(out, `${n3.id}.json`), 'utf8')) as ItemRecord;
    const one = path.join(dir, 'one.jsonl');
    fs.writeFileSync(one, `${JSON.stringify(n3)}\n`);
    const b = await runCli(['batch', one, '-m', 'demo', '-o', path.join(dir, 'batch'), '--steps', '2', '--seconds', '0.5', '--no-progress']);
    expect(b.code).toBe(0);
    const g = await runCli(['generate', '-m', 'demo', '-p', n3.prompt, '--seconds', '0.5', '--steps', '2', '--seed', String(n3rec.seed), '--no-progress', '-o', path.join(dir, 'gen.wav')]);
    expect(g.code).toBe(0);
    const queued = fs.readFileSync(path.join(out, `${n3.id}.wav`));
    expect(fs.readFileSync(path.join(dir, 'batch', `${n3.id}.wav`)).equals(queued)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'gen.wav')).equals(queued)).toBe(true);

    // SIGTERM on an idle worker: a clean stop.
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
    expect(survivor.log()).toMatch(/stopped/);
  });

  it('SIGTERM with --grace 0 releases the running job to the queue; drain removes waiting jobs', async () => {
    const out = path.join(dir, 'rel');
    const manifest = path.join(dir, 'rel.jsonl');
    fs.writeFileSync(manifest, ['{"id":"long","prompt":"a waterfall","steps":400}', '{"id":"7","prompt":"wind"}', '{"id":"x2","prompt":"rain"}'].join('\n'));
    const s = await runCli(['queue', 'submit', manifest, '--redis', redis.url, '--queue', 'rel', '-o', out, '--steps', '2', '--seconds', '0.5']);
    expect(s.stdout).toMatch(/3 items: 3 queued/);
    const q = openQueue('rel');
    expect(await q.getJobState(jobIdFor('7'))).toBe('waiting'); // an integer-looking id gets a job id BullMQ accepts
    const w = startWorker('w3', 'rel', ['--grace', '0']);
    await waitFor('the long job to run', async () => {
      const p = (await q.getJob('long'))?.progress as { step?: number } | undefined;
      return !!p?.step;
    });
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.log()).toMatch(/released long back to the queue/);
    expect(await q.getJobState('long')).toBe('waiting');
    expect((await q.getJob('long'))!.attemptsMade).toBe(0);
    expect(fs.readdirSync(out)).toEqual([]); // nothing written, no temp files
    const d = await runCli(['queue', 'drain', '--redis', redis.url, '--queue', 'rel']);
    expect(d.stdout).toMatch(/3 waiting jobs removed/);
    expect(await q.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 });
  });
});
