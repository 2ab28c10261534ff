// Fused layer norm for the webgpu backend (nn kernel LAYER_NORM): one workgroup per row reduces the mean
// and then the centred variance (two passes, as tf.moments, so large offsets do not cancel) in workgroup
// memory and writes the normalised, scaled, shifted row: one dispatch instead of tfjs' seven.
import * as tf from '@tensorflow/tfjs-core';
import { LAYER_NORM } from '../nn/kernels.ts';
import { checkBindings, float, int, view, type WebgpuBackendLike, type WgslProgram } from './webgpu-program.ts';

const WG = 64;
/** Rows per grid column: tfjs dispatches at most 65535 workgroups along one axis. */
const GRID_X = 32768;

export class LayerNormProgram implements WgslProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames: string[];
  uniforms = 'rows : i32, cols : i32, eps : f32,';

  constructor(rows: number, cols: number, private readonly weight: boolean, private readonly bias: boolean) {
    this.outputShape = [rows, cols];
    this.dispatch = [Math.min(rows, GRID_X), Math.ceil(rows / GRID_X), 1];
    this.variableNames = ['X', ...(weight ? ['W'] : []), ...(bias ? ['Bias'] : [])];
    this.shaderKey = `audioxLayerNorm_${weight}_${bias}`;
  }

  getUserCode(): string {
    const reduce = (v: string) => `
        red[localIndex] = ${v};
        workgroupBarrier();
        for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
          if (localIndex < s) { red[localIndex] += red[localIndex + s]; }
          workgroupBarrier();
        }`;
    return `
      var<workgroup> red : array<f32, ${WG}>;
      fn main() {
        let cols = uniforms.cols;
        let rowRaw = i32(workgroupId.y) * ${GRID_X} + i32(workgroupId.x);
        let row = min(rowRaw, uniforms.rows - 1);
        let base = row * cols;
        var part = 0.0;
        for (var c = i32(localIndex); c < cols; c += ${WG}) { part += X[base + c]; }
        ${reduce('part')}
        let mean = red[0] / f32(cols);
        workgroupBarrier();
        part = 0.0;
        for (var c = i32(localIndex); c < cols; c += ${WG}) { let e = X[base + c] - mean; part = fma(e, e, part); }
        ${reduce('part')}
        let inv = inverseSqrt(red[0] / f32(cols) + uniforms.eps);
        if (rowRaw < uniforms.rows) {
          for (var c = i32(localIndex); c < cols; c += ${WG}) {
            var y = (X[base + c] - mean) * inv;
            ${this.weight ? 'y *= W[c];' : ''}
            ${this.bias ? 'y += Bias[c];' : ''}
            result[base + c] = y;
          }
        }
      }`;
  }
}

interface LayerNormArgs {
  inputs: { x: tf.TensorInfo; weight?: tf.TensorInfo; bias?: tf.TensorInfo };
  backend: WebgpuBackendLike;
  attrs: { eps: number };
}

let dispatches = 0;
/** How many layer norms ran on our kernel (tests check the path taken). */
export function layerNormDispatches(): number {
  return dispatches;
}

function layerNormKernel(args: LayerNormArgs): tf.TensorInfo {
  const { x, weight, bias } = args.inputs;
  const cols = x.shape.at(-1) ?? 1;
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  if (x.dtype !== 'float32' || x.shape.length === 0) throw new Error(`${LAYER_NORM}: x must be float32 [..., C]`);
  for (const [name, p] of [['weight', weight], ['bias', bias]] as const)
    if (p && (p.dtype !== 'float32' || p.shape.reduce((a, d) => a * d, 1) !== cols))
      throw new Error(`${LAYER_NORM}: ${name} must be float32 with the ${cols} values of x's last axis, got [${p.shape}]`);
  if (rows === 0 || cols === 0) throw new Error(`${LAYER_NORM}: x of shape [${x.shape}] is empty (the op takes tf ops for empty tensors)`);
  const program = new LayerNormProgram(rows, cols, !!weight, !!bias);
  const inputs = [view(x, [rows, cols])];
  checkBindings(LAYER_NORM, inputs, args.backend.device.limits);
  if (weight) inputs.push(view(weight, [cols]));
  if (bias) inputs.push(view(bias, [cols]));
  dispatches++;
  const out = args.backend.runWebGPUProgram(program, inputs, 'float32', [int(rows), int(cols), float(args.attrs.eps)]);
  return view(out, x.shape);
}

/** Registers the fused layer norm kernel for the webgpu backend. */
export function registerWebgpuLayerNorm(): void {
  if (tf.getKernel(LAYER_NORM, 'webgpu')) return;
  tf.registerKernel({ kernelName: LAYER_NORM, backendName: 'webgpu', kernelFunc: layerNormKernel as unknown as tf.KernelFunc });
}
