// Our own WGSL GEMM for the webgpu backend's BatchMatMul and _FusedMatMul: workgroup tiles staged in
// workgroup memory, register blocking (each invocation accumulates RM×RN outputs), transposes and
// bias + activation folded into the shader. Shapes it does not cover (non-float32, batch dims that
// broadcast other than one side being 1, a bias not of N values, prelu) go to the stock kernel.
import * as tf from '@tensorflow/tfjs-core';
import { replaceKernel } from './kernel-swap.ts';
import { matMulShape } from './matmul-shape.ts';
import { checkBindings, float, int, view, type WebgpuBackendLike, type WgslProgram } from './webgpu-program.ts';

export type GemmActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';
const ACTIVATIONS: Record<GemmActivation, string> = {
  linear: 'v',
  relu: 'max(v, 0.0)',
  relu6: 'clamp(v, 0.0, 6.0)',
  elu: 'select(exp(v) - 1.0, v, v >= 0.0)',
  sigmoid: '1.0 / (1.0 + exp(-v))',
  leakyrelu: 'select(uniforms.alpha * v, v, v >= 0.0)',
};

/** Work split: a workgroup of WGX×WGY invocations computes a (WGY·RM)×(WGX·RN) tile of C. */
export interface GemmTiling {
  wgx: number;
  wgy: number;
  rm: number;
  rn: number;
  tk: number;
}
const LARGE: GemmTiling = { wgx: 16, wgy: 16, rm: 4, rn: 4, tk: 16 };
const SHORT: GemmTiling = { wgx: 16, wgy: 8, rm: 2, rn: 4, tk: 16 };

/** Short products (few rows: timestep MLPs, pooled tokens) use a shorter tile so fewer rows are padding. */
export function gemmTiling(m: number): GemmTiling {
  return m <= 16 ? SHORT : LARGE;
}

interface GemmSpec {
  batch: number;
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
  bias: boolean;
  activation: GemmActivation;
  tiling: GemmTiling;
  /** Read A / B as vec4 along their contiguous axis (its length is a multiple of 4). */
  vecA: boolean;
  vecB: boolean;
}

/**
 * WGSL that stages one operand tile into workgroup memory `dst[k][i]` (i along M or N, `outer` of them,
 * k along K, `tk` of them). `kMajor`: the operand is stored with K contiguous (A untransposed, B transposed).
 * With `vec` every invocation reads vec4s along the contiguous axis; a vec4 is wholly inside or outside
 * the matrix because the contiguous length and the tile offsets are multiples of 4.
 */
function stageTile(o: { name: string; dst: string; base: string; origin: string; limit: string; outer: number; tk: number; threads: number; kMajor: boolean; vec: boolean }): string {
  const w = o.vec ? 4 : 1;
  const count = (o.outer * o.tk) / w;
  // (i, kk): this load's position in the tile; `stride` is the operand's contiguous length.
  const pos = o.kMajor
    ? `let i = idx / ${o.tk / w}; let kk = (idx % ${o.tk / w}) * ${w}; let src = ${o.base} + (${o.origin} + i) * K + k0 + kk;`
    : `let i = (idx % ${o.outer / w}) * ${w}; let kk = idx / ${o.outer / w}; let src = ${o.base} + (k0 + kk) * ${o.limit} + ${o.origin} + i;`;
  const store = !o.vec
    ? `${o.dst}[kk][i] = v;`
    : o.kMajor
      ? `for (var e = 0; e < 4; e++) { ${o.dst}[kk + e][i] = v[e]; }`
      : `for (var e = 0; e < 4; e++) { ${o.dst}[kk][i + e] = v[e]; }`;
  return `
          for (var l = 0; l < ${Math.ceil(count / o.threads)}; l++) {
            let idx = l * ${o.threads} + i32(localIndex);
            if (idx < ${count}) {
              ${pos}
              var v = ${o.vec ? 'vec4<f32>(0.0)' : '0.0'};
              if (${o.origin} + i < ${o.limit} && k0 + kk < K) { v = ${o.name}[src${o.vec ? ' / 4' : ''}]; }
              ${store}
            }
          }`;
}

