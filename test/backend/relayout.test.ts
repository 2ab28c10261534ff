// The native weight re-layout (audiox_blas.c `relayout`, used on tensorflow to load weights straight into
// their derived layout) against a naive reference on edge shapes, and SafetensorsFile.readViews against
// re-laying with tf ops, bit for bit, on whichever backend runs the suite (AUDIOX_BACKEND=tensorflow
// exercises the zero-copy tensor path).
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBlasAddon } from '../../src/backend/blas.ts';
import { f16ToF32, f32ToF16, halfBitsTensor, relaid, SafetensorsFile, writeSafetensors, type LayoutView } from '../../src/io/safetensors.ts';

const addon = loadBlasAddon();

function table(): Float32Array {
  return f16ToF32(Uint16Array.from({ length: 65536 }, (_, i) => i));
}

/** dst of rows [r0, r0 + n) of a [rows, cols] array, transposed to [cols, n] when asked. */
function naive(src: ArrayLike<number>, cols: number, r0: number, n: number, transpose: boolean, widen: (v: number) => number): Float32Array {
  const out = new Float32Array(n * cols);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < cols; c++) out[transpose ? c * n + r : r * cols + c] = widen(src[(r0 + r) * cols + c]);
  }
  return out;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

const SHAPES: [number, number][] = [[1, 1], [1, 7], [7, 1], [63, 65], [64, 64], [130, 67], [3, 200]];

describe.skipIf(!addon)('native relayout (audiox_blas.c)', () => {
  const t = table();
  for (const [rows, cols] of SHAPES) {
    it(`[${rows}, ${cols}]: every row range, plain and transposed, f32 and f16, equals the naive reference`, () => {
      const f32 = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * 100);
      const f16 = f32ToF16(f32);
      const ranges: [number, number][] = [[0, rows], [0, Math.ceil(rows / 2)], [Math.floor(rows / 2), rows - Math.floor(rows / 2)], [rows - 1, 1]];
      for (const [r0, n] of ranges) {
        for (const tr of [false, true]) {
          const a = new Float32Array(n * cols);
          addon!.relayout(f32, a, cols, r0, n, tr, null);
          expect(bitsEqual(a, naive(f32, cols, r0, n, tr, (v) => v))).toBe(true);
          const b = new Float32Array(n * cols);
          addon!.relayout(f16, b, cols, r0, n, tr, t);
          expect(bitsEqual(b, naive(f16, cols, r0, n, tr, (h) => t[h]))).toBe(true);
        }
      }
    });
  }

  it('refuses ranges outside the arrays and a wrong table, writing nothing', () => {
    const src = new Float32Array(12);
    const dst = new Float32Array(12).fill(7);
    expect(() => addon!.relayout(src, dst, 4, 2, 2, false, null)).toThrow(/sizes exceed the given arrays/);
    expect(() => addon!.relayout(new Uint16Array(12), dst, 4, 0, 3, false, new Float32Array(10))).toThrow(/65536 floats/);
    expect(dst.every((v) => v === 7)).toBe(true);
  });
});

describe('SafetensorsFile.readViews', () => {
  it('gives the same bits as reading the tensor and re-laying it with tf ops (F16 and F32)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-views-'));
    const file = path.join(dir, 'w.safetensors');
    const w = Float32Array.from({ length: 9 * 70 }, (_, i) => Math.cos(i * 0.37) * 3);
    const h = f32ToF16(w);
    await writeSafetensors(file, [
      { name: 'h', dtype: 'F16', shape: [9, 70], bytes: () => new Uint8Array(h.buffer) },
      { name: 'f', dtype: 'F32', shape: [9, 70], bytes: () => new Uint8Array(w.buffer) },
      { name: 'b', dtype: 'F16', shape: [9], bytes: () => new Uint8Array(h.slice(0, 9).buffer) },
    ]);
    const views: LayoutView[] = [{ rows: [0, 3], transpose: true }, { rows: [3, 3], transpose: true }, { rows: [6, 3] }, {}];
    const n0 = tf.memory().numTensors;
    const f = SafetensorsFile.open(file);
    try {
      for (const key of ['h', 'f']) {
        const got = f.readViews(key, views);
        const full = f.read(key);
        const want = views.map((v) => relaid(full, v));
        got.forEach((g, i) => {
          expect(g.shape).toEqual(want[i].shape);
          expect(bitsEqual(g.dataSync() as Float32Array, want[i].dataSync() as Float32Array)).toBe(true);
        });
        tf.dispose([...got, full, ...want]);
      }
      const [b] = f.readViews('b', [{ rows: [2, 4] }]);
      expect(Array.from(b.dataSync())).toEqual(Array.from(f16ToF32(h.slice(2, 6))));
      b.dispose();
      expect(() => f.readViews('b', [{ transpose: true }])).toThrow(/transposed view needs a 2-D tensor/);
      expect(() => f.readViews('h', [{ rows: [8, 2] }])).toThrow(/outside|rows/);
    } finally {
      f.close();
    }
    expect(tf.memory().numTensors).toBe(n0);
  });
});

