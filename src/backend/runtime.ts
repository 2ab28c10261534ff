// The Runtime: created once at the edge (CLI, server, library entry) and passed down to loadModel and the
// models, which read the budget, kernel set and weight policy from it instead of asking the backend.
import { kernelRegistered, SNAKE_BETA_NWC, TO_HOST } from '../nn/kernels.ts';
import type { RuntimeInfo, WeightStorePolicy } from '../nn/runtime.ts';
import { nativeRelayout } from './half-upload.ts';
import { budgetOf, initBackend, wasmBackendDetails, type BackendInfo, type BackendName } from './index.ts';

/** A started backend with everything models need to know about it. */
export interface Runtime extends RuntimeInfo {
  readonly backend: BackendName;
  /** What initBackend reported (probes, tfjs backend name). */
  readonly info: BackendInfo;
}

/** Options of {@link createRuntime}; each defaults to the environment (AUDIOX_* variables) or the backend's own value. */
export interface RuntimeOptions {
  /** Backend to start (default: AUDIOX_BACKEND, else the first that starts; see initBackend). */
  backend?: string;
  /** Bytes models may plan against instead of the backend's own budget. */
  memoryBudget?: number;
  /** Default weight mode (default: AUDIOX_STREAM_WEIGHTS=1|0|host, else 'auto'; see loadModel's `streamWeights`). */
  streamWeights?: boolean | 'auto' | 'host';
  /** Default precision of streamed host copies (default: AUDIOX_STREAM_FP16=1 → 'float16', else 'keep'). */
  hostDType?: 'keep' | 'float16';
}

function envWeightMode(): WeightStorePolicy['mode'] {
  const env = process.env.AUDIOX_STREAM_WEIGHTS;
  if (env === '1' || env === 'true') return 'streamed';
  if (env === '0' || env === 'false') return 'resident';
  if (env === 'host') return 'host';
  return 'auto';
}

function weightMode(opt: boolean | 'auto' | 'host' | undefined): WeightStorePolicy['mode'] {
  if (opt === true) return 'streamed';
  if (opt === false) return 'resident';
  if (opt === 'host') return 'host';
  return envWeightMode();
}

/** The fast kernels a backend layer registered for the running backend. */
function kernelSet(info: BackendInfo): string[] {
  const out: string[] = [];
  if (wasmBackendDetails()?.blas.available && info.name === 'wasm') out.push('native-blas');
  if (kernelRegistered(SNAKE_BETA_NWC)) out.push(SNAKE_BETA_NWC);
  if (kernelRegistered(TO_HOST)) out.push(TO_HOST);
  return out;
}

/** Starts (or reuses) the backend and describes it; the environment is read here, at the edge, once. */
export async function createRuntime(opts: RuntimeOptions = {}): Promise<Runtime> {
  const info = await initBackend(opts.backend);
  if (opts.memoryBudget !== undefined && !(opts.memoryBudget > 0)) {
    throw new Error(`createRuntime: memoryBudget must be a positive number of bytes, got ${opts.memoryBudget}`);
  }
  return {
    backend: info.name,
    threads: info.threads,
    kernels: kernelSet(info),
    budget: budgetOf(info.name, opts.memoryBudget ?? info.memoryBudget),
    weights: {
      mode: weightMode(opts.streamWeights),
      hostDType: opts.hostDType ?? (process.env.AUDIOX_STREAM_FP16 === '1' ? 'float16' : 'keep'),
      nativeReads: nativeRelayout('F16'),
    },
    info,
  };
}
