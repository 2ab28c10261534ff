// Backend selection: tfjs-node-gpu → tfjs-node → wasm → cpu, unless forced by the user.
// Also knows each backend's memory budget (`budgetOf`), which the Runtime (runtime.ts) hands to models so
// that an allocation plan can be refused before it corrupts anything (the wasm heap is 4 GiB and silently
// corrupts tensors past ~3.75 GiB).
// tfjs-core, not the @tensorflow/tfjs union package: starting a backend needs only the engine, and the union also
// loads layers, converter, data and webgl (half a second that `audiox doctor` would spend for nothing).
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { enableBlasKernels, setGemmPrecision, type BlasStatus, type GemmPrecision } from './blas.ts';
import { enableWasmLayoutKernels } from './wasm-kernels.ts';
import { defaultWasmThreads, registerThreadedWasm } from './wasm-threads.ts';
import { formatBytes, type MemoryBudget } from '../nn/runtime.ts';

const require = createRequire(import.meta.url);

/** A backend `initBackend` can start (`--backend`, AUDIOX_BACKEND): TensorFlow native (GPU or CPU), WebGPU, wasm, or plain JS. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_ORDER: BackendName[] = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

export interface BackendProbe {
  name: BackendName;
  available: boolean;
  reason: string;
}

/** The backend in use, as initBackend started it. */
export interface BackendInfo {
  /** Which backend. */
  name: BackendName;
  /** The tfjs backend name behind it (`tf.getBackend()`: 'tensorflow', 'wasm', …). */
  tfBackend: string;
  /** Compute threads it uses. */
  threads: number;
  /** Bytes that tensors may occupy on this backend before it becomes unsafe. */
  memoryBudget: number;
  /** Every backend as probed at start-up: available or not, and why. */
  probes: BackendProbe[];
}

const GiB = 1024 ** 3;
/** The wasm heap is 4 GiB; past ~3.75 GiB tensors are silently corrupted (measured), so stay below. */
export const WASM_BUDGET = 3.5 * GiB;

let active: BackendInfo | null = null;

function tryResolve(pkg: string): string | null {
  try {
    return require.resolve(pkg);
  } catch {
    return null;
  }
}

function probeTensorflow(pkg: string, gpu: boolean): BackendProbe {
  const name: BackendName = gpu ? 'tensorflow-gpu' : 'tensorflow';
  if (!tryResolve(pkg)) {
    return {
      name,
      available: false,
      reason: `${pkg} is not installed (optional dependency; its install script downloads libtensorflow${
        gpu ? ' and it needs CUDA 11.2 + cuDNN 8.1' : ''
      }, which fails offline)`,
    };
  }
  const binding = tensorflowBinding(path.dirname(require.resolve(`${pkg}/package.json`)));
  if (!binding) {
    return {
      name,
      available: false,
      reason: `${pkg} is installed but its native binding was never built (its install script could not download libtensorflow)${
        gpu ? '' : '; build it offline with `npm run build:tfjs-node`'
      }`,
    };
  }
  return { name, available: true, reason: `${pkg} installed (${path.relative(path.dirname(binding), binding)})` };
}

/** The built tfjs-node binding inside a tfjs-node(-gpu) package directory, or null. */
export function tensorflowBinding(pkgDir: string): string | null {
  let dirs: string[];
  try {
    dirs = fs.readdirSync(path.join(pkgDir, 'lib')).filter((d) => /^napi-v\d+$/.test(d));
  } catch {
    return null;
  }
  for (const d of dirs.sort().reverse()) {
    const f = path.join(pkgDir, 'lib', d, 'tfjs_binding.node');
    if (fs.existsSync(f)) return f;
  }
  return null;
}

function probeWebgpu(): BackendProbe {
  if (!tryResolve('@tensorflow/tfjs-backend-webgpu') || !tryResolve('webgpu')) {
    return {
      name: 'webgpu',
      available: false,
      reason: 'optional packages @tensorflow/tfjs-backend-webgpu and webgpu are not installed',
    };
  }
  return { name: 'webgpu', available: true, reason: 'installed (needs a GPU adapter at run time; opt-in)' };
}

