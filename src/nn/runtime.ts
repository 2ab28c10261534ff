// What the running backend offers, as plain values that models receive (they never import src/backend):
// the memory budget a plan is checked against, the kernel set, how weights are held. The backend layer
// creates one (`createRuntime` in src/backend/runtime.ts) at the edge — the CLI, the server, the library
// entry — and passes it down; this module is a leaf so that the backend can name these types.
import * as tf from '@tensorflow/tfjs-core';

const GiB = 1024 ** 3;

/** The memory a backend lets models plan against (bytes), and what it needs on the host besides. */
export interface MemoryBudget {
  /** The backend the budget belongs to (for messages). */
  readonly backend: string;
  /** Bytes tensors may occupy before the backend becomes unsafe. */
  readonly bytes: number;
  /**
   * Host memory the backend itself takes besides the streamed weights' host copies: a fixed number of
   * bytes (the wasm heap), or 'tensors' when its tensors live in host RAM (the plan's peak).
   */
  readonly hostReserve: number | 'tensors';
  /** Appended to the refusal of a plan that does not fit (what the user can do on this backend). */
  readonly hint?: string;
}

/** How a model's weights are held unless loadModel's options say otherwise (README "Memory"). */
export interface WeightStorePolicy {
  /**
   * Resident; the transformer blocks' weight operands in host memory read in place ('host', wasm with the
   * native addon); streamed from host memory per forward; or chosen by the memory plan ('auto').
   */
  readonly mode: 'auto' | 'resident' | 'host' | 'streamed';
  /** Precision of the streamed host copies. */
  readonly hostDType: 'keep' | 'float16';
  /** Whether float16 weights are widened (and re-laid out) by native code rather than in JavaScript. */
  readonly nativeReads: boolean;
}

/** The running backend as models see it. */
export interface RuntimeInfo {
  /** Backend name (tensorflow-gpu, tensorflow, webgpu, wasm, cpu): for messages and reports only. */
  readonly backend: string;
  /** Threads the backend computes with. */
  readonly threads: number;
  /** Names of the fast kernels registered for this backend (src/nn/kernels.ts, the BLAS matmul, …). */
  readonly kernels: readonly string[];
  /** The memory plans are checked against. */
  readonly budget: MemoryBudget;
  /** How weights are held by default. */
  readonly weights: WeightStorePolicy;
}

/** No limit: for models built without a runtime (tests, scripts), where nothing is planned. */
export const UNLIMITED_BUDGET: MemoryBudget = { backend: 'unplanned', bytes: Infinity, hostReserve: 0 };

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${n} B`;
}

/**
 * Bytes tfjs holds in the backend's own memory now: `tf.memory().numBytes` less the host-resident weights
 * (kernels.ts TO_HOST), which tfjs counts as tensors but which live outside that memory.
 */
export function backendBytes(): number {
  const m = tf.memory() as tf.MemoryInfo & { hostBytes?: number };
  return m.numBytes - (m.hostBytes ?? 0);
}

/** Bytes the budget still allows on top of what the backend holds now. */
export function budgetLeft(budget: MemoryBudget): number {
  return budget.bytes - backendBytes();
}

/** Throws before an allocation plan of `bytes` that would take the backend past `budget`. */
export function checkBudget(budget: MemoryBudget, bytes: number, what: string): void {
  if (!Number.isFinite(budget.bytes)) return;
  const inUse = backendBytes();
  if (inUse + bytes <= budget.bytes) return;
  throw new Error(
    `${what} needs ${formatBytes(bytes)} on top of ${formatBytes(inUse)} already allocated, which exceeds the ` +
      `${budget.backend} backend's budget of ${formatBytes(budget.bytes)}` +
      (budget.hint ? ` (${budget.hint})` : '') +
      '. Use weight streaming, a smaller model, or another backend.',
  );
}
