// Host-resident tensors on the wasm backend: float32 tensors whose values live in ordinary host memory
// (a JavaScript ArrayBuffer, outside the 4 GiB wasm heap) instead of on the heap. Only the native BLAS
// kernels read them, in place, as the weight operand of a matrix product or the filter of a 1-D
// convolution (src/backend/blas.ts `heapF32`); `dataSync`/`data` return their values; disposing frees them.
// Every other wasm kernel refuses them with an error naming the kernel (the stock C++ kernels would
// otherwise abort on an id they never registered). nn asks for one through the `TO_HOST` kernel
// (src/nn/kernels.ts) and accounts for their bytes through `tf.memory().hostBytes` (src/nn/runtime.ts).
import * as tf from '@tensorflow/tfjs-core';
import { replaceKernel } from './kernel-swap.ts';
import { TO_HOST } from '../nn/kernels.ts';

interface Entry {
  id: number;
  memoryOffset: number | null;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
  /** Set for host-resident data. */
  host?: Float32Array;
}
interface WasmBackendInternals {
  dataIdNextNumber: number;
  dataIdMap: { get(id: object): Entry | undefined; set(id: object, e: Entry): void; has(id: object): boolean; delete(id: object): void };
  disposeData(dataId: object, force?: boolean): boolean;
  readSync(dataId: object, start?: number, end?: number): tf.backend_util.BackendValues;
  memory(): tf.MemoryInfo;
}

/** Beyond any wasm32 heap: a stray typed-array view of a host entry throws instead of reading other data. */
const NO_HEAP = 2 ** 33;

let patched: WasmBackendInternals | null = null;
let hostBytes = 0;
/** Kernels that read host-resident inputs themselves (the BLAS layer adds its own); Reshape only relabels the shape. */
const READERS = new Set<string>([tf.Reshape]);

/** The host array of a host-resident tensor, or undefined for ordinary heap data. */
export function hostData(backend: { dataIdMap: { get(id: unknown): unknown } }, t: tf.TensorInfo): Float32Array | undefined {
  return (backend.dataIdMap.get(t.dataId) as Entry | undefined)?.host;
}

/** Declares that `kernelName` on wasm reads host-resident inputs itself (the guard lets them through). */
export function readsHostTensors(kernelName: string): void {
  READERS.add(kernelName);
}

function patchBackend(be: WasmBackendInternals): void {
  if (patched === be) return;
  const { disposeData, readSync, memory } = be;
  be.disposeData = function (dataId, force = false) {
    const e = this.dataIdMap.get(dataId);
    if (!e?.host) return disposeData.call(this, dataId, force);
    e.refCount--;
    if (!force && e.refCount > 0) return false;
    hostBytes -= e.host.byteLength;
    this.dataIdMap.delete(dataId);
    return true;
  };
  be.readSync = function (dataId, start, end) {
    const e = this.dataIdMap.get(dataId);
    if (!e?.host) return readSync.call(this, dataId, start, end);
    return e.host.slice(start ?? 0, end ?? e.host.length);
  };
  be.memory = function () {
    return { ...memory.call(this), hostBytes } as tf.MemoryInfo;
  };
  patched = be;
  guardKernels();
}

/**
 * `stock` behind a check that no input is host-resident: a clear error naming the kernel instead of the
 * wasm abort the stock C++ kernels end in (they look up an id that was never registered with them).
 */
export function refuseHost<A extends { inputs: tf.NamedTensorInfoMap; backend: unknown }, R>(
  kernelName: string,
  stock: (args: A) => R,
): (args: A) => R {
  return (args) => {
    const be = args.backend as WasmBackendInternals;
    if (hostBytes > 0) {
      for (const [name, t] of Object.entries(args.inputs)) {
        if (t && be.dataIdMap.get(t.dataId)?.host) {
          throw new Error(
            `${kernelName}: input "${name}" [${t.shape}] is a host-resident weight, which only the native matrix-product ` +
              'and convolution kernels read (a layer used it in another op, or in a form those kernels do not take: ' +
              'keep that tensor resident, or set AUDIOX_STREAM_WEIGHTS=1)',
          );
        }
      }
    }
    return stock(args);
  };
}

/** Wraps every wasm kernel that does not read host data itself with `refuseHost`. */
function guardKernels(): void {
  for (const k of tf.getKernelsForBackend('wasm')) {
    if (READERS.has(k.kernelName) || k.kernelName === TO_HOST) continue;
    replaceKernel<tf.KernelFunc>(k.kernelName, 'wasm', (stock) =>
      refuseHost(k.kernelName, stock as unknown as (a: { inputs: tf.NamedTensorInfoMap; backend: unknown }) => tf.TensorInfo) as unknown as tf.KernelFunc);
  }
}

/** TO_HOST on wasm: a float32 tensor's values moved into host memory (the input stays as it was). */
function toHostKernel(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend }): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const be = args.backend as unknown as WasmBackendInternals;
  if (x.dtype !== 'float32') throw new Error(`${TO_HOST}: only float32 tensors can be host-resident, got ${x.dtype}`);
  patchBackend(be);
  const src = be.dataIdMap.get(x.dataId);
  const host = src?.host ? src.host.slice() : (be.readSync(x.dataId) as Float32Array);
  const dataId = {};
  be.dataIdMap.set(dataId, { id: be.dataIdNextNumber++, memoryOffset: NO_HEAP, shape: x.shape, dtype: 'float32', refCount: 1, host });
  hostBytes += host.byteLength;
  return { dataId, shape: x.shape, dtype: 'float32' };
}

/** Whether host-resident tensors can be made now (the wasm backend runs, with TO_HOST registered). */
export function hostTensorsAvailable(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(TO_HOST, 'wasm') !== undefined;
}

/**
 * Float32 arrays adopted as host-resident tensors of the given shapes (the arrays become the tensors' storage:
 * the caller must not write them afterwards), without a copy and without touching the wasm heap; null unless
 * the wasm backend with TO_HOST runs. The way a loader reads weights straight into host memory.
 */
export function adoptHostArrays(arrays: readonly { data: Float32Array; shape: readonly number[] }[]): tf.Tensor[] | null {
  if (!hostTensorsAvailable()) return null;
  const be = tf.backend() as unknown as WasmBackendInternals;
  patchBackend(be);
  for (const { data, shape } of arrays) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== data.length) throw new Error(`a host tensor of shape [${shape}] needs ${n} values, got ${data.length}`);
  }
  return arrays.map(({ data, shape }) => {
    const dataId = {};
    be.dataIdMap.set(dataId, { id: be.dataIdNextNumber++, memoryOffset: NO_HEAP, shape: [...shape], dtype: 'float32', refCount: 1, host: data });
    hostBytes += data.byteLength;
    return tf.engine().makeTensorFromTensorInfo({ dataId, shape: [...shape], dtype: 'float32' }, tf.backend());
  });
}

/** Registers TO_HOST for wasm (after the kernels that read host data declared themselves). */
export function enableHostTensors(): void {
  if (tf.getKernel(TO_HOST, 'wasm')) return;
  tf.registerKernel({ kernelName: TO_HOST, backendName: 'wasm', kernelFunc: toHostKernel as unknown as tf.KernelFunc });
}
