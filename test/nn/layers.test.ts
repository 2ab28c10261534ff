// Each layer against hand-computed values or a direct loop implementation of the torch definition.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { MapSource } from '../../src/io/safetensors.ts';
import * as F from '../../src/nn/functional.ts';
import { Activation, Conv1d, ConvTranspose1d, LayerNorm, Linear, SnakeBeta } from '../../src/nn/layers.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

function rnd(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/** torch Conv1d by definition: y[b,o,t] = bias[o] + Σ_i Σ_j w[o,i,j]·xpad[b,i,t·s + j·d]. */
function conv1dLoop(x: number[][][], w: number[][][], bias: number[], s: number, p: number, d: number): number[][][] {
  const [cin, T] = [x[0].length, x[0][0].length];
  const [cout, k] = [w.length, w[0][0].length];
  const tout = Math.floor((T + 2 * p - d * (k - 1) - 1) / s) + 1;
  return x.map((xb) =>
    Array.from({ length: cout }, (_, o) =>
      Array.from({ length: tout }, (_, t) => {
        let acc = bias[o];
        for (let i = 0; i < cin; i++)
          for (let j = 0; j < k; j++) {
            const idx = t * s + j * d - p;
            if (idx >= 0 && idx < T) acc += w[o][i][j] * xb[i][idx];
          }
        return acc;
      }),
    ),
  );
}

/** torch ConvTranspose1d by definition: each input sample scatters w[i,o,:] at t·s − p. */
function convT1dLoop(x: number[][][], w: number[][][], bias: number[], s: number, p: number): number[][][] {
  const [cin, T] = [x[0].length, x[0][0].length];
  const [cout, k] = [w[0].length, w[0][0].length];
  const tout = (T - 1) * s - 2 * p + k;
  return x.map((xb) => {
    const y = Array.from({ length: cout }, (_, o) => new Array<number>(tout).fill(bias[o]));
    for (let i = 0; i < cin; i++)
      for (let t = 0; t < T; t++)
        for (let o = 0; o < cout; o++)
          for (let j = 0; j < k; j++) {
            const idx = t * s + j - p;
            if (idx >= 0 && idx < tout) y[o][idx] += w[i][o][j] * xb[i][t];
          }
    return y;
  });
}

describe('nn layers', () => {
  it('Linear computes x·Wᵀ + b on any leading shape', async () => {
    const lin = new Linear(3, 2);
    const W = tf.tensor2d([[1, 2, 3], [-1, 0, 1]]);
    const b = tf.tensor1d([0.5, -0.5]);
    lin.loadStateDict(new MapSource({ weight: W, bias: b }));
    const x = tf.tensor3d([[[1, 1, 1], [0, 1, 2]]]);
    await expectNoLeak(() => lin.forward(x));
    const y = lin.forward(x);
    await expectClose(y, [6.5, -0.5, 8.5, 1.5]);
    expect(y.shape).toEqual([1, 2, 2]);
    tf.dispose([W, b, x, y]);
    lin.dispose();
  });

  it('LayerNorm (affine, and the bias-less variant with a beta buffer)', async () => {
    const x = tf.tensor2d([[1, 2, 3, 4]]);
    const ln = new LayerNorm(4, { bias: 'beta-buffer' });
    expect(ln.parameterManifest()).toEqual({ weight: [4], beta: [4] });
    const w = tf.tensor1d([1, 2, 1, 1]);
    const beta = tf.zeros([4]);
    ln.loadStateDict(new MapSource({ weight: w, beta }));
    const y = ln.forward(x);
    const s = Math.sqrt(1.25 + 1e-5);
    await expectClose(y, [-1.5 / s, (-0.5 / s) * 2, 0.5 / s, 1.5 / s]);
    tf.dispose([x, w, beta, y]);
    ln.dispose();
  });

  it('GELU (exact and tanh), quick GELU, SiLU, softplus', async () => {
    const x = tf.tensor1d([-2, -0.5, 0, 1, 3, 25]);
    const erf = (v: number) => {
      // high-precision series for the hand values
      let s = 0;
      for (let n = 0; n < 60; n++) {
        let f = 1;
        for (let k = 1; k <= n; k++) f *= k;
        s += ((-1) ** n * v ** (2 * n + 1)) / (f * (2 * n + 1));
      }
      return (2 / Math.sqrt(Math.PI)) * s;
    };
    const xs = [-2, -0.5, 0, 1, 3];
    const exact = xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const g = F.gelu(x.slice(0, 5));
    await expectClose(g, exact, 1e-6, 1e-5);
    const gt = F.geluTanh(x.slice(0, 5));
    await expectClose(gt, xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), 1e-6, 1e-5);
    const q = F.quickGelu(x);
    await expectClose(q, [-2, -0.5, 0, 1, 3, 25].map((v) => v / (1 + Math.exp(-1.702 * v))), 1e-6, 1e-5);
    const si = new Activation('silu').forward(x);
    await expectClose(si, [-2, -0.5, 0, 1, 3, 25].map((v) => v / (1 + Math.exp(-v))), 1e-6, 1e-5);
    const sp = F.softplus(x);
    await expectClose(sp, [-2, -0.5, 0, 1, 3, 25].map((v) => (v > 20 ? v : Math.log1p(Math.exp(v)))), 1e-6, 1e-5);
    tf.dispose([x, g, gt, q, si, sp]);
  });

  it('SnakeBeta with log-scale parameters', async () => {
    const sb = new SnakeBeta(2);
    const alpha = tf.tensor1d([0, Math.log(2)]);
    const beta = tf.tensor1d([Math.log(0.5), 0]);
    sb.loadStateDict(new MapSource({ alpha, beta }));
    const x = tf.tensor3d([[[0.3, -1], [0.7, 2]]]);
    const y = sb.forward(x as tf.Tensor3D);
    const f = (v: number, a: number, b: number) => v + (1 / (b + 1e-9)) * Math.sin(a * v) ** 2;
    await expectClose(y, [f(0.3, 1, 0.5), f(-1, 1, 0.5), f(0.7, 2, 1), f(2, 2, 1)], 1e-6, 1e-5);
    tf.dispose([alpha, beta, x, y]);
    sb.dispose();
  });

  for (const [s, p, d, k] of [
    [1, 3, 1, 7],
    [1, 9, 3, 7],
    [2, 1, 1, 4],
    [4, 2, 1, 8],
    [1, 0, 1, 1],
  ]) {
    it(`Conv1d stride ${s} pad ${p} dilation ${d} k ${k} matches the torch definition`, async () => {
      const x = rnd([2, 3, 17], 1);
      const w = rnd([5, 3, k], 2);
      const b = rnd([5], 3);
      const conv = new Conv1d(3, 5, k, { stride: s, padding: p, dilation: d });
      conv.loadStateDict(new MapSource({ weight: w, bias: b }));
      const y = conv.forward(x as tf.Tensor3D);
      const ref = conv1dLoop((await x.array()) as number[][][], (await w.array()) as number[][][], (await b.array()) as number[], s, p, d);
      await expectClose(y, ref.flat(2), 1e-4, 1e-4);
      expect(y.shape).toEqual([2, 5, ref[0][0].length]);
      await expectNoLeak(() => conv.forward(x as tf.Tensor3D));
      tf.dispose([x, w, b, y]);
      conv.dispose();
    });
  }

  for (const [s, p, k] of [
    [2, 1, 4],
    [8, 4, 16],
    [1, 0, 3],
  ]) {
    it(`ConvTranspose1d stride ${s} pad ${p} k ${k} matches the torch definition`, async () => {
      const x = rnd([2, 4, 6], 4);
      const w = rnd([4, 3, k], 5);
      const b = rnd([3], 6);
      const conv = new ConvTranspose1d(4, 3, k, { stride: s, padding: p });
      conv.loadStateDict(new MapSource({ weight: w, bias: b }));
      const y = conv.forward(x as tf.Tensor3D);
      const ref = convT1dLoop((await x.array()) as number[][][], (await w.array()) as number[][][], (await b.array()) as number[], s, p);
      expect(y.shape).toEqual([2, 3, ref[0][0].length]);
      await expectClose(y, ref.flat(2), 1e-4, 1e-4);
      tf.dispose([x, w, b, y]);
      conv.dispose();
    });
  }

  it('weight-normalised conv folds g·v/‖v‖ over all axes but 0 at load time', async () => {
    const v = rnd([4, 3, 5], 7);
    const g = tf.tensor3d([[[2]], [[0.5]], [[1]], [[3]]]);
    const b = tf.zeros([4]);
    const wn = new Conv1d(3, 4, 5, { weightNorm: true, padding: 2 });
    expect(Object.keys(wn.parameterManifest()).sort()).toEqual(['bias', 'weight_g', 'weight_v']);
    wn.loadStateDict(new MapSource({ weight_g: g, weight_v: v, bias: b }));
    const norms = tf.tidy(() => v.square().sum([1, 2], true).sqrt());
    const w = tf.tidy(() => v.div(norms).mul(g));
    const plain = new Conv1d(3, 4, 5, { padding: 2 });
    plain.loadStateDict(new MapSource({ weight: w, bias: b }));
    const x = rnd([1, 3, 9], 8);
    const y1 = wn.forward(x as tf.Tensor3D);
    const y2 = plain.forward(x as tf.Tensor3D);
    await expectClose(y1, y2, 1e-5, 1e-5);
    tf.dispose([v, g, b, norms, w, x, y1, y2]);
    wn.dispose();
    plain.dispose();
  });

  it('attention with grouped key/value heads uses kv head ⌊i/r⌋ (repeat_interleave)', async () => {
    const q = rnd([1, 4, 3, 2], 9) as tf.Tensor4D;
    const k = rnd([1, 2, 5, 2], 10) as tf.Tensor4D;
    const v = rnd([1, 2, 5, 2], 11) as tf.Tensor4D;
    const out = F.attention(q, k, v);
    // reference: repeat each kv head twice along the head axis, then plain attention per head
    const kr = tf.gather(k, [0, 0, 1, 1], 1);
    const vr = tf.gather(v, [0, 0, 1, 1], 1);
    const ref = tf.matMul(tf.softmax(tf.matMul(q, kr, false, true).div(Math.sqrt(2))), vr);
    await expectClose(out, ref, 1e-6, 1e-5);
    const mask = tf.tensor([true, true, false, true, false], [1, 1, 1, 5], 'bool');
    const masked = F.attention(q, k, v, { mask });
    const refMasked = tf.matMul(
      tf.softmax(tf.matMul(q, kr, false, true).div(Math.sqrt(2)).add(tf.tensor([0, 0, -1e9, 0, -1e9], [1, 1, 1, 5]))),
      vr,
    );
    await expectClose(masked, refMasked, 1e-6, 1e-5);
    tf.dispose([q, k, v, out, kr, vr, ref, mask, masked, refMasked]);
  });
});
