// Fused attention for the webgpu backend (nn kernel ATTENTION): softmax(q·kᵀ·scale + mask)·v without
// materialising the [Lq, Lk] scores. One invocation owns one query row; the workgroup stages a block of
// keys and values in workgroup memory and each row folds it into a running max / sum / output
// (flash-style online softmax). Query heads share key/value heads in groups (grouped-query attention).
import * as tf from '@tensorflow/tfjs-core';
import { ATTENTION } from '../nn/kernels.ts';
import { checkBindings, float, gridYZ, int, view, type WebgpuBackendLike, type WgslProgram } from './webgpu-program.ts';

export interface AttentionSpec {
  batch: number;
  heads: number;
  kvHeads: number;
  lq: number;
  lk: number;
  d: number;
  mask: boolean;
  /** Keys per staged block (workgroup memory holds keyBlock·d keys and as many values). */
  keyBlock: number;
  rows: number;
  /** Workgroups along y; the B·H (batch, head) pairs continue along z beyond it. */
  grid: [number, number];
}

/**
 * Keys per block: as many as fit the workgroup storage limit (keys and values, float32), at most 32 and
 * at least 1; null when not even one key row fits (the caller falls back to tf ops).
 */
export function planKeyBlock(d: number, lk: number, storageBytes: number): number | null {
  const fit = Math.floor(storageBytes / (2 * d * 4));
  if (fit < 1) return null;
  return Math.max(1, Math.min(32, fit, lk));
}

export class AttentionProgram implements WgslProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  uniforms = 'lq : i32, lk : i32, heads : i32, group : i32, scale : f32, mb : i32, mh : i32, mq : i32, mk : i32, gridY : i32, pairs : i32,';

  constructor(private readonly s: AttentionSpec) {
    this.outputShape = [s.batch, s.heads, s.lq, s.d];
    this.workgroupSize = [s.rows, 1, 1];
    this.dispatch = [Math.ceil(s.lq / s.rows), s.grid[0], s.grid[1]];
    this.variableNames = s.mask ? ['Q', 'K', 'V', 'Mask'] : ['Q', 'K', 'V'];
    this.shaderKey = `audioxAttention_${s.d}_${s.keyBlock}_${s.rows}_${s.mask}`;
  }

  getUserCode(): string {
    const { d, keyBlock: kb, rows, mask } = this.s;
    const loads = Math.ceil((kb * d) / rows);
    return `
      var<workgroup> Ks : array<array<f32, ${d}>, ${kb}>;
      var<workgroup> Vs : array<array<f32, ${d}>, ${kb}>;
      fn main() {
        let lq = uniforms.lq; let lk = uniforms.lk;
        // Past the last (batch, head) pair a workgroup recomputes the last one and writes nothing: the
        // barriers below must be reached by every invocation.
        let pair = i32(workgroupId.z) * uniforms.gridY + i32(workgroupId.y);
        let bh = min(pair, uniforms.pairs - 1);
        let b = bh / uniforms.heads; let h = bh % uniforms.heads;
        let kvBase = (b * (uniforms.heads / uniforms.group) + h / uniforms.group) * lk * ${d};
        let row = i32(workgroupId.x) * ${rows} + i32(localId.x);
        let live = row < lq && pair < uniforms.pairs;
        let qBase = (bh * lq + min(row, lq - 1)) * ${d};
        var q : array<f32, ${d}>;
        for (var c = 0; c < ${d}; c++) { q[c] = Q[qBase + c] * uniforms.scale; }
        var acc : array<f32, ${d}>;
        var runMax = -3.402823e38;
        var runSum = 0.0;
        var s : array<f32, ${kb}>;
        for (var k0 = 0; k0 < lk; k0 += ${kb}) {
          for (var i = 0; i < ${loads}; i++) {
            let idx = i * ${rows} + i32(localIndex);
            if (idx < ${kb * d}) {
              let j = idx / ${d}; let c = idx % ${d};
              var kv = 0.0; var vv = 0.0;
              if (k0 + j < lk) { kv = K[kvBase + (k0 + j) * ${d} + c]; vv = V[kvBase + (k0 + j) * ${d} + c]; }
              Ks[j][c] = kv; Vs[j][c] = vv;
            }
          }
          workgroupBarrier();
          let n = min(${kb}, lk - k0);
          var blockMax = -3.402823e38;
          for (var j = 0; j < n; j++) {
            var dot = 0.0;
            for (var c = 0; c < ${d}; c++) { dot = fma(q[c], Ks[j][c], dot); }
            ${mask ? 'dot += Mask[b * uniforms.mb + h * uniforms.mh + min(row, lq - 1) * uniforms.mq + (k0 + j) * uniforms.mk];' : ''}
            s[j] = dot;
            blockMax = max(blockMax, dot);
          }
          let newMax = max(runMax, blockMax);
          let corr = exp(runMax - newMax);
          runSum *= corr;
          for (var c = 0; c < ${d}; c++) { acc[c] *= corr; }
          for (var j = 0; j < n; j++) {
            let p = exp(s[j] - newMax);
            runSum += p;
            for (var c = 0; c < ${d}; c++) { acc[c] = fma(p, Vs[j][c], acc[c]); }
          }
          runMax = newMax;
          workgroupBarrier();
        }
        if (live) {
          let inv = 1.0 / runSum;
          for (var c = 0; c < ${d}; c++) { result[qBase + c] = acc[c] * inv; }
        }
      }`;
  }
}

