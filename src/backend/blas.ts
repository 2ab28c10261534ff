// Optional native BLAS accelerator for the wasm backend.
//
// A ~250-line N-API addon (native/blas/audiox_blas.c) calls the system CBLAS (Debian: OpenBLAS from
// libopenblas-dev). It is compiled by the package's install step (native/blas/build.mjs, or `npm run
// build:native`) with the system C compiler against Node's own headers — nothing is downloaded, and
// nothing is compiled at run time. When it loads, the wasm backend's
// hot kernels (BatchMatMul, _FusedMatMul, Conv2D and FusedConv2D for 1-D convolutions, Sin) are replaced
// by versions that run the GEMM natively *in place on the wasm heap* (the addon receives
// Float32Array views of it), so tensors stay where they are and no weight is ever copied.
// Anything the native path does not cover falls through to the stock wasm kernel.
// AUDIOX_BLAS=0 disables it; AUDIOX_BLAS=1 makes a failure to load an error instead of a fallback.
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../layout.ts';
import { registerNativePasses } from './blas-passes.ts';
import { replaceKernel } from './kernel-swap.ts';
import { matMulShape } from './matmul-shape.ts';
import { enableHostTensors, hostData, readsHostTensors, refuseHost } from './host-tensors.ts';
import { SNAKE_BETA_NWC } from '../nn/kernels.ts';

const require = createRequire(import.meta.url);
const ROOT = PACKAGE_ROOT;
const SOURCE = path.join(ROOT, 'native', 'blas', 'audiox_blas.c');

export interface BlasAddon {
  gemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    bias?: Float32Array | null,
    activation?: number,
    alpha?: number,
  ): void;
  conv1d(
    x: Float32Array,
    w: Float32Array,
    y: Float32Array,
    batch: number,
    win: number,
    cin: number,
    cout: number,
    kw: number,
    stride: number,
    dilation: number,
    padLeft: number,
    wout: number,
  ): void;
  biasAct(y: Float32Array, rows: number, n: number, bias: Float32Array | null, activation: number, alpha?: number): void;
  sin(x: Float32Array, y: Float32Array, n: number): void;
  snakeBeta(x: Float32Array, a: Float32Array, invB: Float32Array, y: Float32Array, rows: number, channels: number): void;
  relayout(
    src: Float32Array | Uint16Array,
    dst: Float32Array,
    cols: number,
    rowStart: number,
    rowCount: number,
    transpose: boolean,
    halfTable: Float32Array | null,
  ): void;
  /** Bytes past the last 64-byte boundary at which the array's data starts. */
  misalignment(a: ArrayBufferView): number;
  setThreads(n: number): void;
  /** 0 = fp32, 1 = bf16 operands with fp32 accumulation (AMX); returns the precision now in effect. */
  setGemmPrecision(p: 0 | 1): 0 | 1;
  info(): { threads: number; config: string };
  /** qkv [n, 1 + frames·positions, 3·heads·headDim] → out [n, L, heads·headDim] (src/nn/kernels.ts DIVIDED_ATTENTION). */
  dividedAttention(
    qkv: Float32Array,
    out: Float32Array,
    n: number,
    frames: number,
    positions: number,
    heads: number,
    headDim: number,
    time: boolean,
    scale: number,
  ): void;
  layerNorm(x: Float32Array, y: Float32Array, rows: number, channels: number, weight: Float32Array | null, bias: Float32Array | null, eps: number): void;
  gelu(x: Float32Array, y: Float32Array, n: number): void;
}

/**
 * Precision of the addon's matrix products: `fp32` (default, cblas_sgemm) or `bf16` — both operands
 * rounded to bfloat16, fp32 accumulation on the CPU's AMX tile unit (opt-in, AUDIOX_GEMM=bf16).
 * Convolutions stay fp32.
 */
export type GemmPrecision = 'fp32' | 'bf16';

export interface BlasStatus {
  available: boolean;
  /** Why it is unavailable, or the library's configuration string when it is. */
  reason: string;
  threads: number;
  /** Path of the compiled addon. */
  binary?: string;
}

/** Activation codes understood by the addon's epilogue. */
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2, elu: 3, leakyrelu: 4, sigmoid: 5 };

let addon: BlasAddon | null = null;
let status: BlasStatus | null = null;
let kernelsOn = false;

/** Where `npm run build:native` (native/blas/build.mjs, also the package's install step) puts the addon. */
export function blasBinaryPath(): string {
  const key = createHash('sha256')
    .update(fs.readFileSync(SOURCE))
    .update(`${process.version}-${process.arch}-${process.platform}`)
    .digest('hex')
    .slice(0, 16);
  return path.join(ROOT, 'native', 'blas', 'build', `audiox_blas-${key}.node`);
}

