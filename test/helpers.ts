import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { openFixture } from '../src/parity/harness.ts';
import type { Fixture } from '../src/parity/types.ts';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The reference fixtures: the repository's copy in test/fixtures (AUDIOX_FIXTURES overrides). */
export const FIXTURES = process.env.AUDIOX_FIXTURES ?? path.join(REPO, 'test', 'fixtures');

/** Opens a fixture by its path under FIXTURES (e.g. `vae/encode.safetensors`; the suffix may be left out). */
export function fixture(rel: string): Fixture {
  const file = path.join(FIXTURES, rel.endsWith('.safetensors') ? rel : `${rel}.safetensors`);
  const fx = openFixture(file, FIXTURES);
  if (!fx) throw new Error(`${file} is not a fixture (no "component" metadata)`);
  return fx;
}

/** Parses a JSON file under FIXTURES (e.g. `manifests/audiox.json`). */
export function fixtureJson<T = Record<string, number[]>>(rel: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, rel), 'utf8')) as T;
}

/** An `initWeights` function drawing every parameter from N(0, std²) with seeds seed, seed + 1, … */
export function seededNormal(seed: number, std: number): (key: string, p: { shape: number[] }) => tf.Tensor {
  let s = seed;
  return (_key, p) => tf.randomNormal(p.shape, 0, std, 'float32', s++);
}

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
