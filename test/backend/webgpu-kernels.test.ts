// Our WGSL kernels (src/backend/webgpu-*.ts) against naive float64 references on edge shapes, on the
// adapter Dawn finds (llvmpipe here). Skipped with the reason when the optional packages or an adapter
// are missing. Switches this file's tfjs to the webgpu backend and back.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeBackends } from '../../src/backend/index.ts';
import { planKeyBlock } from '../../src/backend/webgpu-attention.ts';
import { checkBindings, gridYZ } from '../../src/backend/webgpu-program.ts';
import * as F from '../../src/nn/functional.ts';

const installed = probeBackends().find((p) => p.name === 'webgpu')!;
let why = installed.available ? '' : installed.reason;
let adapter = false;
if (installed.available) {
  try {
    const { probeWebgpuAdapter } = await import('../../src/backend/webgpu.ts');
    adapter = (await probeWebgpuAdapter()) !== null;
    if (!adapter) why = 'no WebGPU adapter found';
  } catch (e) {
    why = `the webgpu package failed to load: ${(e as Error).message}`;
  }
}

let seed = 7;
function rand(shape: number[]): { t: tf.Tensor; v: Float32Array } {
  const v = new Float32Array(shape.reduce((p, d) => p * d, 1));
  for (let i = 0; i < v.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    v[i] = seed / 1073741824 - 1;
  }
  return { t: tf.tensor(v, shape), v };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** C[b] = op(A[b])·op(B[b]) in float64; a batch of 1 on one side is shared. */
function naiveGemm(a: Float32Array, b: Float32Array, batch: [number, number], m: number, n: number, k: number, ta: boolean, tb: boolean): Float64Array {
  const nb = Math.max(...batch);
  const c = new Float64Array(nb * m * n);
  for (let z = 0; z < nb; z++) {
    const ao = (batch[0] === 1 ? 0 : z) * m * k;
    const bo = (batch[1] === 1 ? 0 : z) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ao + (ta ? p * m + i : i * k + p)] * b[bo + (tb ? j * k + p : p * n + j)];
        c[(z * m + i) * n + j] = s;
      }
  }
  return c;
}

/** softmax(q·kᵀ·scale + mask)·v in float64, kv head = h / (H / Hkv); mask given as a full [B, H, Lq, Lk] function. */
function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, [b, h, hkv, lq, lk, d]: number[], scale: number, mask?: (bi: number, hi: number, i: number, j: number) => number): Float64Array {
  const out = new Float64Array(b * h * lq * d);
  const r = h / hkv;
  for (let bi = 0; bi < b; bi++)
    for (let hi = 0; hi < h; hi++) {
      const kv = (bi * hkv + Math.floor(hi / r)) * lk * d;
      for (let i = 0; i < lq; i++) {
        const qo = ((bi * h + hi) * lq + i) * d;
        const s = new Float64Array(lk);
        for (let j = 0; j < lk; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c] * k[kv + j * d + c];
          s[j] = dot * scale + (mask ? mask(bi, hi, i, j) : 0);
        }
        const mx = Math.max(...s);
        let sum = 0;
        for (let j = 0; j < lk; j++) sum += (s[j] = Math.exp(s[j] - mx));
        for (let j = 0; j < lk; j++) for (let c = 0; c < d; c++) out[qo + c] += (s[j] / sum) * v[kv + j * d + c];
      }
    }
  return out;
}