describe.skipIf(!(tf.getBackend() === 'wasm' && addon))('native reads on wasm (into the heap, and into host memory)', () => {
  it('read, readViews and readHostViews give the bits of JavaScript widening and re-laying, accounted and leak-free', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-views-'));
    const file = path.join(dir, 'w.safetensors');
    const [rows, cols] = [131, 67]; // edge tiles on both axes
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.61) * 40);
    const h = f32ToF16(w);
    await writeSafetensors(file, [
      { name: 'h', dtype: 'F16', shape: [rows, cols], bytes: () => new Uint8Array(h.buffer) },
      { name: 'f', dtype: 'F32', shape: [rows, cols], bytes: () => new Uint8Array(w.buffer) },
    ]);
    const views: LayoutView[] = [{ rows: [0, 44], transpose: true }, { rows: [44, 87], transpose: true }, { rows: [5, 9] }, { transpose: true }, {}];
    const hostBytes = () => (tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0;
    const n0 = tf.memory().numTensors;
    const b0 = tf.memory().numBytes;
    const h0 = hostBytes();
    const f = SafetensorsFile.open(file);
    try {
      for (const key of ['h', 'f']) {
        const js = f.readHost(key); // JavaScript widening (f16ToF32's table), no backend
        const want = views.map((v) => {
          const [r0, n] = v.rows ?? [0, rows];
          return { shape: v.transpose ? [cols, n] : [n, cols], data: naive(js.data, cols, r0, n, v.transpose ?? false, (x) => x) };
        });
        const full = f.read(key);
        expect(bitsEqual(full.dataSync() as Float32Array, js.data as Float32Array)).toBe(true);
        full.dispose();
        if (key === 'h') {
          // a streamed unit's f16 host copy, uploaded (halfBitsTensor), also scalars and 1-D
          for (const [bits, shape] of [[h, [rows, cols]], [h.subarray(0, 1), []], [h.subarray(3, 10), [7]]] as [Uint16Array, number[]][]) {
            const up = halfBitsTensor(bits, shape);
            expect(up.shape).toEqual(shape);
            expect(bitsEqual(up.dataSync() as Float32Array, f16ToF32(bits))).toBe(true);
            up.dispose();
          }
        }
        const heap = f.readViews(key, views);
        const host = f.readHostViews(key, views);
        expect(host).not.toBeNull();
        const elements = want.reduce((n, v) => n + v.data.length, 0);
        expect(tf.memory().numBytes - b0).toBe(2 * elements * 4);
        expect(hostBytes() - h0).toBe(elements * 4); // the host views only
        for (const got of [heap, host!]) {
          got.forEach((g, i) => {
            expect(g.shape).toEqual(want[i].shape);
            expect(bitsEqual(g.dataSync() as Float32Array, want[i].data)).toBe(true);
          });
        }
        expect(() => tf.add(host![0], 1)).toThrow(/host-resident weight/); // host tensors stay off the heap
        tf.dispose([...heap, ...host!]);
      }
      expect(() => f.readHostViews('h', [{ rows: [130, 2] }])).toThrow(/outside|rows/);
    } finally {
      f.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(tf.memory().numTensors).toBe(n0);
    expect(tf.memory().numBytes).toBe(b0);
    expect(hostBytes()).toBe(h0);
  });
});
