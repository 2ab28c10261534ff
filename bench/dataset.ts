// Dataset throughput on this machine (README "Generating a dataset"): the same manifest through
// `audiox batch`, then through the Redis queue with 1 and with 2 `audiox worker` processes, in one run.
//
//   npx tsx bench/dataset.ts [--model demo] [--items 12] [--steps 50] [--seconds 10]
//
// Needs redis-server (a private one is started on a free port). Workers are warmed up first (each has
// loaded the model and run one item), so the rates are steady-state: items / (last finish − submit).
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { submitManifest } from '../src/queue/submit.ts';
import { startRedis } from '../test/queue/redis-server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/audiox.mjs');
const argv = process.argv.slice(2);
const opt = (name: string, d: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
};
const MODEL = opt('model', 'demo');
const N = Number(opt('items', '12'));
const STEPS = opt('steps', '50');
const SECONDS = opt('seconds', '10');

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (s: Buffer) => (out += s));
    c.stderr.on('data', (s: Buffer) => (out += s));
    c.on('close', (code) => resolve({ code, out }));
  });
}

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 250));
}

function writeManifest(file: string, prefix: string, n: number): void {
  const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ id: `${prefix}${i}`, prompt: `sound number ${i} of ${prefix}` }));
  fs.writeFileSync(file, rows.join('\n') + '\n');
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-bench-dataset-'));
const redis = await startRedis();
const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
const results: { setup: string; items: number; seconds: number; perHour: number }[] = [];
const load0 = os.loadavg()[0];
try {
  // 1. One machine, one process: `audiox batch`.
  const manifest = path.join(dir, 'batch.jsonl');
  writeManifest(manifest, 'b', N);
  const b = await run(['batch', manifest, '-m', MODEL, '-o', path.join(dir, 'batch'), '--steps', STEPS, '--seconds', SECONDS, '--no-progress']);
  const m = /batch: (\d+) generated.* in (\d+):(\d\d), (\d+) items\/h/.exec(b.out);
  if (b.code !== 0 || !m) throw new Error(`audiox batch failed:\n${b.out}`);
  results.push({ setup: '`audiox batch`', items: N, seconds: NaN, perHour: Number(m[4]) });

  // 2. The queue with 1 and 2 workers.
  for (const n of [1, 2]) {
    const name = `bench${n}`;
    const q = new Queue(name, { connection });
    const workers: ChildProcess[] = Array.from({ length: n }, (_, i) =>
      spawn(process.execPath, [BIN, 'worker', '-m', MODEL, '--redis', redis.url, '--queue', name, '--name', `w${i}`], { cwd: ROOT, stdio: 'ignore' }),
    );
    const common = { redis: redis.url, queue: name, out: path.join(dir, name), seed: 0, defaults: { steps: Number(STEPS), secondsTotal: Number(SECONDS) }, attempts: 1, backoffMs: 1000 };
    // Warm-up: until every worker has run an item (its child has the model loaded).
    const warmed = new Set<string>();
    for (let round = 0; warmed.size < n; round++) {
      const wm = path.join(dir, `${name}-warm${round}.jsonl`);
      writeManifest(wm, `${name}warm${round}x`, n);
      await submitManifest(wm, common);
      await waitFor(async () => {
        const c = await q.getJobCounts('waiting', 'active');
        return c.waiting + c.active === 0;
      });
      for (const j of await q.getJobs(['completed'])) if (j.processedBy) warmed.add(j.processedBy);
    }
    const before = (await q.getJobCounts('completed')).completed;
    const mf = path.join(dir, `${name}.jsonl`);
    writeManifest(mf, `${name}x`, N);
    const t0 = Date.now();
    await submitManifest(mf, common);
    await waitFor(async () => (await q.getJobCounts('completed')).completed - before === N);
    const jobs = (await q.getJobs(['completed'])).filter((j) => j.id?.startsWith(`${name}x`));
    const t1 = Math.max(...jobs.map((j) => j.finishedOn ?? 0));
    results.push({ setup: `queue, ${n} worker${n > 1 ? 's' : ''}`, items: N, seconds: (t1 - t0) / 1000, perHour: (N / (t1 - t0)) * 3_600_000 });
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.once('exit', r)))));
    await q.close();
  }
} finally {
  connection.disconnect();
  await redis.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

const cpu = os.cpus();
console.log(`model ${MODEL}, ${STEPS} steps, ${SECONDS} s of audio per item, ${N} items per setup`);
console.log(`machine: ${cpu[0]?.model ?? '?'} × ${cpu.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${load0.toFixed(1)} → ${os.loadavg()[0].toFixed(1)}`);
console.log('| setup | items | wall (s) | items/hour |');
console.log('|---|---:|---:|---:|');
for (const r of results) console.log(`| ${r.setup} | ${r.items} | ${Number.isFinite(r.seconds) ? r.seconds.toFixed(1) : '–'} | ${Math.round(r.perHour)} |`);
