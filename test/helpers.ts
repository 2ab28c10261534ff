import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The shared reference fixtures (../shared/fixtures from the repo root). */
export const FIXTURES = process.env.AUDIOX_FIXTURES ?? path.resolve(REPO, '../shared/fixtures');

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise and returns the max abs error. */
export async function expectClose(
  actual: tf.Tensor,
  expected: tf.Tensor | number[] | Float32Array,
  atol = 1e-5,
  rtol = 1e-4,
): Promise<number> {
  const e = expected instanceof tf.Tensor ? await expected.data() : expected;
  if (expected instanceof tf.Tensor) expect(actual.shape).toEqual(expected.shape);
  const a = await actual.data();
  expect(a.length).toBe(e.length);
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - Number(e[i]));
    maxAbs = Math.max(maxAbs, d);
    if (!(d <= atol + rtol * Math.abs(Number(e[i])))) {
      throw new Error(`element ${i}: got ${a[i]}, expected ${e[i]} (|diff| ${d} > ${atol} + ${rtol}·|e|)`);
    }
  }
  return maxAbs;
}

/** Runs fn and asserts that it leaves no tensor behind (besides what it returns and the caller disposes). */
export async function expectNoLeak(fn: () => unknown | Promise<unknown>): Promise<void> {
  const before = tf.memory().numTensors;
  const out = await fn();
  if (out instanceof tf.Tensor) out.dispose();
  else if (Array.isArray(out)) out.forEach((t) => t instanceof tf.Tensor && t.dispose());
  expect(tf.memory().numTensors).toBe(before);
}
