// The transformer passes outside the GEMMs as native kernels for wasm (registered by enableBlasKernels when
// the addon is loaded): nn's DIVIDED_ATTENTION, LAYER_NORM and GELU (src/nn/kernels.ts). Each reads its
// inputs and writes its output in place in the wasm heap, one pass where tfjs' wasm kernels would chain
// slices, tiles, transposes and element-wise kernels.
import * as tf from '@tensorflow/tfjs-core';
import { DIVIDED_ATTENTION, GELU, LAYER_NORM } from '../nn/kernels.ts';
import type { BlasAddon } from './blas.ts';

interface OutputMaker {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: OutputMaker; attrs: Record<string, unknown> };
/** A Float32Array view of a tensor's data where the addon can read or write it. */
export type HeapView = (backend: OutputMaker, t: tf.TensorInfo) => Float32Array;

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function f32(name: string, ...ts: (tf.TensorInfo | undefined)[]): void {
  for (const t of ts) if (t && t.dtype !== 'float32') throw new Error(`${name}: expected float32 inputs, got ${t.dtype}`);
}

function dividedAttention(addon: BlasAddon, view: HeapView) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { qkv } = args.inputs as Record<string, tf.TensorInfo>;
    const { heads, frames, positions, axis, scale } = args.attrs as {
      heads: number;
      frames: number;
      positions: number;
      axis: 'time' | 'space';
      scale: number;
    };
    f32(DIVIDED_ATTENTION, qkv);
    const [n, l, d3] = qkv.shape;
    if (qkv.shape.length !== 3 || l !== 1 + frames * positions || d3 % (3 * heads) !== 0) {
      throw new Error(`${DIVIDED_ATTENTION}: qkv [${qkv.shape}] is not [N, 1 + ${frames}·${positions}, 3·${heads}·headDim]`);
    }
    const be = args.backend;
    const out = be.makeOutput([n, l, d3 / 3], 'float32');
    addon.dividedAttention(view(be, qkv), view(be, out), n, frames, positions, heads, d3 / (3 * heads), axis === 'time', scale);
    return out;
  };
}

function layerNorm(addon: BlasAddon, view: HeapView) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, weight, bias } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    f32(LAYER_NORM, x, weight, bias);
    const ch = x!.shape[x!.shape.length - 1];
    for (const p of [weight, bias]) {
      if (p && size(p.shape) !== ch) throw new Error(`${LAYER_NORM}: weight/bias of ${size(p.shape)} values for ${ch} channels`);
    }
    const be = args.backend;
    const out = be.makeOutput([...x!.shape], 'float32');
    const opt = (t?: tf.TensorInfo) => (t ? view(be, t) : null);
    addon.layerNorm(view(be, x!), view(be, out), size(x!.shape) / ch, ch, opt(weight), opt(bias), args.attrs.eps as number);
    return out;
  };
}

function gelu(addon: BlasAddon, view: HeapView) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as Record<string, tf.TensorInfo>;
    f32(GELU, x);
    const out = args.backend.makeOutput([...x.shape], 'float32');
    addon.gelu(view(args.backend, x), view(args.backend, out), size(x.shape));
    return out;
  };
}

/** Registers the three kernels for wasm (once; the addon must be loaded). */
export function registerNativePasses(addon: BlasAddon, view: HeapView): void {
  const reg = (kernelName: string, f: (a: KernelArgs) => tf.TensorInfo) => {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: f as unknown as tf.KernelFunc });
  };
  reg(DIVIDED_ATTENTION, dividedAttention(addon, view));
  reg(LAYER_NORM, layerNorm(addon, view));
  reg(GELU, gelu(addon, view));
}