/** The exact tfjs-backend-wasm release whose kernel internals the native kernels were written against. */
export const WASM_BACKEND_VERSION = '4.22.0';

/** Loads the addon built by `npm run build:native` once; never throws (the status says why it is off). */
export function loadBlas(): BlasStatus {
  if (status) return status;
  if (process.env.AUDIOX_BLAS === '0') {
    status = { available: false, reason: 'disabled by AUDIOX_BLAS=0', threads: 0 };
    return status;
  }
  const wasmVersion = (require('@tensorflow/tfjs-backend-wasm/package.json') as { version: string }).version;
  if (wasmVersion !== WASM_BACKEND_VERSION) {
    status = {
      available: false,
      reason: `@tensorflow/tfjs-backend-wasm is ${wasmVersion}, but the native kernels read the internals of ${WASM_BACKEND_VERSION} (install that exact version)`,
      threads: 0,
    };
    return status;
  }
  const binary = blasBinaryPath();
  if (!fs.existsSync(binary)) {
    status = {
      available: false,
      reason: 'the addon is not built (run `npm run build:native`; it needs a C compiler and libopenblas-dev)',
      threads: 0,
    };
    return status;
  }
  try {
    addon = require(binary) as BlasAddon;
    const threads = Number(process.env.AUDIOX_BLAS_THREADS);
    if (threads >= 1) addon.setThreads(Math.floor(threads));
    const info = addon.info();
    status = { available: true, reason: info.config, threads: info.threads, binary };
  } catch (e) {
    addon = null;
    status = {
      available: false,
      reason: `${binary} does not load: ${(e as Error).message.split('\n')[0]} (rebuild it with \`npm run build:native\`)`,
      threads: 0,
    };
  }
  return status;
}

/** The loaded addon (for the backends' own native helpers, e.g. the tensorflow weight re-layout), or null. */
export function loadBlasAddon(): BlasAddon | null {
  loadBlas();
  return addon;
}

export function blasActive(): boolean {
  return kernelsOn;
}

/**
 * Sets the precision of the addon's GEMM kernels. Throws when the addon is not loaded, or for `bf16` when
 * the CPU (or the OS) offers no AMX-BF16 — nothing is changed then.
 */
export function setGemmPrecision(p: GemmPrecision): void {
  if (p !== 'fp32' && p !== 'bf16') throw new Error(`unknown GEMM precision "${String(p)}": use fp32 or bf16`);
  const a = loadBlasAddon();
  if (!a && p === 'fp32') return; // the stock kernels are fp32
  if (!a) throw new Error(`GEMM precision ${p} needs the native BLAS addon: ${loadBlas().reason}`);
  const got = a.setGemmPrecision(p === 'bf16' ? 1 : 0);
  if (p === 'bf16' && got !== 1) {
    throw new Error('bf16 GEMMs need a CPU with AMX-BF16 (e.g. Intel Xeon 4th gen or later) and Linux ≥ 5.16; use fp32');
  }
}

// ---- kernels ----------------------------------------------------------------------------------

interface WasmData {
  memoryOffset: number;
}
export interface WasmBackendLike {
  dataIdMap: { get(id: unknown): WasmData };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array; wasmMemory?: WebAssembly.Memory; asm?: { memory?: WebAssembly.Memory } };
}
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: WasmBackendLike; attrs: Record<string, unknown> };

/** The float32 values of a wasm tensor where they are (a view of the heap, or a host-resident tensor's array). */
export function heapF32(backend: WasmBackendLike, t: tf.TensorInfo): Float32Array {
  const host = hostData(backend, t); // a host-resident weight (host-tensors.ts), read in place
  if (host) return host;
  // Take the buffer from the Memory object itself: after a heap growth HEAPU8 may still be stale.
  const mem = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  const buffer = mem ? mem.buffer : backend.wasm.HEAPU8.buffer;
  const size = t.shape.reduce((a, b) => a * b, 1);
  return new Float32Array(buffer, backend.dataIdMap.get(t.dataId).memoryOffset, size);
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Plans op(A)·op(B) with numpy-style batch broadcasting restricted to "equal or one side is 1". */
function planMatMul(a: tf.TensorInfo, b: tf.TensorInfo, ta: boolean, tb: boolean) {
  const { m, n, k, kb, outer, batch, batchA, batchB, flatBatch } = matMulShape(a, b, ta, tb);
  if (k !== kb) throw new Error(`matMul: inner dimensions ${k} and ${kb} differ (shapes ${a.shape} and ${b.shape})`);
  if (!flatBatch) return null;
  return { m, n, k, batch, strideA: batchA === 1 ? 0 : m * k, strideB: batchB === 1 ? 0 : k * n, outShape: [...outer, m, n] };
}

type KernelFunc = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

function matMulKernel(fused: boolean, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { transposeA, transposeB, activation = 'linear', leakyreluAlpha = 0 } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = ACTIVATIONS[activation];
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32' || act === undefined || preluActivationWeights) {
      return fallback(args);
    }
    const plan = planMatMul(a, b, transposeA, transposeB);
    if (!plan || (bias && (bias.dtype !== 'float32' || (size(bias.shape) !== plan.n && size(bias.shape) !== 1)))) {
      return fallback(args);
    }
    const out = args.backend.makeOutput(plan.outShape, 'float32');
    const be = args.backend;
    addon!.gemm(
      heapF32(be, a), heapF32(be, b), heapF32(be, out),
      plan.batch, plan.m, plan.n, plan.k, transposeA, transposeB, plan.strideA, plan.strideB,
      fused && bias ? heapF32(be, bias) : null, fused ? act : 0, leakyreluAlpha,
    );
    return out;
  };
}

