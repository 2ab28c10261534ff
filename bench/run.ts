// `npm run bench`: the five full-size workloads side by side with a PyTorch CPU baseline on the same
// machine (bench/torch_baseline.py; skipped with a message when PyTorch is absent).
//
//   npm run bench [-- --only dit,vae] [--layers 4] [--runs 2] [--backend wasm|tensorflow|cpu|webgpu] [--levers] [--markdown]
//
// Each workload runs in its own process on both sides (clean peak memory). The DiT and MMDiT are built
// with `--layers` of their 24 layers (the full stack does not fit the wasm heap: 4.2 GB / 8.9 GB of f32
// weights) and BOTH sides are extrapolated linearly to 24 layers (time, FLOPs and weight memory);
// everything else runs at full size. --levers also measures GEMM throughput for each CPU lever
// (stock 1-thread wasm, 2-thread wasm, + native BLAS) against torch.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes, WASM_BUDGET } from '../src/backend/index.ts';
import { SHAPES } from './workloads.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const MANIFESTS = process.env.AUDIOX_MANIFESTS ?? path.join(ROOT, 'test/fixtures/manifests');
const ALL = ['dit', 'mmdit', 'vae', 't5', 'clip'] as const;
type Workload = (typeof ALL)[number];

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const flag = (name: string) => argv.includes(`--${name}`);
const LAYERS = Number(opt('layers') ?? 4);
const RUNS = Number(opt('runs') ?? 2);
const ONLY = (opt('only')?.split(',') ?? [...ALL]) as Workload[];
const DEPTH = 24;

// ---- analytic FLOPs (multiply-adds × 2) of one forward at the bench shapes ----
function gflop(w: Workload): number {
  const B = SHAPES.batch;
  const L = SHAPES.frames + 1; // + the prepended token
  const S = SHAPES.context;
  const D = 1536;
  const C = 768;
  switch (w) {
    case 'dit':
      return (DEPTH * (2 * B * L * D * D * 18 + 4 * B * S * C * C + 4 * B * L * L * D + 4 * B * L * S * D) + 4 * B * S * C * C) / 1e9;
    case 'mmdit': {
      const Hf = 4096;
      const layer = 2 * B * L * D * D * 13 + 2 * B * L * 3 * D * Hf * 3 + 4 * B * L * L * D;
      return (DEPTH * layer + 2 * B * S * C * D + 2 * B * D * S * L) / 1e9;
    }
    case 'vae': {
      let len = SHAPES.vaeLatents;
      let f = 2 * len * 2048 * 64 * 7;
      for (const [cin, cout, s] of [[2048, 1024, 8], [1024, 512, 8], [512, 256, 4], [256, 128, 4], [128, 128, 2]]) {
        f += 2 * len * cin * cout * 2 * s;
        len *= s;
        f += 3 * (2 * len * cout * cout * 7 + 2 * len * cout * cout);
      }
      return (f + 2 * len * 128 * 2 * 7) / 1e9;
    }
    case 't5': {
      const n = SHAPES.t5Tokens;
      return (12 * (2 * n * C * C * 4 + 2 * n * C * 3072 * 2 + 4 * n * n * C)) / 1e9;
    }
    case 'clip': {
      const n = SHAPES.clipFrames;
      return (n * (12 * (2 * 50 * C * C * 4 + 2 * 50 * C * 3072 * 2 + 4 * 50 * 50 * C) + 2 * 49 * C * 3072)) / 1e9;
    }
  }
}

/** f32 bytes of one transformer layer, from the released manifest (for the 24-layer memory estimate). */
function layerBytes(w: Workload): number {
  if (w !== 'dit' && w !== 'mmdit') return 0;
  const file = path.join(MANIFESTS, w === 'dit' ? 'audiox.json' : 'audiox-maf-mmdit.assumed.json');
  if (!fs.existsSync(file)) return 0;
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number[]>;
  const pre = 'model.model.transformer.layers.0.';
  return Object.entries(m)
    .filter(([k]) => k.startsWith(pre))
    .reduce((a, [, s]) => a + 4 * s.reduce((x, y) => x * y, 1), 0);
}

// ---- subprocesses ----
interface Result {
  ms: number;
  heapBytes?: number;
  rssBytes?: number;
  peak_bytes?: number;
  backend?: string;
  threads?: number;
  rows?: { shape: string; ms: number; gflops: number }[];
}