export class GemmProgram implements WgslProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  variableComponents: number[];
  uniforms = 'dimM : i32, dimN : i32, dimK : i32, batchA : i32, batchB : i32, alpha : f32,';

  constructor(private readonly s: GemmSpec) {
    const { wgx, wgy, rm, rn, tk } = s.tiling;
    this.outputShape = [s.batch, s.m, s.n];
    this.workgroupSize = [wgx, wgy, 1];
    this.dispatch = [Math.ceil(s.n / (wgx * rn)), Math.ceil(s.m / (wgy * rm)), s.batch];
    this.variableNames = s.bias ? ['A', 'B', 'bias'] : ['A', 'B'];
    this.variableComponents = [s.vecA ? 4 : 1, s.vecB ? 4 : 1, 1].slice(0, this.variableNames.length);
    this.shaderKey = `audioxGemm_${s.transposeA}_${s.transposeB}_${s.bias}_${s.activation}_${wgx}_${wgy}_${rm}_${rn}_${tk}_${s.vecA}_${s.vecB}`;
  }

  getUserCode(): string {
    const { transposeA, transposeB, bias, activation } = this.s;
    const { wgx, wgy, rm, rn, tk } = this.s.tiling;
    const tm = wgy * rm;
    const tn = wgx * rn;
    const threads = wgx * wgy;
    const stageA = stageTile({ name: 'A', dst: 'As', base: 'aBase', origin: 'row0', limit: 'M', outer: tm, tk, threads, kMajor: !transposeA, vec: this.s.vecA });
    const stageB = stageTile({ name: 'B', dst: 'Bs', base: 'bBase', origin: 'col0', limit: 'N', outer: tn, tk, threads, kMajor: transposeB, vec: this.s.vecB });
    return `
      var<workgroup> As : array<array<f32, ${tm}>, ${tk}>;
      var<workgroup> Bs : array<array<f32, ${tn}>, ${tk}>;
      fn main() {
        let M = uniforms.dimM; let N = uniforms.dimN; let K = uniforms.dimK;
        let batch = i32(workgroupId.z);
        let aBase = select(batch, 0, uniforms.batchA == 1) * M * K;
        let bBase = select(batch, 0, uniforms.batchB == 1) * K * N;
        let row0 = i32(workgroupId.y) * ${tm};
        let col0 = i32(workgroupId.x) * ${tn};
        let tx = i32(localId.x); let ty = i32(localId.y);
        var acc : array<array<f32, ${rn}>, ${rm}>;
        for (var k0 = 0; k0 < K; k0 += ${tk}) {
${stageA}
${stageB}
          workgroupBarrier();
          for (var kk = 0; kk < ${tk}; kk++) {
            var a : array<f32, ${rm}>;
            var b : array<f32, ${rn}>;
            for (var i = 0; i < ${rm}; i++) { a[i] = As[kk][ty + i * ${wgy}]; }
            for (var j = 0; j < ${rn}; j++) { b[j] = Bs[kk][tx + j * ${wgx}]; }
            for (var i = 0; i < ${rm}; i++) {
              for (var j = 0; j < ${rn}; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
            }
          }
          workgroupBarrier();
        }
        for (var i = 0; i < ${rm}; i++) {
          let r = row0 + ty + i * ${wgy};
          for (var j = 0; j < ${rn}; j++) {
            let c = col0 + tx + j * ${wgx};
            if (r < M && c < N) {
              var v = acc[i][j]${bias ? ' + bias[c]' : ''};
              result[(batch * M + r) * N + c] = ${ACTIVATIONS[activation]};
            }
          }
        }
      }`;
  }
}

interface MatMulArgs {
  inputs: { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo | null; preluActivationWeights?: tf.TensorInfo | null };
  backend: WebgpuBackendLike;
  attrs: { transposeA: boolean; transposeB: boolean; activation?: string | null; leakyreluAlpha?: number };
}
type MatMulKernel = (args: MatMulArgs) => tf.TensorInfo;

const size = (s: number[]) => s.reduce((p, d) => p * d, 1);

/**
 * C = act(op(A)·op(B) + bias) with op = optional transpose, or null when this kernel does not cover the
 * call (the caller then uses the stock kernel).
 */
export function gemm(args: MatMulArgs): tf.TensorInfo | null {
  const { a, b, bias, preluActivationWeights } = args.inputs;
  const { transposeA, transposeB } = args.attrs;
  const activation = (args.attrs.activation ?? 'linear') as GemmActivation;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || preluActivationWeights || !(activation in ACTIVATIONS)) return null;
  const { m, n, k, kb, outer, batch, batchA, batchB, flatBatch } = matMulShape(a, b, transposeA, transposeB);
  if (k !== kb) return null; // the stock kernel reports the mismatch
  if (!flatBatch) return null;
  if (bias && (bias.dtype !== 'float32' || size(bias.shape) !== n || bias.shape.at(-1) !== n)) return null;
  if (!enabled || m === 0 || n === 0 || batch === 0) return null;
  const vecA = (transposeA ? m : k) % 4 === 0;
  const vecB = (transposeB ? k : n) % 4 === 0;
  const program = new GemmProgram({ batch, m, n, k, transposeA, transposeB, bias: !!bias, activation, tiling: gemmTiling(m), vecA, vecB });
  const maxGrid = args.backend.device.limits.maxComputeWorkgroupsPerDimension || 65535;
  if (program.dispatch.some((g) => g > maxGrid)) return null;
  const inputs = [view(a, [batchA, ...a.shape.slice(-2)]), view(b, [batchB, ...b.shape.slice(-2)])];
  checkBindings('GEMM', [...inputs, { dataId: a.dataId, shape: [batch, m, n], dtype: 'float32' }], args.backend.device.limits);
  if (bias) inputs.push(view(bias, [n]));
  const uniforms = [int(m), int(n), int(k), int(batchA), int(batchB), float(args.attrs.leakyreluAlpha ?? 0)];
  const out = args.backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  dispatches++;
  return view(out, [...outer, m, n]);
}

let enabled = true;
let dispatches = 0;

/** How many products our GEMM has computed (tests check that a shape took this path, not the stock one). */
export function gemmDispatches(): number {
  return dispatches;
}
let registered = false;

/** Switches between our GEMM and the stock kernels once registered (benchmarks compare the two). */
export function setWebgpuGemmEnabled(on: boolean): void {
  enabled = on;
}

/** Puts our GEMM in front of the webgpu BatchMatMul and _FusedMatMul kernels; false if the backend has none. */
export function registerWebgpuGemm(): boolean {
  if (registered) return true;
  const wrap = (stock: MatMulKernel): MatMulKernel => (args) => gemm(args) ?? stock(args);
  const mm = replaceKernel<MatMulKernel>('BatchMatMul', 'webgpu', wrap);
  const fused = replaceKernel<MatMulKernel>('_FusedMatMul', 'webgpu', wrap);
  registered = mm && fused;
  return registered;
}
