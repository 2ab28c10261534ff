// `npm run bench`: the full-size workloads side by side with a PyTorch CPU baseline on the same
// machine (bench/torch_baseline.py; skipped with a message when PyTorch is absent).
//
//   npm run bench [-- --only dit,vae] [--layers 4] [--runs 2] [--sync-frames 250] [--backend wasm|tensorflow|cpu|webgpu] [--levers] [--markdown]
//   npm run bench -- --e2e [--steps 25] [--seconds 10] [--dtype f16|f32] [--home DIR] [--backend b[,b…]] [--markdown]
//
// Each workload runs in its own process on both sides (clean peak memory). The DiT and MMDiT are built
// with `--layers` of their 24 layers (the full stack does not fit the wasm heap: 4.2 GB / 8.9 GB of f32
// weights) and BOTH sides are extrapolated linearly to 24 layers (time, FLOPs and weight memory);
// everything else runs at full size (`--sync-frames` < 250 scales the Synchformer of sync/cond for a quick
// check; the table says so). --levers also measures GEMM throughput for each CPU lever (stock 1-thread wasm,
// 2-thread wasm, + native BLAS) against torch. --e2e: one full-size AudioX-MAF video-to-audio generation
// through our pipeline next to PyTorch doing the same phases (runE2e below).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes, WASM_BUDGET } from '../src/backend/index.ts';
import { e2eColumns, e2eShapes, parseE2eArgs, type E2eConfig, type OursE2e, type PhaseTimes } from './e2e-plan.ts';
import { fmtMs, fmtRate, fmtRatio, table } from './table.ts';
import { DEPTH, SHAPES, gflop as gflopAt, type Workload } from './flops.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const MANIFESTS = process.env.AUDIOX_MANIFESTS ?? path.join(ROOT, 'test/fixtures/manifests');
const ALL: readonly Workload[] = ['dit', 'mmdit', 'vae', 't5', 'clip', 'sync', 'cond'];

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const flag = (name: string) => argv.includes(`--${name}`);
const LAYERS = Number(opt('layers') ?? 4);
const RUNS = Number(opt('runs') ?? 2);
const ONLY = (opt('only')?.split(',') ?? [...ALL]) as Workload[];
for (const w of ONLY) if (!(ALL as readonly string[]).includes(w)) throw new Error(`--only: unknown workload "${w}" (${ALL.join(', ')})`);
const SYNC_FRAMES = Number(opt('sync-frames') ?? SHAPES.syncFrames);
if (!(Number.isInteger(SYNC_FRAMES) && SYNC_FRAMES >= 16 && SYNC_FRAMES <= SHAPES.syncFrames)) {
  throw new Error(`--sync-frames must be an integer in [16, ${SHAPES.syncFrames}], got ${opt('sync-frames')}`);
}
const gflop = (w: Workload) => gflopAt(w, SYNC_FRAMES);

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
  const args = [path.join(HERE, 'workloads.ts'), w, '--layers', String(LAYERS), '--runs', String(RUNS), '--sync-frames', String(SYNC_FRAMES)];
  const r = spawnSync(tsx, args, {
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
  const args = [path.join(HERE, 'torch_baseline.py'), w, '--layers', String(LAYERS), '--runs', String(RUNS), '--sync-frames', String(SYNC_FRAMES)];
  const r = spawnSync(py, args, {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) return `torch baseline failed: ${(r.stderr || '').trim().split('\n').pop()}`;
  return lastJson(r.stdout);
}


function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${formatBytes(os.totalmem())} RAM, Node ${process.version}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join('/')} at start`;
}

function printBaseline(py: string | null): void {
  if (!py) console.log('PyTorch baseline skipped: no python3 with torch (Debian: apt-get install python3-torch; or set AUDIOX_TORCH_PYTHON)');
  else console.log(`baseline: ${execFileSync(py, ['-c', 'import torch; print("torch", torch.__version__, "CPU fp32,", torch.get_num_threads(), "threads by default")'], { encoding: 'utf8' }).trim()} (run with --threads = cores)`);
}

/**
 * --e2e: our generation (bench/e2e.ts, which also lays out the random model directory), then PyTorch doing
 * the same phases on the same files (torch_baseline.py e2e), one after the other (one full-size process at a time).
 */
async function runE2e(): Promise<void> {
  const o = parseE2eArgs(argv, path.join(os.tmpdir(), 'audiox-fullsize'));
  const py = findTorch();
  console.log(`machine: ${machine()}`);
  printBaseline(py);
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, 'configs/AudioX-MAF.assumed.json'), 'utf8')) as E2eConfig & { model: { pretransform: never } };
  const { AutoencoderPretransform } = await import('../src/models/vae/pretransform.ts');
  const vae = AutoencoderPretransform.fromConfig(config.model.pretransform, { sampleRate: config.sample_rate });
  const shapes = e2eShapes(config, o.seconds, vae.downsamplingRatio, vae.decodeRadius);
  console.log(
    `AudioX-MAF video-to-audio, ${o.seconds} s, ${o.steps} steps (CFG batch 2), random ${o.dtype} weights under ${o.home}: ` +
      `${shapes.latents} latents + 1 token, ${shapes.context} context tokens, ${shapes.decodeLatents} latents decoded\n`,
  );

  const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
  const args = [path.join(HERE, 'e2e.ts'), '--steps', String(o.steps), '--seconds', String(o.seconds), '--dtype', o.dtype.toLowerCase(), '--home', o.home];
  type Ours = OursE2e & { backend?: string; plan?: string | null; rssBytes?: number; streamedUploads?: number; streamedMs?: number };
  const backends: (string | undefined)[] = o.backends.length ? o.backends : [undefined];
  const ours: (Ours | string)[] = backends.map((b) => {
    const r = spawnSync(tsx, args, {
      cwd: ROOT,
      env: { ...process.env, ...(b ? { AUDIOX_BACKEND: b } : {}) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    try {
      if (r.status !== 0) throw new Error(`exit ${r.status}`);
      return lastJson(r.stdout) as unknown as Ours;
    } catch (e) {
      return `FAILED (${(e as Error).message})`;
    }
  });

  const files = ['AudioX-MAF/model.safetensors', 'AudioX-MAF/synchformer.safetensors', 't5-base/model.safetensors'].map((f) => path.join(o.home, 'models', f));
  let torch: (PhaseTimes & { peak_bytes?: number; paramsFilled?: number; params?: number }) | string = 'skipped (no PyTorch)';
  if (py && files.some((f) => !fs.existsSync(f))) torch = 'skipped (no model files: our side failed before writing them)';
  else if (py) {
    const tr = spawnSync(
      py,
      [path.join(HERE, 'torch_baseline.py'), 'e2e', '--weights', files.join(','), '--steps', String(o.steps), '--latents', String(shapes.latents),
        '--context', String(shapes.context), '--decode-latents', String(shapes.decodeLatents)],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    torch = tr.status === 0 ? (lastJson(tr.stdout) as unknown as PhaseTimes) : `FAILED: ${(tr.stderr || '').trim().split('\n').pop()}`;
  }
  for (const [i, r] of ours.entries()) {
    if (typeof r === 'string') {
      console.log(`ours (${backends[i] ?? 'default backend'}): ${r}`);
      continue;
    }
    const streamed = r.streamedUploads ? `, ${r.streamedUploads} streamed weight uploads (${fmtMs(r.streamedMs ?? NaN)})` : '';
    console.log(`ours: ${r.backend}, plan ${r.plan ?? 'none'}${streamed}, peak RSS ${formatBytes(r.rssBytes ?? 0)}`);
  }
  if (typeof torch !== 'string') console.log(`torch: peak RSS ${formatBytes(torch.peak_bytes ?? 0)}, ${torch.paramsFilled}/${torch.params} parameters filled from the files`);
  console.log('(ours: conditioning includes decoding the video with ffmpeg; torch: its conditioning is the cond workload, no media decoding)');
  const label = (i: number) => (backends.length > 1 || backends[0] ? ` (${backends[i]})` : '');
  const header = ['phase', ...ours.map((_, i) => `ours${label(i)}`), 'torch', ...ours.map((_, i) => `ratio${label(i)}`)];
  console.log(`\n${table(header, e2eColumns(ours, torch), o.markdown)}`);
  if (ours.some((r) => typeof r === 'string') || typeof torch === 'string') process.exitCode = 1;
}

async function main(): Promise<void> {
  if (flag('e2e')) return runE2e();
  const md = flag('markdown');
  const py = findTorch();
  console.log(`machine: ${machine()}`);
  printBaseline(py);
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
      w === 't5' ? 'T5-base encode 128 tokens' :
      w === 'clip' ? 'CLIP ViT-B/32, 50 frames' :
      w === 'sync' ? `Synchformer, ${SYNC_FRAMES} frames${SYNC_FRAMES < SHAPES.syncFrames ? ' (SCALED)' : ''}` :
      `AudioX-MAF conditioning (sync ${SYNC_FRAMES} frames${SYNC_FRAMES < SHAPES.syncFrames ? ', SCALED' : ''} + CLIP + T5 + mel + MAF)`;
    rows.push([
      label,
      ours ? fmtMs(oursMs) : `FAILED: ${err}`,
      typeof torch === 'string' ? torch : fmtMs(torchMs),
      fmtRatio(oursMs, torchMs),
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
