// The built-in demo model: a tiny AudioX-MAF-shaped model (configs/demo/config.json) whose weights are
// synthesised deterministically from each parameter's name, so that it runs offline anywhere. It is
// untrained: it exercises the whole pipeline but produces noise-like audio.
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../layout.ts';
import type { Module, Parameter } from '../nn/module.ts';
import { RotaryEmbedding } from '../nn/layers.ts';
import { SeededNoise } from '../nn/noise.ts';

export const DEMO_DIR = path.join(PACKAGE_ROOT, 'configs', 'demo');

function keySeed(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A weight for `key`: normal with std 1/√fan_in for matrices and kernels, ones for norm scales,
 * zeros for biases and shifts, log-scale 0 (= 1) for Snake parameters, small tables for embeddings,
 * and the exact values for deterministic buffers (rotary inv_freq, position ids).
 */
export function demoWeight(key: string, p: Parameter): tf.Tensor {
  const name = key.split('.').pop()!;
  const shape = p.shape;
  const n = shape.reduce((a, b) => a * b, 1);
  if (name === 'inv_freq') return tf.tensor1d(RotaryEmbedding.invFreqValues(shape[0] * 2));
  if (name === 'position_ids') return tf.tidy(() => tf.range(0, n, 1, 'int32').reshape(shape));
  if (p.dtype === 'int32') return tf.zeros(shape, 'int32');
  if (/^bypass_gate/.test(name)) return tf.fill(shape, -2);
  if (name === 'bias' || name === 'beta' || name === 'alpha') return tf.zeros(shape);
  if (name === 'weight_g' || name === 'gamma' || (name === 'weight' && shape.length === 1)) return tf.ones(shape);
  const noise = new SeededNoise(keySeed(key));
  const fanIn = shape.length >= 2 ? n / shape[0] : shape[shape.length - 1];
  const std = name === 'weight' || name === 'weight_v' || /proj|experts/.test(key) ? 1 / Math.sqrt(Math.max(fanIn, 1)) : 0.2;
  return tf.tidy(() => noise.randn('initial', shape).mul(std));
}

/** Fills every parameter of `m` with its demo weight. */
export function initDemoWeights(m: Module): void {
  m.initWeights(demoWeight);
}