/** Conv2D / FusedConv2D with a height of 1 (tfjs' conv1d and the project's channels-last convs). */
function conv1dKernel(fused: boolean, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as {
      strides: number | [number, number];
      pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
      dilations: number | [number, number];
      dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      activation?: string;
    };
    const act = ACTIVATIONS[attrs.activation ?? 'linear'];
    if (
      !x || !filter || x.dtype !== 'float32' || attrs.dataFormat !== 'NHWC' || x.shape[1] !== 1 ||
      filter.shape[0] !== 1 || preluActivationWeights || act === undefined || act === ACTIVATIONS.leakyrelu
    ) {
      return fallback(args);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast',
    );
    if (info.outHeight !== 1 || (bias && size(bias.shape) !== info.outChannels && size(bias.shape) !== 1)) {
      return fallback(args);
    }
    const be = args.backend;
    const out = be.makeOutput(info.outShape, 'float32');
    const y = heapF32(be, out);
    addon!.conv1d(
      heapF32(be, x), heapF32(be, filter), y,
      info.batchSize, info.inWidth, info.inChannels, info.outChannels, info.filterWidth,
      info.strideWidth, info.dilationWidth, info.padInfo.left, info.outWidth,
    );
    if (fused && (bias || act !== 0)) {
      addon!.biasAct(y, info.batchSize * info.outWidth, info.outChannels, bias ? heapF32(be, bias) : null, act);
    }
    return out;
  };
}

function sinKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return fallback(args);
    const out = args.backend.makeOutput(x.shape, 'float32');
    addon!.sin(heapF32(args.backend, x), heapF32(args.backend, out), size(x.shape));
    return out;
  };
}

/** nn's fused channels-last SnakeBeta (src/nn/kernels.ts), registered for wasm when the addon is on. */
function snakeKernel(args: KernelArgs): tf.TensorInfo {
  const { x, a, invB } = args.inputs as Record<string, tf.TensorInfo>;
  const ch = x.shape[x.shape.length - 1];
  if (x.dtype !== 'float32' || size(a.shape) !== ch || size(invB.shape) !== ch) {
    throw new Error(`${SNAKE_BETA_NWC}: expected float32 x [..., C] with a, invB of C = ${ch} values`);
  }
  const be = args.backend;
  const out = be.makeOutput(x.shape, 'float32');
  addon!.snakeBeta(heapF32(be, x), heapF32(be, a), heapF32(be, invB), heapF32(be, out), size(x.shape) / ch, ch);
  return out;
}

/**
 * Loads the addon and replaces the wasm backend's GEMM-bound kernels. Call before or after the
 * wasm backend is initialised; returns the load status (kernels stay stock when unavailable).
 */
export function enableBlasKernels(): BlasStatus {
  const st = loadBlas();
  if (!st.available || kernelsOn) return st;
  // These read host-resident weights in place; their stock fallbacks refuse them with a clear error.
  const swap = (name: string, make: (fallback: KernelFunc) => KernelFunc) => {
    readsHostTensors(name);
    replaceKernel<KernelFunc>(name, 'wasm', (stock) => make(refuseHost(name, stock)));
  };
  swap(tf.BatchMatMul, (f) => matMulKernel(false, f));
  swap(tf._FusedMatMul, (f) => matMulKernel(true, f));
  swap(tf.Conv2D, (f) => conv1dKernel(false, f));
  swap(tf.FusedConv2D, (f) => conv1dKernel(true, f));
  swap(tf.Sin, sinKernel);
  tf.registerKernel({ kernelName: SNAKE_BETA_NWC, backendName: 'wasm', kernelFunc: snakeKernel as unknown as tf.KernelFunc });
  registerNativePasses(addon!, (backend, t) => heapF32(backend as WasmBackendLike, t));
  enableHostTensors();
  kernelsOn = true;
  return st;
}