/** Which backends are installed here and could start (in BACKEND_ORDER), without starting any. */
export function probeBackends(): BackendProbe[] {
  return [
    probeTensorflow('@tensorflow/tfjs-node-gpu', true),
    probeTensorflow('@tensorflow/tfjs-node', false),
    probeWebgpu(),
    tryResolve('@tensorflow/tfjs-backend-wasm')
      ? { name: 'wasm', available: true, reason: 'installed (SIMD)' }
      : { name: 'wasm', available: false, reason: '@tensorflow/tfjs-backend-wasm is not installed' },
    { name: 'cpu', available: true, reason: 'always available (pure JS, very slow)' },
  ];
}

export function parseBackendName(s: string): BackendName {
  const aliases: Record<string, BackendName> = {
    gpu: 'tensorflow-gpu',
    cuda: 'tensorflow-gpu',
    'tensorflow-gpu': 'tensorflow-gpu',
    'tfjs-node-gpu': 'tensorflow-gpu',
    tensorflow: 'tensorflow',
    node: 'tensorflow',
    'tfjs-node': 'tensorflow',
    webgpu: 'webgpu',
    wasm: 'wasm',
    cpu: 'cpu',
  };
  const b = aliases[s.toLowerCase()];
  if (!b) {
    throw new Error(`unknown backend "${s}"; choose one of ${BACKEND_ORDER.join(', ')}`);
  }
  return b;
}

async function activate(name: BackendName): Promise<{ tfBackend: string; threads: number }> {
  switch (name) {
    case 'tensorflow-gpu':
      await import('@tensorflow/tfjs-node-gpu' as string);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tensorflow (GPU) backend failed to start');
      return { tfBackend: 'tensorflow', threads: plannedThreads(name) };
    case 'tensorflow':
      await import('@tensorflow/tfjs-node' as string);
      if (!(await tf.setBackend('tensorflow'))) throw new Error('tensorflow backend failed to start');
      return { tfBackend: 'tensorflow', threads: plannedThreads(name) };
    case 'webgpu': {
      const { initWebgpu } = await import('./webgpu.ts');
      await initWebgpu();
      return { tfBackend: 'webgpu', threads: plannedThreads(name) };
    }
    case 'wasm':
      return activateWasm();
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend failed to start');
      return { tfBackend: 'cpu', threads: plannedThreads(name) };
  }
}

/** What the wasm backend ended up with: threads, and whether the native BLAS kernels are on. */
export interface WasmDetails {
  threads: number;
  /** Why fewer threads than wanted (the threaded loader failed, or AUDIOX_WASM_THREADS). */
  threadsNote: string;
  blas: BlasStatus;
}
let wasmDetails: WasmDetails | null = null;

export function wasmBackendDetails(): WasmDetails | null {
  return wasmDetails;
}

/**
 * Multi-threaded wasm when it starts (all cores up to 8, AUDIOX_WASM_THREADS overrides), else the stock
 * single-threaded module; plus the optional native BLAS kernels (AUDIOX_BLAS=0 disables them; AUDIOX_GEMM=bf16
 * opts into bf16 products, see setGemmPrecision).
 */
async function activateWasm(): Promise<{ tfBackend: string; threads: number }> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const blas = enableBlasKernels();
  if (process.env.AUDIOX_BLAS === '1' && !blas.available) throw new Error(`AUDIOX_BLAS=1 but ${blas.reason}`);
  if (!blas.available) enableWasmLayoutKernels();
  const precision = process.env.AUDIOX_GEMM;
  if (precision) setGemmPrecision(precision as GemmPrecision);
  const want = defaultWasmThreads();
  let note = want > 1 ? '' : 'single-threaded (one core, or AUDIOX_WASM_THREADS=1)';
  let restore: (() => void) | null = null;
  if (want > 1) {
    try {
      restore = await registerThreadedWasm(want);
    } catch (e) {
      note = `threaded wasm unavailable: ${(e as Error).message}`;
    }
  }
  let started = await tf.setBackend('wasm').catch(() => false);
  if (!started && restore) {
    note = 'threaded wasm failed to start; fell back to one thread';
    restore();
    started = await tf.setBackend('wasm').catch(() => false);
  }
  if (!started) throw new Error('wasm backend failed to start');
  await tf.ready();
  const threads = wasm.getThreadsCount();
  wasmDetails = { threads, threadsNote: note, blas };
  return { tfBackend: 'wasm', threads };
}