interface AttentionArgs {
  inputs: { q: tf.TensorInfo; k: tf.TensorInfo; v: tf.TensorInfo; mask?: tf.TensorInfo };
  backend: WebgpuBackendLike;
  attrs: { scale: number };
}

/** Strides of a mask broadcast to [B, H, Lq, Lk]: 0 along its size-1 axes. */
export function maskStrides(shape: number[], full: [number, number, number, number]): [number, number, number, number] {
  if (shape.length > 4) throw new Error(`${ATTENTION}: a mask of rank ${shape.length} does not broadcast to [B, H, Lq, Lk]`);
  const s = [...Array(4 - shape.length).fill(1), ...shape] as number[];
  const out = [0, 0, 0, 0] as [number, number, number, number];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    if (s[i] !== 1 && s[i] !== full[i]) throw new Error(`${ATTENTION}: mask shape [${shape}] does not broadcast to [${full}]`);
    out[i] = s[i] === 1 ? 0 : stride;
    stride *= s[i];
  }
  return out;
}

let dispatches = 0;
/** How many attention calls ran on our kernel (tests check the path taken). */
export function attentionDispatches(): number {
  return dispatches;
}

function attentionKernel(args: AttentionArgs): tf.TensorInfo {
  const { q, k, v, mask } = args.inputs;
  const [b, h, lq, d] = q.shape;
  const [, hkv, lk] = k.shape;
  for (const t of [q, k, v]) if (t.dtype !== 'float32' || t.shape.length !== 4) throw new Error(`${ATTENTION}: q, k, v must be float32 [B, H, L, D]`);
  if (h % hkv !== 0) throw new Error(`${ATTENTION}: ${h} query heads are not a multiple of ${hkv} key/value heads`);
  if (mask && mask.dtype !== 'float32') throw new Error(`${ATTENTION}: the mask must be additive float32 (a boolean mask takes tf ops)`);
  const keyBlock = planKeyBlock(d, lk, args.backend.device.limits.maxComputeWorkgroupStorageSize);
  if (keyBlock === null) throw new Error(`${ATTENTION}: head size ${d} exceeds the adapter's workgroup storage`);
  const rows = lq >= 64 ? 64 : lq >= 16 ? 16 : 4;
  const strides = mask ? maskStrides(mask.shape, [b, h, lq, lk]) : [0, 0, 0, 0];
  const limits = args.backend.device.limits;
  const grid = gridYZ(b * h, limits);
  const program = new AttentionProgram({ batch: b, heads: h, kvHeads: hkv, lq, lk, d, mask: !!mask, keyBlock, rows, grid });
  const inputs = [q, k, v];
  if (mask) inputs.push(view(mask, [mask.shape.reduce((p, x) => p * x, 1)]));
  checkBindings(ATTENTION, inputs, limits);
  const uniforms = [int(lq), int(lk), int(h), int(h / hkv), float(args.attrs.scale), ...strides.map(int), int(grid[0]), int(b * h)];
  dispatches++;
  return args.backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
}

/** Registers the fused attention kernel for the webgpu backend. */
export function registerWebgpuAttention(): void {
  if (tf.getKernel(ATTENTION, 'webgpu')) return;
  tf.registerKernel({ kernelName: ATTENTION, backendName: 'webgpu', kernelFunc: attentionKernel as unknown as tf.KernelFunc });
}
