// The opt-in bf16 GEMM of the native addon (AUDIOX_GEMM=bf16: operands rounded to bfloat16, fp32
// accumulation on AMX) against a naive reference on the same rounded operands, on edge shapes (not
// multiples of the 16×32 tiles, batch 1 and 2, broadcast operands, both transposes), and through tfjs.
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { blasActive, loadBlasAddon, setGemmPrecision } from '../../src/backend/blas.ts';

const addon = loadBlasAddon();
const amx = addon !== null && addon.setGemmPrecision(1) === 1;
addon?.setGemmPrecision(0);

const word = new Float32Array(1);
const bits = new Uint32Array(word.buffer);
/** Round to nearest even bfloat16, as the CPU's conversion does. */
function bf16(x: number): number {
  word[0] = x;
  bits[0] = (bits[0] + 0x7fff + ((bits[0] >>> 16) & 1)) & 0xffff0000;
  return word[0];
}

function rand(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5);
}

/** C[i] = op(A[i])·op(B[i]) in float64, over the operands rounded by `f` (once, up front). */
function naive(a0: Float32Array, b0: Float32Array, batch: number, m: number, n: number, k: number, ta: boolean, tb: boolean, sa: number, sb: number, f: (v: number) => number): Float64Array {
  const a = Float64Array.from(a0, f);
  const b = Float64Array.from(b0, f);
  const c = new Float64Array(batch * m * n);
  for (let q = 0; q < batch; q++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[q * sa + (ta ? p * m + i : i * k + p)] * b[q * sb + (tb ? j * k + p : p * n + j)];
        c[(q * m + i) * n + j] = s;
      }
    }
  }
  return c;
}

const maxDiff = (x: ArrayLike<number>, y: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i]));
  return d;
};

const SHAPES: [number, number, number][] = [[1, 1, 1], [17, 33, 65], [32, 32, 32], [5, 100, 7], [64, 48, 31], [100, 3, 200], [33, 65, 129]];

describe.skipIf(!amx)('bf16 GEMM on AMX (audiox_blas.c)', () => {
  afterEach(() => addon!.setGemmPrecision(0));

  for (const [m, n, k] of SHAPES) {
    for (const batch of [1, 2]) {
      it(`[${m}×${k}]·[${k}×${n}], batch ${batch}, every transpose and broadcast: equals the bf16-rounded reference`, () => {
        for (const ta of [false, true]) {
          for (const tb of [false, true]) {
            for (const [sa, sb] of batch === 1 ? [[0, 0]] : [[m * k, k * n], [0, k * n], [m * k, 0]]) {
              const a = rand(batch * m * k, m + 7 * k);
              const b = rand(batch * k * n, n + 3 * k);
              const c = new Float32Array(batch * m * n).fill(Number.NaN);
              addon!.setGemmPrecision(1);
              addon!.gemm(a, b, c, batch, m, n, k, ta, tb, sa, sb);
              const ref = naive(a, b, batch, m, n, k, ta, tb, sa, sb, bf16);
              // Only the fp32 accumulation order differs: products of bf16 values are exact in fp32.
              expect(maxDiff(c, ref), `ta=${ta} tb=${tb} sa=${sa} sb=${sb}`).toBeLessThanOrEqual(2e-7 * k + 1e-7);
            }
          }
        }
      });
    }
  }

  it('is reduced precision, not fp32 under another name: it differs from sgemm by about 2⁻⁹ relative', () => {
    const [m, n, k] = [40, 50, 300];
    const a = rand(m * k, 1), b = rand(k * n, 2);
    const exact = naive(a, b, 1, m, n, k, false, false, 0, 0, (v) => v);
    const run = (p: 0 | 1): Float32Array => {
      const c = new Float32Array(m * n);
      addon!.setGemmPrecision(p);
      addon!.gemm(a, b, c, 1, m, n, k, false, false, 0, 0);
      return c;
    };
    const e32 = maxDiff(run(0), exact);
    const e16 = maxDiff(run(1), exact);
    expect(e32).toBeLessThan(1e-5);
    expect(e16).toBeGreaterThan(100 * e32);
    expect(e16).toBeLessThan(0.05);
  });

  it('applies the fused bias and activation after the bf16 product', () => {
    const [m, n, k] = [19, 21, 45];
    const a = rand(m * k, 5), b = rand(k * n, 6), bias = rand(n, 7);
    const c = new Float32Array(m * n);
    addon!.setGemmPrecision(1);
    addon!.gemm(a, b, c, 1, m, n, k, false, true, 0, 0, bias, 1 /* relu */);
    const ref = naive(a, b, 1, m, n, k, false, true, 0, 0, bf16).map((v, i) => Math.max(0, v + bias[i % n]));
    expect(maxDiff(c, ref)).toBeLessThan(2e-7 * k + 1e-6);
  });

  // Defined only where tfjs' matMul runs the addon's kernels (wasm with the addon on).
  if (tf.getBackend() === 'wasm' && blasActive()) it('tf.matMul on wasm goes through it when selected, and back to fp32 after', () => {
    const a = tf.tensor2d(rand(37 * 70, 8), [37, 70]);
    const b = tf.tensor2d(rand(70 * 45, 9), [70, 45]);
    try {
      const ref = naive(a.dataSync() as Float32Array, b.dataSync() as Float32Array, 1, 37, 45, 70, false, false, 0, 0, bf16);
      setGemmPrecision('bf16');
      const y16 = tf.tidy(() => tf.matMul(a, b).dataSync());
      setGemmPrecision('fp32');
      const y32 = tf.tidy(() => tf.matMul(a, b).dataSync());
      expect(maxDiff(y16, ref)).toBeLessThan(2e-7 * 70 + 1e-7);
      expect(maxDiff(y32, ref)).toBeGreaterThan(maxDiff(y16, ref));
    } finally {
      tf.dispose([a, b]);
    }
  });
});

describe('GEMM precision selection', () => {
  it('refuses an unknown precision by name', () => {
    expect(() => setGemmPrecision('fp8' as 'fp32')).toThrow(/unknown GEMM precision "fp8": use fp32 or bf16/);
  });
  if (amx) {
    it('accepts bf16 where the CPU has AMX-BF16, and fp32 again', () => {
      setGemmPrecision('bf16');
      setGemmPrecision('fp32');
    });
  } else {
    it('refuses bf16 without the addon or without AMX-BF16, saying what is needed', () => {
      expect(() => setGemmPrecision('bf16')).toThrow(addon ? /AMX-BF16/ : /needs the native BLAS addon/);
    });
  }
});