export function memoryBudgetFor(name: BackendName): number {
  switch (name) {
    case 'wasm':
      return WASM_BUDGET;
    case 'cpu':
    case 'tensorflow':
      // Host memory: leave a quarter of the machine for the process itself and the OS.
      return Math.floor(os.totalmem() * 0.75);
    case 'tensorflow-gpu':
    case 'webgpu':
      // Device memory is not observable from tfjs; AUDIOX_GPU_MEMORY_GB overrides this guess.
      return Number(process.env.AUDIOX_GPU_MEMORY_GB ?? 16) * GiB;
  }
}

/**
 * The memory budget models plan against on `name` (`bytes` overrides the backend's own figure): how much
 * host memory the backend itself takes, and what to tell a user whose plan does not fit.
 */
export function budgetOf(name: BackendName, bytes = memoryBudgetFor(name)): MemoryBudget {
  switch (name) {
    case 'wasm':
      // The heap can grow to 4 GiB of host memory.
      return { backend: name, bytes, hostReserve: 4 * GiB, hint: 'the wasm heap is 4 GiB and corrupts tensors past ~3.75 GiB' };
    case 'cpu':
    case 'tensorflow':
      return { backend: name, bytes, hostReserve: 'tensors' }; // tensors live in host RAM
    case 'tensorflow-gpu':
    case 'webgpu':
      return { backend: name, bytes, hostReserve: 0, hint: 'device memory is a guess: set AUDIOX_GPU_MEMORY_GB' };
  }
}

/**
 * The backend initBackend would start first, without starting any: `requested` (or AUDIOX_BACKEND), else the
 * first available in BACKEND_ORDER (webgpu only when asked for). Null when none is available.
 * @throws Error for an unknown backend name.
 */
export function selectBackend(requested?: string): { name: BackendName | null; probes: BackendProbe[] } {
  const probes = probeBackends();
  const first = candidates(requested ?? process.env.AUDIOX_BACKEND).find((b) => probes.find((p) => p.name === b)!.available);
  return { name: first ?? null, probes };
}

/** The backends to try, in order: the one asked for, else BACKEND_ORDER without the opt-in webgpu. */
function candidates(want: string | undefined): BackendName[] {
  return want ? [parseBackendName(want)] : BACKEND_ORDER.filter((b) => b !== 'webgpu');
}

/** Threads a backend computes with, before it starts (wasm: what the threaded module will be asked for). */
export function plannedThreads(name: BackendName): number {
  if (name === 'wasm') return defaultWasmThreads();
  return name === 'tensorflow' || name === 'tensorflow-gpu' ? os.cpus().length : 1;
}

/**
 * Selects and starts a backend. `requested` (or AUDIOX_BACKEND) forces one; otherwise the first
 * available in BACKEND_ORDER that starts wins (webgpu is opt-in only: it needs an adapter).
 */
export async function initBackend(requested?: string): Promise<BackendInfo> {
  const want = requested ?? process.env.AUDIOX_BACKEND;
  if (active && (!want || parseBackendName(want) === active.name)) return active;
  const probes = probeBackends();
  const failures: string[] = [];
  for (const name of candidates(want)) {
    const probe = probes.find((p) => p.name === name)!;
    if (!probe.available) {
      failures.push(`${name}: ${probe.reason}`);
      continue;
    }
    try {
      const { tfBackend, threads } = await activate(name);
      probe.reason = 'active';
      if (name === 'wasm' && wasmDetails) {
        const d = wasmDetails;
        probe.reason =
          `active, ${d.threads} thread${d.threads > 1 ? 's (threaded SIMD)' : ' (SIMD)'}` +
          (d.threadsNote ? ` [${d.threadsNote}]` : '') +
          (d.blas.available ? `; native BLAS on: ${d.blas.reason}, ${d.blas.threads} threads` : `; native BLAS off: ${d.blas.reason}`);
      }
      active = { name, tfBackend, threads, memoryBudget: memoryBudgetFor(name), probes };
      return active;
    } catch (e) {
      probe.available = false;
      probe.reason = `failed to start: ${(e as Error).message}`;
      failures.push(`${name}: ${probe.reason}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could be started:\n  ${failures.join('\n  ')}`);
}

/**
 * The backend started by initBackend.
 * @throws Error when none has been started yet.
 */
export function activeBackend(): BackendInfo {
  if (!active) throw new Error('no backend initialised: call initBackend() first');
  return active;
}

/** Human-readable bytes (re-exported for the edge; models take it from src/nn/runtime.ts). */
export { formatBytes };
