// The addon's transformer passes (DIVIDED_ATTENTION, LAYER_NORM, GELU on wasm; src/backend/blas-passes.ts)
// and the tf-ops fallbacks of nn/functional.ts against naive per-element references, on edge shapes: odd head
// widths, one frame or one position, groups on both sides of the native CBLAS threshold (32 tokens).
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { activeBackend, wasmBackendDetails } from '../../src/backend/index.ts';
import { blasActive } from '../../src/backend/blas.ts';
import { dividedAttention, gelu, layerNorm, type DividedAxis } from '../../src/nn/functional.ts';
import { DIVIDED_ATTENTION, GELU, kernelRegistered, LAYER_NORM } from '../../src/nn/kernels.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

const on = activeBackend().name === 'wasm' && blasActive();
const why = on ? '' : `native BLAS kernels are off (${wasmBackendDetails()?.blas.reason ?? 'backend is not wasm'})`;

/** Per query, per key, in float64: the definition in kernels.ts. */
function naiveDivided(qkv: Float32Array, n: number, frames: number, positions: number, heads: number, hd: number, axis: DividedAxis, scale: number): Float32Array {
  const L = 1 + frames * positions;
  const D = heads * hd;
  const out = new Float32Array(n * L * D);
  const at = (b: number, t: number, part: number, h: number, c: number) => qkv[(b * L + t) * 3 * D + part * D + h * hd + c];
  for (let b = 0; b < n; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < L; t++) {
        let keys: number[];
        if (t === 0) keys = [...Array(L).keys()];
        else {
          const f = Math.floor((t - 1) / positions);
          const p = (t - 1) % positions;
          keys = [0, ...(axis === 'time' ? [...Array(frames).keys()].map((g) => 1 + g * positions + p) : [...Array(positions).keys()].map((g) => 1 + f * positions + g))];
        }
        const s = keys.map((j) => {
          let acc = 0;
          for (let c = 0; c < hd; c++) acc += at(b, t, 0, h, c) * at(b, j, 1, h, c);
          return acc * scale;
        });
        const mx = Math.max(...s);
        const e = s.map((v) => Math.exp(v - mx));
        const sum = e.reduce((a, v) => a + v, 0);
        for (let c = 0; c < hd; c++) {
          let acc = 0;
          keys.forEach((j, i) => (acc += (e[i] / sum) * at(b, j, 2, h, c)));
          out[(b * L + t) * D + h * hd + c] = acc;
        }
      }
    }
  }
  return out;
}

/** erf in float64: its Taylor series below 4 (error < 1e-9 there), ±1 beyond (erfc(4) ≈ 1.5e-8). */
function erf64(x: number): number {
  const a = Math.abs(x);
  if (a >= 4) return Math.sign(x);
  let term = a;
  let sum = a;
  for (let k = 1; k < 100; k++) {
    term *= (-a * a) / k;
    sum += term / (2 * k + 1);
  }
  return (Math.sign(x) * 2 * sum) / Math.sqrt(Math.PI);
}

/** Runs `f` with `name` unregistered for wasm (the tf-ops fallback), then restores the kernel. */
function withoutKernel<T>(name: string, f: () => T): T {
  const k = tf.getKernel(name, 'wasm');
  if (k) tf.unregisterKernel(name, 'wasm');
  try {
    return f();
  } finally {
    if (k) tf.registerKernel(k);
  }
}

const CASES: [number, number, number, number, number, DividedAxis][] = [
  // n, frames, positions, heads, headDim, axis
  [2, 3, 4, 3, 5, 'time'],
  [2, 3, 4, 3, 5, 'space'],
  [1, 1, 5, 2, 4, 'time'],
  [1, 4, 1, 2, 4, 'space'],
  [1, 2, 40, 2, 7, 'space'], // groups of 40: the CBLAS path
  [2, 33, 2, 1, 3, 'time'], // groups of 33 with a row stride: the CBLAS path
  [1, 8, 9, 2, 64, 'time'],
];

