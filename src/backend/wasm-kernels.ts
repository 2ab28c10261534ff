// The stock wasm BatchMatMul (and _FusedMatMul) has a fast (XNNPACK) path only for one untransposed 2-D product: a
// transposed operand or a batch axis takes a generic loop ~10× slower (e.g. [1569,768]·[768,2304]ᵀ:
// 1.7 s vs 0.16 s), far more than re-laying the operands costs. Without the native BLAS kernels
// (blas.ts, which take both for free), BatchMatMul is replaced by one that transposes explicitly and
// runs one 2-D product per batch item through the stock kernel, so models can write plain
// tf.matMul(x, w, false, true) or batched attention on every backend.
import * as tf from '@tensorflow/tfjs-core';
import { WASM_BACKEND_VERSION } from './blas.ts';
import { replaceKernel } from './kernel-swap.ts';

type Info = tf.TensorInfo;
type KernelArgs = { inputs: tf.NamedTensorInfoMap | Info[]; backend: WasmBackendLike; attrs: Record<string, unknown> };
type KernelFunc = (args: KernelArgs) => Info;
interface WasmBackendLike {
  disposeData(dataId: object): boolean;
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function stock(name: string): KernelFunc {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`the wasm backend has no ${name} kernel (is @tensorflow/tfjs-backend-wasm ${WASM_BACKEND_VERSION} loaded?)`);
  return k.kernelFunc as unknown as KernelFunc;
}

function layoutMatMul(fallback: KernelFunc): KernelFunc {
  const reshape = stock(tf.Reshape);
  const slice = stock(tf.Slice);
  const transpose = stock(tf.Transpose);
  const concat = stock(tf.Concat);
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as { a: Info; b: Info; bias?: Info; preluActivationWeights?: Info };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || preluActivationWeights) return fallback(args);
    // _FusedMatMul: a bias of n values (or one) is the same for every batch item.
    if (bias && size(bias.shape) !== b.shape[b.shape.length - (transposeB ? 2 : 1)] && size(bias.shape) !== 1) return fallback(args);
    const batchA = size(a.shape.slice(0, -2));
    const batchB = size(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    if (batch === 1 && !transposeA && !transposeB) return fallback(args);
    if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return fallback(args);
    const backend = args.backend;
    const temps: Info[] = [];
    const run = (f: KernelFunc, inputs: KernelArgs['inputs'], attrs: Record<string, unknown>): Info => {
      const out = f({ inputs, backend, attrs });
      temps.push(out);
      return out;
    };
    const as3d = (t: Info, n: number) => run(reshape, { x: t }, { shape: [n, ...t.shape.slice(-2)] });
    const item = (t: Info, n: number, i: number, trans: boolean) => {
      let x = n === 1 ? t : run(slice, { x: t }, { begin: [i, 0, 0], size: [1, ...t.shape.slice(1)] });
      if (trans) x = run(transpose, { x }, { perm: [0, 2, 1] });
      return x;
    };
    try {
      const a3 = as3d(a, batchA);
      const b3 = as3d(b, batchB);
      const outs: Info[] = [];
      for (let i = 0; i < batch; i++) {
        const ai = item(a3, batchA, i, transposeA);
        const bi = item(b3, batchB, i, transposeB);
        const inputs = bias ? { a: ai, b: bi, bias } : { a: ai, b: bi };
        outs.push(fallback({ inputs, backend, attrs: { ...args.attrs, transposeA: false, transposeB: false } }));
      }
      let out = outs[0];
      if (outs.length > 1) {
        temps.push(...outs);
        out = concat({ inputs: outs, backend, attrs: { axis: 0 } });
      }
      const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      out.shape = [...outer, ...out.shape.slice(-2)];
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

let on = false;

/** Replaces the wasm BatchMatMul and _FusedMatMul as described above (once; call only when the BLAS kernels are off). */
export function enableWasmLayoutKernels(): void {
  if (!on) on = replaceKernel<KernelFunc>(tf.BatchMatMul, 'wasm', layoutMatMul) && replaceKernel<KernelFunc>(tf._FusedMatMul, 'wasm', layoutMatMul);
}
