// The slice of @tensorflow/tfjs-backend-webgpu that our own WGSL kernels use. tfjs wraps a program's
// `getUserCode()` in a header that declares `result` (output, read_write), one read-only storage array
// per `variableNames` entry, `uniforms` (shapes plus the program's own `uniforms` fields) and the
// builtins `localId`, `localIndex`, `workgroupId`, `globalId`; it compiles once per `shaderKey` + ranks.
import type * as tf from '@tensorflow/tfjs-core';

export interface WgslProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  variableNames: string[];
  /** WGSL struct fields, e.g. "dimM : i32, alpha : f32," (values passed in order to runProgram). */
  uniforms?: string;
  getUserCode(): string;
}

export type Uniform = { type: 'int32' | 'float32'; data: number[] };

export interface WebgpuBackendLike {
  runWebGPUProgram(program: WgslProgram, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
  device: { limits: Record<string, number>; features: { has(f: string): boolean } };
}

/** The same data under another shape (no copy; valid as a program input while `t` lives). */
export function view(t: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

export const int = (v: number): Uniform => ({ type: 'int32', data: [v] });
export const float = (v: number): Uniform => ({ type: 'float32', data: [v] });

/**
 * Throws, saying what to shrink, when a binding of `kernel` would exceed the device's
 * maxStorageBufferBindingSize (tfjs binds whole buffers, so the bind itself would fail with no context).
 */
export function checkBindings(kernel: string, tensors: tf.TensorInfo[], limits: Record<string, number>): void {
  const limit = limits.maxStorageBufferBindingSize;
  for (const t of tensors) {
    const bytes = t.shape.reduce((p, d) => p * d, 1) * 4;
    if (limit && bytes > limit)
      throw new Error(
        `${kernel}: a [${t.shape}] tensor takes ${bytes} bytes, over this adapter's maxStorageBufferBindingSize of ${limit}; ` +
          'use a shorter input or a smaller batch, or another backend',
      );
  }
}

/** Splits `n` workgroups over y and z when it exceeds the per-dimension limit: [y, z]. */
export function gridYZ(n: number, limits: Record<string, number>): [number, number] {
  const max = limits.maxComputeWorkgroupsPerDimension || 65535;
  return n <= max ? [n, 1] : [max, Math.ceil(n / max)];
}
