// The one rotary application (x·cos + (x·R)·sin) against the torch definitions written out per element:
// rotate-half (DiT, partial and full) and interleaved pairs (MMDiT).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { RotaryEmbedding } from '../../src/nn/layers.ts';
import { applyRotary, disposeRotary, interleavedRotaryTables, rotateHalfTables } from '../../src/nn/rotary.ts';
import { expectClose, expectNoLeak } from '../helpers.ts';

/** rotate_half on the first `rot` channels of each row, per element (apply_rotary_pos_emb). */
function rotateHalfRef(rows: number[][], positions: number[], inv: Float32Array, rot: number): number[][] {
  return rows.map((row, i) => {
    const p = positions[i];
    const half = rot / 2;
    const th = Array.from({ length: rot }, (_, j) => p * inv[j % half]);
    const u = row.slice(0, rot);
    const r = u.map((_, j) => (j < half ? -u[j + half] : u[j - half]));
    return [...u.map((v, j) => v * Math.cos(th[j]) + r[j] * Math.sin(th[j])), ...row.slice(rot)];
  });
}

describe('rotary embeddings (nn/rotary.ts)', () => {
  it('rotate-half on the first rot channels only; the rest pass through', async () => {
    const rope = new RotaryEmbedding(4);
    const inv = RotaryEmbedding.invFreqValues(4);
    expect(Array.from(inv)).toEqual([1, Math.fround(1 / 100)]);
    const freqs = rope.freqs(3);
    const tables = rotateHalfTables(freqs, 6);
    const x = tf.tensor4d(Array.from({ length: 18 }, (_, i) => i / 10), [1, 1, 3, 6]);
    const y = applyRotary(x, tables);
    const expected = rotateHalfRef((await x.array())[0][0], [0, 1, 2], inv, 4);
    await expectClose(y, expected.flat(), 1e-6, 1e-5);
    tf.dispose([freqs, x, y]);
    disposeRotary(tables);
  });

  for (const dh of [64, 40, 32]) {
    it(`rotate-half on [B, L, H, ${dh}] (headsAfterLength) equals the per-element definition`, async () => {
      const rot = Math.max(dh / 2, 32);
      const emb = new RotaryEmbedding(rot);
      const x = tf.randomNormal([2, 7, 3, dh], 0, 1, 'float32', dh) as tf.Tensor4D;
      const freqs = emb.freqs(7);
      const tables = rotateHalfTables(freqs, dh, { headsAfterLength: true });
      const ours = applyRotary(x, tables);
      const rows = (await x.reshape([-1, dh]).array()) as number[][];
      const positions = rows.map((_, i) => Math.floor(i / 3) % 7); // row (b, l, h) sits at position l
      await expectClose(ours, rotateHalfRef(rows, positions, RotaryEmbedding.invFreqValues(rot), rot).flat(), 1e-5, 1e-5);
      tf.dispose([x, ours, freqs]);
      disposeRotary(tables);
    });
  }

  it('interleaved pairs (2f, 2f+1) rotate by p·10000^(−2f/hd)', async () => {
    const rope = interleavedRotaryTables(3, 4);
    const x = tf.tensor4d([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4], [1, 1, 3, 4]);
    const y = applyRotary(x, rope);
    const expected: number[] = [];
    for (let p = 0; p < 3; p++) {
      for (let f = 0; f < 2; f++) {
        const a = p * 10000 ** (-(2 * f) / 4);
        const [x0, x1] = [1 + 2 * f, 2 + 2 * f];
        expected.push(Math.cos(a) * x0 - Math.sin(a) * x1, Math.sin(a) * x0 + Math.cos(a) * x1);
      }
    }
    await expectClose(y, expected, 1e-5, 0);
    tf.dispose([x, y]);
    disposeRotary(rope);
  });

  it('refuses tables that do not fit the input, and leaks nothing', async () => {
    const freqs = new RotaryEmbedding(8).freqs(2);
    expect(() => rotateHalfTables(freqs, 6)).toThrow(/8 rotated channels do not fit heads of 6/);
    expect(() => interleavedRotaryTables(2, 5)).toThrow(/head dim 5 must be even/);
    const tables = interleavedRotaryTables(2, 4);
    const x = tf.zeros([1, 2, 6]);
    const before = tf.memory().numTensors;
    expect(() => applyRotary(x, tables)).toThrow(/tables for head dim 4, input \[1,2,6\]/);
    expect(tf.memory().numTensors).toBe(before);
    const ok = tf.zeros([1, 2, 4]);
    await expectNoLeak(() => applyRotary(ok, tables));
    tf.dispose([freqs, x, ok]);
    disposeRotary(tables);
  });
});
