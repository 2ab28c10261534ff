// The native BLAS kernels (when the addon is available) against naive references, including the
// cases that must fall back to the stock wasm kernels.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activeBackend, wasmBackendDetails } from '../../src/backend/index.ts';
import { blasActive } from '../../src/backend/blas.ts';
import { snakeBetaNWC } from '../../src/nn/functional.ts';
import { kernelRegistered, SNAKE_BETA_NWC } from '../../src/nn/kernels.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

const on = activeBackend().name === 'wasm' && blasActive();
const why = on ? '' : `native BLAS kernels are off (${wasmBackendDetails()?.blas.reason ?? 'backend is not wasm'})`;

function naiveMatMul(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): tf.Tensor {
  // Reference via explicit transposes + broadcasting multiply-sum (no BatchMatMul kernel involved).
  return tf.tidy(() => {
    const swap = (t: tf.Tensor) => t.transpose([...t.shape.keys()].map((i, _, all) => (i < all.length - 2 ? i : 2 * all.length - 3 - i)));
    const A = ta ? swap(a) : a; // [..., m, k]
    const B = tb ? swap(b) : b; // [..., k, n]
    return A.expandDims(-1).mul(B.expandDims(-3)).sum(-2);
  });
}

describe.skipIf(!on)(`native BLAS kernels${why ? ` (skipped: ${why})` : ''}`, () => {
  it.each([
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[2, 4, 5, 7], [2, 4, 7, 3], false, false],
    [[2, 4, 5, 7], [7, 3], false, false],
    [[5, 7], [3, 7, 6], false, false],
    [[3, 6, 8], [1, 8, 2], false, false],
  ] as [number[], number[], boolean, boolean][])('matMul %j·%j tA=%s tB=%s', async (sa, sb, ta, tb) => {
    const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
    const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
    const y = tf.matMul(a, b, ta, tb);
    const r = naiveMatMul(a, b, ta, tb);
    expect(y.shape).toEqual(r.shape);
    await expectClose(y, r, 1e-4, 1e-4);
    tf.dispose([a, b, y, r]);
  });

  it('fused matMul with bias and activations', async () => {
    const a = tf.randomNormal([6, 9], 0, 1, 'float32', 3);
    const b = tf.randomNormal([4, 9], 0, 1, 'float32', 4);
    const bias = tf.randomNormal([4], 0, 1, 'float32', 5);
    for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid'] as const) {
      const y = tf.fused.matMul({ a, b, transposeB: true, bias, activation });
      const lin = naiveMatMul(a, b, false, true).add(bias);
      const acts: Record<string, (t: tf.Tensor) => tf.Tensor> = {
        linear: (t) => t.clone(),
        relu: tf.relu,
        relu6: tf.relu6,
        elu: tf.elu,
        sigmoid: tf.sigmoid,
      };
      const r = acts[activation](lin);
      await expectClose(y, r, 1e-5, 1e-4);
      tf.dispose([y, lin, r]);
    }
    tf.dispose([a, b, bias]);
  });

  it.each([
    [1, 0, 1],
    [2, 3, 1],
    [1, 6, 3],
    [3, 1, 1],
  ])('conv1d stride %i padding %i dilation %i (+ fused bias/elu)', async (stride, padding, dilation) => {
    const x = tf.randomNormal([2, 1, 17, 5], 0, 1, 'float32', 6) as tf.Tensor4D;
    const f = tf.randomNormal([1, 4, 5, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const bias = tf.randomNormal([3], 0, 1, 'float32', 8);
    const pad: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0], [0, 0], [padding, padding], [0, 0],
    ];
    const y = tf.conv2d(x, f, [1, stride], pad, 'NHWC', [1, dilation]);
    const yf = tf.fused.conv2d({ x, filter: f, strides: [1, stride], pad, dilations: [1, dilation], bias, activation: 'elu' });
    // Reference: explicit taps.
    const r = tf.tidy(() => {
      const xp = tf.pad(x.squeeze([1]), [[0, 0], [padding, padding], [0, 0]]); // [B, T+2p, C]
      const tOut = Math.floor((17 + 2 * padding - dilation * 3 - 1) / stride) + 1;
      let acc = tf.zeros([2, tOut, 3]);
      for (let j = 0; j < 4; j++) {
        const idx = tf.range(0, tOut, 1, 'int32').mul(tf.scalar(stride, 'int32')).add(tf.scalar(j * dilation, 'int32'));
        acc = acc.add(tf.matMul(tf.gather(xp, idx, 1), f.squeeze([0]).slice([j, 0, 0], [1, 5, 3]).squeeze([0])));
      }
      return acc.expandDims(1);
    });
    await expectClose(y, r, 1e-4, 1e-4);
    const rf = tf.elu(r.add(bias));
    await expectClose(yf, rf, 1e-4, 1e-4);
    tf.dispose([x, f, bias, y, yf, r, rf]);
  });

  it('falls back to the stock kernel for prelu and 2-D convolutions', () => {
    const x = tf.randomNormal([1, 3, 3, 2], 0, 1, 'float32', 9) as tf.Tensor4D;
    const f = tf.randomNormal([2, 2, 2, 1], 0, 1, 'float32', 10) as tf.Tensor4D;
    const y = tf.conv2d(x, f, 1, 'valid');
    expect(y.shape).toEqual([1, 2, 2, 1]);
    tf.dispose([x, f, y]);
  });

  it('Sin and the fused SnakeBeta kernel', async () => {
    const x = tf.randomNormal([2, 33, 5], 0, 3, 'float32', 11);
    const xs = await x.data();
    const s = tf.sin(x);
    await expectClose(s, Array.from(xs, Math.sin), 1e-6, 1e-5);
    const a = tf.tensor1d([0.5, 1, 2, 3, 0.1]);
    const invB = tf.tensor1d([1, 0.5, 2, 1, 4]);
    expect(kernelRegistered(SNAKE_BETA_NWC)).toBe(true);
    const y = snakeBetaNWC(x, a, invB);
    const av = await a.data();
    const bv = await invB.data();
    const ref = Array.from(xs, (v, i) => v + bv[i % 5] * Math.sin(av[i % 5] * v) ** 2);
    await expectClose(y, ref, 1e-5, 1e-5);
    tf.dispose([x, s, a, invB, y]);
  });

  it('does not leak', async () => {
    const a = tf.randomNormal([3, 4]);
    const b = tf.randomNormal([4, 5]);
    await expectNoLeak(() => {
      tf.matMul(a, b).dispose();
    });
    tf.dispose([a, b]);
  });
});

describe('native BLAS status', () => {
  it.skipIf(activeBackend().name !== 'wasm')('reports why it is off or which library it uses (wasm backend)', () => {
    const d = wasmBackendDetails();
    expect(d).not.toBeNull();
    expect(d!.blas.reason.length).toBeGreaterThan(0);
    expect(d!.threads).toBeGreaterThanOrEqual(1);
  });
});
