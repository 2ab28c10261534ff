// The per-kernel tables of bench/profile.ts and bench/profile-sync.ts: tf.profile's kernel records summed per
// kernel name, with the FLOPs of the products (matmuls and convolutions).
import type * as tf from '@tensorflow/tfjs';

export interface KernelRow {
  ms: number;
  calls: number;
  gflop: number;
  /** Milliseconds per distinct input-shape list. */
  shapes: Map<string, number>;
}

export interface KernelSummary {
  /** By kernel name, the slowest first. */
  rows: [string, KernelRow][];
  /** Milliseconds in all kernels. */
  total: number;
  /** The products' milliseconds and GFLOP. */
  gemm: { ms: number; gflop: number };
}

type KernelRecord = Awaited<ReturnType<typeof tf.profile>>['kernels'][number];

/** GFLOP of one kernel record: BatchMatMul/_FusedMatMul and Conv2D/FusedConv2D; 0 for the rest. */
export function kernelGflop(k: KernelRecord): number {
  const out = k.outputShapes[0] as number[];
  const outSize = out.reduce((p, q) => p * q, 1);
  if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') {
    const a = k.inputShapes[0] as number[];
    const inner = (a.at(-1)! * a.at(-2)!) / out.at(-2)!; // a's last two axes are m and k, in either order
    return (2 * outSize * inner) / 1e9;
  }
  if (k.name === 'Conv2D' || k.name === 'FusedConv2D') {
    const f = k.inputShapes[1] as number[];
    return (2 * outSize * f[0] * f[1] * f[2]) / 1e9;
  }
  return 0;
}

export function summarizeKernels(kernels: readonly KernelRecord[]): KernelSummary {
  const byKernel = new Map<string, KernelRow>();
  for (const k of kernels) {
    if (k.name.endsWith('__op')) continue; // an op's own record (custom-gradient ops such as fused.matMul), its kernels counted below
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const r = byKernel.get(k.name) ?? { ms: 0, calls: 0, gflop: 0, shapes: new Map() };
    r.ms += ms;
    r.calls++;
    r.gflop += kernelGflop(k);
    const key = k.inputShapes.map((s) => `[${s}]`).join(' ');
    r.shapes.set(key, (r.shapes.get(key) ?? 0) + ms);
    byKernel.set(k.name, r);
  }
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((n, [, r]) => n + r.ms, 0);
  const gemm = rows.filter(([, r]) => r.gflop > 0).reduce((n, [, r]) => ({ ms: n.ms + r.ms, gflop: n.gflop + r.gflop }), { ms: 0, gflop: 0 });
  return { rows, total, gemm };
}