// Planning with the adapter's limits: pure functions, checked without an adapter.
describe('WebGPU kernel planning', () => {
  it('refuses a binding over maxStorageBufferBindingSize with what to shrink', () => {
    const t = { dataId: {}, shape: [1024, 1024], dtype: 'float32' as const };
    expect(() => checkBindings('GEMM', [t], { maxStorageBufferBindingSize: 4 * 1024 * 1024 })).not.toThrow();
    expect(() => checkBindings('GEMM', [t], { maxStorageBufferBindingSize: 4 * 1024 * 1024 - 4 })).toThrow(
      /GEMM: a \[1024,1024\] tensor takes 4194304 bytes, over this adapter's maxStorageBufferBindingSize of 4194300; use a shorter input/,
    );
  });
  it('splits workgroups over y and z past maxComputeWorkgroupsPerDimension', () => {
    expect(gridYZ(100, { maxComputeWorkgroupsPerDimension: 65535 })).toEqual([100, 1]);
    expect(gridYZ(70000, { maxComputeWorkgroupsPerDimension: 65535 })).toEqual([65535, 2]);
    expect(gridYZ(7, { maxComputeWorkgroupsPerDimension: 3 })).toEqual([3, 3]);
  });
  it('sizes key blocks to the workgroup storage', () => {
    expect(planKeyBlock(64, 1000, 16384)).toBe(32);
    expect(planKeyBlock(128, 1000, 16384)).toBe(16);
    expect(planKeyBlock(64, 5, 16384)).toBe(5);
    expect(planKeyBlock(4096, 10, 16384)).toBeNull();
  });
});