function lastJson(out: string): Result {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no result line in:\n${out.slice(-2000)}`);
  return JSON.parse(line) as Result;
}

/** `--backend <name>` runs our side on that backend (AUDIOX_BACKEND in the workload processes). */
const BACKEND = opt('backend');

function runOurs(w: string, env: Record<string, string> = {}): Result {
  const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
  const r = spawnSync(tsx, [path.join(HERE, 'workloads.ts'), w, '--layers', String(LAYERS), '--runs', String(RUNS)], {
    cwd: ROOT,
    env: { ...process.env, ...(BACKEND ? { AUDIOX_BACKEND: BACKEND } : {}), ...env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`${w} failed (exit ${r.status}):\n${(r.stderr || r.stdout).slice(-3000)}`);
  return lastJson(r.stdout);
}

function findTorch(): string | null {
  for (const py of [process.env.AUDIOX_TORCH_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    try {
      execFileSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
      return py;
    } catch {
      /* next */
    }
  }
  return null;
}

function runTorch(py: string, w: string): Result | string {
  const r = spawnSync(py, [path.join(HERE, 'torch_baseline.py'), w, '--layers', String(LAYERS), '--runs', String(RUNS)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return `torch baseline failed: ${(r.stderr || '').trim().split('\n').pop()}`;
  return lastJson(r.stdout);
}

// ---- table ----
const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const fmtRate = (g: number, ms: number) => `${(g / (ms / 1000)).toFixed(1)}`;

function table(header: string[], rows: string[][], markdown: boolean): string {
  if (markdown) {
    return [`| ${header.join(' | ')} |`, `|${header.map(() => ' --- ').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  }
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(width[i])).join('  ');
  return [line(header), width.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${formatBytes(os.totalmem())} RAM, Node ${process.version}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join('/')} at start`;
}

async function main(): Promise<void> {
  const md = flag('markdown');
  const py = findTorch();
  console.log(`machine: ${machine()}`);
  if (!py) console.log('PyTorch baseline skipped: no python3 with torch (Debian: apt-get install python3-torch; or set AUDIOX_TORCH_PYTHON)');
  else console.log(`baseline: ${execFileSync(py, ['-c', 'import torch; print("torch", torch.__version__, "CPU fp32,", torch.get_num_threads(), "threads by default")'], { encoding: 'utf8' }).trim()} (run with --threads = cores)`);
  console.log(`DiT/MMDiT: ${LAYERS} of ${DEPTH} layers measured, both sides extrapolated ×${DEPTH / LAYERS}; best of ${RUNS} runs after a warm-up\n`);

  if (flag('levers')) {
    const levers: [string, Record<string, string>][] = [
      ['wasm, 1 thread (stock)', { AUDIOX_WASM_THREADS: '1', AUDIOX_BLAS: '0' }],
      ['wasm, 2 threads', { AUDIOX_WASM_THREADS: '2', AUDIOX_BLAS: '0' }],
      ['wasm, 2 threads + native BLAS', { AUDIOX_WASM_THREADS: '2', AUDIOX_BLAS: '1' }],
    ];
    const cols: Result[] = levers.map(([, env]) => runOurs('matmul', env));
    const torch = py ? runTorch(py, 'matmul') : null;
    const header = ['GEMM M×K×N', ...levers.map(([n]) => `${n} GFLOP/s`), ...(torch && typeof torch !== 'string' ? ['torch GFLOP/s'] : [])];
    const rows = cols[0].rows!.map((r, i) => [
      r.shape,
      ...cols.map((c) => c.rows![i].gflops.toFixed(1)),
      ...(torch && typeof torch !== 'string' ? [torch.rows![i].gflops.toFixed(1)] : []),
    ]);
    console.log(table(header, rows, md) + '\n');
  }

  const header = ['workload', 'ours', 'torch', 'ratio', 'GFLOP', 'ours GFLOP/s', 'torch GFLOP/s', 'ours peak heap', 'ours peak RSS', 'torch peak RSS'];
  const rows: string[][] = [];
  let backend = '';
  for (const w of ONLY) {
    const scale = w === 'dit' || w === 'mmdit' ? DEPTH / LAYERS : 1;
    const extra = (DEPTH - LAYERS) * layerBytes(w);
    const g = gflop(w);
    let ours: Result | null = null;
    let err = '';
    try {
      ours = runOurs(w);
      backend = ours.backend ?? backend;
    } catch (e) {
      err = (e as Error).message.split('\n').slice(0, 3).join(' ');
    }
    const torch = py ? runTorch(py, w) : 'skipped (no PyTorch)';
    const oursMs = ours ? ours.ms * scale : NaN;
    const torchMs = typeof torch === 'string' ? NaN : torch.ms * scale;
    const heap = ours?.heapBytes ? ours.heapBytes + extra : NaN;
    const label =
      w === 'dit' ? 'DiT forward (B 2, 237 frames, 384 ctx)' :
      w === 'mmdit' ? 'MMDiT forward (B 2, 237 frames, 384 ctx)' :
      w === 'vae' ? `VAE decode 10 s (${SHAPES.vaeLatents} latents)` :
      w === 't5' ? 'T5-base encode 128 tokens' : 'CLIP ViT-B/32, 50 frames';
    rows.push([
      label,
      ours ? fmtMs(oursMs) : `FAILED: ${err}`,
      typeof torch === 'string' ? torch : fmtMs(torchMs),
      ours && typeof torch !== 'string' ? `${(oursMs / torchMs).toFixed(2)}×` : '–',
      g.toFixed(0),
      ours ? fmtRate(g, oursMs) : '–',
      typeof torch !== 'string' ? fmtRate(g, torchMs) : '–',
      Number.isFinite(heap) ? `${formatBytes(heap)}${extra ? ' (est.)' : ''}${heap > WASM_BUDGET ? ' > budget' : ''}` : '–',
      ours?.rssBytes ? formatBytes(ours.rssBytes + extra) + (extra ? ' (est.)' : '') : '–',
      typeof torch !== 'string' && torch.peak_bytes ? formatBytes(torch.peak_bytes + extra) + (extra ? ' (est.)' : '') : '–',
    ]);
    console.error(`[bench] ${w} done`);
  }
  console.log(`ours: ${backend}`);
  console.log(`wasm heap budget: ${formatBytes(WASM_BUDGET)}\n`);
  console.log(table(header, rows, md));
}

await main();
