// Host-resident tensors (src/backend/host-tensors.ts, the TO_HOST kernel): float32 weights kept outside the
// wasm heap, read in place by the native BLAS products and 1-D convolutions, refused by every other kernel.
// Compared bit for bit with the same ops on ordinary heap tensors, on edge shapes; leaks and accounting.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { kernelRegistered, TO_HOST } from '../../src/nn/kernels.ts';
import { backendBytes } from '../../src/nn/runtime.ts';

const available = tf.getBackend() === 'wasm' && kernelRegistered(TO_HOST);
const toHost = (t: tf.Tensor) => tf.engine().runKernel(TO_HOST, { x: t }) as tf.Tensor;
const hostBytes = () => (tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0;

describe.skipIf(!available)('host-resident tensors (wasm + native BLAS)', () => {
  it('hold the values outside the backend budget and free them on dispose', () => {
    const before = { n: tf.memory().numTensors, bytes: backendBytes(), host: hostBytes() };
    const w = tf.randomNormal([37, 53], 0, 1, 'float32', 1);
    const h = toHost(w);
    expect(h.shape).toEqual([37, 53]);
    expect(Array.from(h.dataSync())).toEqual(Array.from(w.dataSync()));
    expect(hostBytes() - before.host).toBe(37 * 53 * 4);
    expect(backendBytes() - before.bytes).toBe(37 * 53 * 4); // only w's heap copy counts
    w.dispose();
    expect(backendBytes()).toBe(before.bytes);
    const r = h.reshape([53, 37]); // a view of the same data
    expect(Array.from(r.dataSync())).toEqual(Array.from(h.dataSync()));
    r.dispose();
    h.dispose();
    expect(hostBytes()).toBe(before.host);
    expect(tf.memory().numTensors).toBe(before.n);
  });

  it.each([
    [1, 1, 1],
    [5, 17, 3],
    [64, 96, 128],
    [300, 33, 7],
  ])('matMul(x [%i×%i], host W [·×%i]) equals the heap product exactly, also fused with bias and activation', (m, k, n) => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.randomNormal([m, k], 0, 1, 'float32', 2);
      const w = tf.randomNormal([k, n], 0, 1, 'float32', 3);
      const b = tf.randomNormal([n], 0, 1, 'float32', 4);
      const h = toHost(w);
      expect(Array.from(tf.matMul(x, h).dataSync())).toEqual(Array.from(tf.matMul(x, w).dataSync()));
      const wt = tf.transpose(w);
      const ht = toHost(wt);
      expect(Array.from(tf.matMul(x, ht, false, true).dataSync())).toEqual(Array.from(tf.matMul(x, wt, false, true).dataSync()));
      const fused = (ww: tf.Tensor) => tf.fused.matMul({ a: x as tf.Tensor2D, b: ww as tf.Tensor2D, bias: b, activation: 'relu' });
      expect(Array.from(fused(h).dataSync())).toEqual(Array.from(fused(w).dataSync()));
      // a batch of inputs against one broadcast weight
      const x3 = tf.randomNormal([2, m, k], 0, 1, 'float32', 5);
      expect(Array.from(tf.matMul(x3, h.reshape([1, k, n])).dataSync())).toEqual(
        Array.from(tf.matMul(x3, w.reshape([1, k, n])).dataSync()),
      );
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([
    [1, 9, 3, 4, 1, 0],
    [2, 20, 5, 7, 3, 1],
    [1, 33, 16, 8, 3, 2],
  ])('conv1d(x [%i, %i, %i], host filter → %i channels, k %i, pad %i) equals the heap convolution exactly', (b, l, cin, cout, kw, pad) => {
    tf.tidy(() => {
      const x = tf.randomNormal([b, l, cin], 0, 1, 'float32', 6) as tf.Tensor3D;
      const f = tf.randomNormal([kw, cin, cout], 0, 1, 'float32', 7) as tf.Tensor3D;
      const h = toHost(f) as tf.Tensor3D;
      const padding = pad ? ([[0, 0], [0, 0], [pad, pad], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]) : 'valid';
      const conv = (ff: tf.Tensor3D) => tf.conv1d(x, ff, 1, padding as 'valid');
      expect(Array.from(conv(h).dataSync())).toEqual(Array.from(conv(f).dataSync()));
    });
  });

  it('is refused by every other kernel with an error naming it, and the backend keeps working', () => {
    const before = tf.memory().numTensors;
    const w = tf.randomNormal([4, 6], 0, 1, 'float32', 8);
    const h = toHost(w);
    tf.tidy(() => {
      expect(() => tf.add(h, 1)).toThrow(/Add: input "a" \[4,6\] is a host-resident weight/);
      expect(() => tf.transpose(h)).toThrow(/Transpose: .*host-resident weight.*AUDIOX_STREAM_WEIGHTS=1/);
      // a product the native kernel does not plan (a fused prelu) falls back to the stock kernel, which refuses it
      const x = tf.ones([2, 4]) as tf.Tensor2D;
      expect(() => tf.fused.matMul({ a: x, b: h as tf.Tensor2D, activation: 'prelu', preluActivationWeights: tf.ones([6]) })).toThrow(
        /_FusedMatMul: input "b" \[1,4,6\] is a host-resident weight/,
      );
      // as the first operand it is read in place as well
      expect(Array.from(tf.matMul(h, tf.ones([6, 2])).dataSync())).toEqual(Array.from(tf.matMul(w, tf.ones([6, 2])).dataSync()));
    });
    tf.dispose([w, h]);
    expect(tf.tidy(() => tf.add(tf.ones([2]), 1).dataSync()[0])).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses anything but float32', () => {
    expect(() => toHost(tf.ones([2], 'int32'))).toThrow(/only float32 tensors can be host-resident, got int32/);
  });
});