describe.skipIf(!adapter)(`WebGPU kernels${adapter ? '' : ` (skipped: ${why})`}`, () => {
  let previous = '';
  let gemmDispatches: () => number = () => 0;
  let registerWebgpuGemm: () => boolean = () => false;
  let attentionDispatches: () => number = () => 0;
  let layerNormDispatches: () => number = () => 0;
  beforeAll(async () => {
    previous = tf.getBackend();
    const { initWebgpu } = await import('../../src/backend/webgpu.ts');
    await initWebgpu();
    ({ gemmDispatches, registerWebgpuGemm } = await import('../../src/backend/webgpu-gemm.ts'));
    expect(registerWebgpuGemm()).toBe(true);
    const att = await import('../../src/backend/webgpu-attention.ts');
    att.registerWebgpuAttention();
    attentionDispatches = att.attentionDispatches;
    const ln = await import('../../src/backend/webgpu-layernorm.ts');
    ln.registerWebgpuLayerNorm();
    layerNormDispatches = ln.layerNormDispatches;
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  describe('GEMM (BatchMatMul)', () => {
    // Sizes off the 64/16 tiles, single rows/columns, K shorter than a K tile, batch 1 and 2, one side shared;
    // transposes change which axis is contiguous, so which operands take vec4 loads.
    const cases: [number, number, number, number, [number, number]][] = [
      // [m, n, k, _, [batchA, batchB]]
      [1, 1, 1, 0, [1, 1]],
      [1, 70, 33, 0, [1, 1]],
      [17, 5, 3, 0, [2, 2]],
      [65, 63, 130, 0, [2, 1]],
      [130, 67, 17, 0, [1, 2]],
      [16, 64, 16, 0, [2, 2]],
      // Contiguous axes of multiples of 4 (vec4 loads) but not of the tiles.
      [20, 12, 36, 0, [2, 1]],
      [3, 8, 40, 0, [1, 1]],
      [68, 132, 44, 0, [2, 2]],
    ];
    for (const [m, n, k, , batch] of cases)
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        it(`m=${m} n=${n} k=${k} batch=${batch} transposeA=${ta} transposeB=${tb}`, async () => {
          const a = rand([batch[0], ...(ta ? [k, m] : [m, k])]);
          const b = rand([batch[1], ...(tb ? [n, k] : [k, n])]);
          const before = tf.memory().numTensors;
          const calls = gemmDispatches();
          const c = tf.matMul(a.t, b.t, ta, tb);
          expect(gemmDispatches()).toBe(calls + 1);
          expect(c.shape).toEqual([Math.max(...batch), m, n]);
          const diff = maxAbsDiff(await c.data(), naiveGemm(a.v, b.v, batch, m, n, k, ta, tb));
          c.dispose();
          expect(tf.memory().numTensors).toBe(before);
          a.t.dispose();
          b.t.dispose();
          expect(diff).toBeLessThan(1e-4 * Math.sqrt(k) + 1e-6);
        });
      }

    it('keeps rank-4 batch shapes and broadcasts a rank-2 operand', async () => {
      const a = rand([2, 3, 5, 7]);
      const b = rand([7, 9]);
      const c = tf.matMul(a.t, b.t);
      expect(c.shape).toEqual([2, 3, 5, 9]);
      const diff = maxAbsDiff(await c.data(), naiveGemm(a.v, b.v, [6, 1], 5, 9, 7, false, false));
      tf.dispose([a.t, b.t, c]);
      expect(diff).toBeLessThan(1e-5);
    });

    it('folds bias and activation of _FusedMatMul', async () => {
      const a = rand([19, 21]);
      const b = rand([23, 21]);
      const bias = rand([23]);
      const ref = naiveGemm(a.v, b.v, [1, 1], 19, 23, 21, false, true);
      for (const [activation, f] of [
        ['linear', (v: number) => v],
        ['relu', (v: number) => Math.max(v, 0)],
        ['sigmoid', (v: number) => 1 / (1 + Math.exp(-v))],
        ['leakyrelu', (v: number) => (v >= 0 ? v : 0.3 * v)],
      ] as const) {
        const c = tf.fused.matMul({ a: a.t, b: b.t, transposeB: true, bias: bias.t, activation, leakyreluAlpha: 0.3 });
        const want = ref.map((v, i) => f(v + bias.v[i % 23]));
        expect(maxAbsDiff(await c.data(), want), activation).toBeLessThan(1e-5);
        c.dispose();
      }
      tf.dispose([a.t, b.t, bias.t]);
    });

    it('leaves what it does not cover to the stock kernel (int32, prelu)', async () => {
      const ai = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
      const calls = gemmDispatches();
      const ci = tf.matMul(ai, ai);
      expect(Array.from(await ci.data())).toEqual([7, 10, 15, 22]);
      const a = tf.tensor2d([1, -2], [1, 2]);
      const w = tf.tensor2d([1, 0, 0, 1], [2, 2]);
      const alpha = tf.tensor1d([0.5, 0.25]);
      const c = tf.fused.matMul({ a, b: w, activation: 'prelu', preluActivationWeights: alpha });
      expect(Array.from(await c.data())).toEqual([1, -0.5]);
      expect(gemmDispatches()).toBe(calls);
      tf.dispose([ai, ci, a, w, alpha, c]);
    });
  });

  describe('fused attention (F.attention)', () => {
    // [B, H, Hkv, Lq, Lk, D]: batch 1 and 2, grouped heads, one query / one key, rows and keys off the
    // 64-row and 32-key blocks, a long key sequence.
    const cases: number[][] = [
      [1, 1, 1, 1, 1, 8],
      [2, 4, 2, 5, 33, 16],
      [1, 4, 1, 70, 7, 8],
      [2, 2, 2, 17, 130, 64],
      [1, 3, 3, 1, 300, 32],
    ];
    for (const shape of cases) {
      const [b, h, hkv, lq, lk, d] = shape;
      it(`B=${b} H=${h} Hkv=${hkv} Lq=${lq} Lk=${lk} D=${d}`, async () => {
        const q = rand([b, h, lq, d]);
        const k = rand([b, hkv, lk, d]);
        const v = rand([b, hkv, lk, d]);
        const before = tf.memory().numTensors;
        const calls = attentionDispatches();
        const o = F.attention(q.t as tf.Tensor4D, k.t as tf.Tensor4D, v.t as tf.Tensor4D);
        expect(attentionDispatches()).toBe(calls + 1);
        expect(o.shape).toEqual([b, h, lq, d]);
        const diff = maxAbsDiff(await o.data(), naiveAttention(q.v, k.v, v.v, shape, 1 / Math.sqrt(d)));
        o.dispose();
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([q.t, k.t, v.t]);
        expect(diff).toBeLessThan(1e-5);
      });
    }

    it('adds a broadcast additive mask and honours the scale', async () => {
      const [b, h, lq, lk, d] = [2, 2, 9, 40, 8];
      const q = rand([b, h, lq, d]);
      const k = rand([b, h, lk, d]);
      const v = rand([b, h, lk, d]);
      const bias = rand([1, h, lq, lk]); // T5's relative position bias: shared over the batch
      const pad = tf.tensor(Array.from({ length: b * lk }, (_, i) => (i % lk >= 30 + (i >= lk ? 5 : 0) ? -1e9 : 0)), [b, 1, 1, lk]);
      const mask = bias.t.add(pad);
      const padV = (await pad.data()) as Float32Array;
      const o = F.attention(q.t as tf.Tensor4D, k.t as tf.Tensor4D, v.t as tf.Tensor4D, { mask, scale: 1 });
      const want = naiveAttention(q.v, k.v, v.v, [b, h, h, lq, lk, d], 1, (bi, hi, i, j) => bias.v[(hi * lq + i) * lk + j] + padV[bi * lk + j]);
      expect(maxAbsDiff(await o.data(), want)).toBeLessThan(1e-5);
      tf.dispose([q.t, k.t, v.t, bias.t, pad, mask, o]);
    });

    it('fails with a clear error on a mask that does not broadcast', () => {
      const q = tf.zeros([1, 2, 3, 4]) as tf.Tensor4D;
      const mask = tf.zeros([1, 3, 3, 3]);
      expect(() => F.attention(q, q, q, { mask })).toThrow(/mask shape \[1,3,3,3\] does not broadcast to \[1,2,3,3\]/);
      tf.dispose([q, mask]);
    });
  });

  describe('fused layer norm (F.layerNorm)', () => {
    function naiveLayerNorm(x: Float32Array, cols: number, w: Float32Array | null, b: Float32Array | null, eps: number): Float64Array {
      const y = new Float64Array(x.length);
      for (let r = 0; r < x.length / cols; r++) {
        let mean = 0;
        for (let c = 0; c < cols; c++) mean += x[r * cols + c] / cols;
        let v = 0;
        for (let c = 0; c < cols; c++) v += (x[r * cols + c] - mean) ** 2 / cols;
        for (let c = 0; c < cols; c++) y[r * cols + c] = ((x[r * cols + c] - mean) / Math.sqrt(v + eps)) * (w ? w[c] : 1) + (b ? b[c] : 0);
      }
      return y;
    }
    // Rows of one value, fewer values than the 64 invocations, off-multiples, a wide row; batch 1 and 2.
    for (const shape of [[1, 1], [2, 3, 5], [1, 7, 64], [2, 37, 130], [3, 1536]])
      for (const affine of [false, true]) {
        it(`shape [${shape}]${affine ? ' with weight and bias' : ''}`, async () => {
          const cols = shape.at(-1)!;
          // An offset of 100 checks the two-pass variance (one-pass E[x²] − E[x]² loses digits).
          const x = rand(shape);
          const xs = x.t.add(100);
          const w = affine ? rand([cols]) : null;
          const b = affine ? rand([cols]) : null;
          const before = tf.memory().numTensors;
          const calls = layerNormDispatches();
          const y = F.layerNorm(xs, w?.t ?? null, b?.t ?? null, 1e-5);
          expect(layerNormDispatches()).toBe(calls + 1);
          expect(y.shape).toEqual(shape);
          const want = naiveLayerNorm((await xs.data()) as Float32Array, cols, w?.v ?? null, b?.v ?? null, 1e-5);
          const diff = maxAbsDiff(await y.data(), want);
          y.dispose();
          expect(tf.memory().numTensors).toBe(before);
          tf.dispose([x.t, xs, w?.t, b?.t].filter((t): t is tf.Tensor => !!t));
          expect(diff).toBeLessThan(1e-4);
        });
      }

    it('fails with a clear error on a weight of the wrong size', () => {
      const x = tf.zeros([2, 4]);
      const w = tf.ones([3]);
      expect(() => F.layerNorm(x, w, null)).toThrow(/weight must be float32 with the 4 values of x's last axis, got \[3\]/);
      tf.dispose([x, w]);
    });
  });
});
