// F.linear is one matMul(x, W, false, true) on every backend (wasm without the BLAS kernels re-lays W in
// its own BatchMatMul kernel, src/backend/wasm-kernels.ts); the result must be y = x·Wᵀ + b and leave
// no tensors behind.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import * as F from '../../src/nn/functional.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

describe('F.linear', () => {
  it('computes x·Wᵀ + b (hand-computed) on any leading shape', async () => {
    const x = tf.tensor3d([[[1, 2, 3]], [[-1, 0, 2]]]); // [2, 1, 3]
    const w = tf.tensor2d([[1, 0, -1], [0.5, 2, 0]]); // [2 out, 3 in]
    const b = tf.tensor1d([10, -1]);
    const y = F.linear(x, w, b);
    expect(y.shape).toEqual([2, 1, 2]);
    await expectClose(y, [1 - 3 + 10, 0.5 + 4 - 1, -1 - 2 + 10, -0.5 - 1], 1e-6, 0);
    tf.dispose([x, w, b, y]);
  });

  it('matches matMul(x, W, false, true) on a larger product and does not leak', async () => {
    const x = tf.randomNormal([37, 64], 0, 1, 'float32', 1);
    const w = tf.randomNormal([48, 64], 0, 1, 'float32', 2);
    const ref = tf.matMul(x, w, false, true);
    const y = F.linear(x, w);
    await expectClose(y, ref, 1e-4, 1e-5);
    await expectNoLeak(() => F.linear(x, w));
    tf.dispose([x, w, ref, y]);
  });
});
