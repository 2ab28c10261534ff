// nn's linear puts the bias into the product (_FusedMatMul): on every backend — stock wasm through the layout
// kernel of wasm-kernels.ts, native BLAS, others — against a naive multiply-sum reference, batched and not.
import * as tf from '@tensorflow/tfjs';
import { describe, it } from 'vitest';
import { linear } from '../../src/nn/functional.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

describe('linear with a fused bias', () => {
  it.each([
    [[5, 7], 3],
    [[1, 1], 1],
    [[2, 4, 9], 6],
    [[3, 1, 2, 16], 33],
  ] as [number[], number][])('x %j → %i features', async (shape, out) => {
    const inF = shape.at(-1)!;
    const x = tf.randomNormal(shape, 0, 1, 'float32', 21);
    const w = tf.randomNormal([out, inF], 0, 1, 'float32', 22);
    const b = tf.randomNormal([out], 0, 1, 'float32', 23);
    const ref = tf.tidy(() => x.expandDims(-2).mul(w).sum(-1).add(b));
    const y = linear(x, w, b);
    const noBias = linear(x, w, null);
    await expectClose(y, ref, 1e-4, 1e-4);
    await expectClose(noBias, tf.tidy(() => ref.sub(b)), 1e-4, 1e-4);
    await expectNoLeak(() => linear(x, w, b));
    tf.dispose([x, w, b, ref, y, noBias]);
  });
});