describe.skipIf(!on)(`native transformer passes${why ? ` (skipped: ${why})` : ''}`, () => {
  it('are registered for wasm', () => {
    for (const k of [DIVIDED_ATTENTION, LAYER_NORM, GELU]) expect(kernelRegistered(k)).toBe(true);
  });

  it.each(CASES)('dividedAttention n=%i F=%i P=%i H=%i hd=%i %s: native and tf fallback vs naive', async (n, frames, positions, heads, hd, axis) => {
    const L = 1 + frames * positions;
    const qkv = tf.randomNormal([n, L, 3 * heads * hd], 0, 1.5, 'float32', 11) as tf.Tensor3D;
    const scale = hd ** -0.5;
    const ref = tf.tensor3d(naiveDivided(qkv.dataSync() as Float32Array, n, frames, positions, heads, hd, axis, scale), [n, L, heads * hd]);
    const o = { heads, frames, positions, axis };
    const y = dividedAttention(qkv, o);
    const fallback = withoutKernel(DIVIDED_ATTENTION, () => dividedAttention(qkv, o));
    expect(y.shape).toEqual([n, L, heads * hd]);
    await expectClose(y, ref, 1e-5, 1e-4);
    await expectClose(fallback, ref, 1e-5, 1e-4);
    tf.dispose([qkv, ref, y, fallback]);
  });

  it.each([
    [[3, 7], true],
    [[2, 5, 1], true],
    [[4, 768], false],
    [[1, 33], true],
  ] as [number[], boolean][])('layerNorm %j (affine %s) vs naive', async (shape, affine) => {
    const ch = shape.at(-1)!;
    const x = tf.randomNormal(shape, 3, 2, 'float32', 12);
    const w = affine ? tf.randomNormal([ch], 1, 0.5, 'float32', 13) : null;
    const b = affine ? tf.randomNormal([ch], 0, 0.5, 'float32', 14) : null;
    const eps = 1e-6;
    const xs = x.dataSync();
    const [ws, bs] = [w?.dataSync(), b?.dataSync()];
    const ref = new Float32Array(xs.length);
    for (let r = 0; r < xs.length / ch; r++) {
      const row = Array.from(xs.subarray(r * ch, (r + 1) * ch));
      const mean = row.reduce((a, v) => a + v, 0) / ch;
      const v = row.reduce((a, t) => a + (t - mean) ** 2, 0) / ch;
      row.forEach((t, c) => (ref[r * ch + c] = ((t - mean) / Math.sqrt(v + eps)) * (ws ? ws[c] : 1) + (bs ? bs[c] : 0)));
    }
    const y = layerNorm(x, w, b, eps);
    const fallback = withoutKernel(LAYER_NORM, () => layerNorm(x, w, b, eps));
    await expectClose(y, tf.tensor(ref, shape), 1e-5, 1e-4);
    await expectClose(fallback, tf.tensor(ref, shape), 1e-5, 1e-4);
    tf.dispose([x, y, fallback]);
    if (w) tf.dispose([w, b!]);
  });

  it.each([[[1]], [[7]], [[3, 9]], [[2, 40000]]] as [number[]][])('gelu %j vs naive (float64 erf)', async (shape) => {
    const x = tf.randomNormal(shape, 0, 3, 'float32', 15);
    const xs = x.dataSync();
    const ref = tf.tensor(Float32Array.from(xs, (v) => 0.5 * v * (1 + erf64(v / Math.SQRT2))), shape);
    const y = gelu(x);
    await expectClose(y, ref, 2e-6, 1e-5);
    const big = tf.tensor1d([-12, -5, -0.001, 0, 0.001, 5, 12]);
    await expectClose(gelu(big), tf.tensor1d([-12, -5, -0.001, 0, 0.001, 5, 12].map((v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)))), 2e-6, 1e-5);
    tf.dispose([x, ref, y, big]);
  });

  it('dividedAttention does not leak', async () => {
    const qkv = tf.randomNormal([1, 1 + 2 * 40, 3 * 2 * 4], 0, 1, 'float32', 16) as tf.Tensor3D;
    await expectNoLeak(() => dividedAttention(qkv, { heads: 2, frames: 2, positions: 40, axis: 'space' }).dispose());
    qkv.dispose();
  });
});

afterAll(() => tf.disposeVariables());
