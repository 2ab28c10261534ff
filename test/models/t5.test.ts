import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MapSource, PrefixedSource, SafetensorsFile } from '../../src/io/safetensors.ts';
import { relativePositionBucket, T5_BASE_CONFIG, T5EncoderModel, type T5Config } from '../../src/models/t5.ts';
import { FIXTURES, expectClose, expectNoLeak, seededNormal } from '../helpers.ts';

describe('T5 encoder: fixture t5/encoder', () => {
  let fx: SafetensorsFile;
  let model: T5EncoderModel;
  let cfg: T5Config;
  beforeAll(() => {
    fx = SafetensorsFile.open(path.join(FIXTURES, 't5/encoder.safetensors'));
    cfg = (JSON.parse(fx.metadata.config) as { t5_config: T5Config }).t5_config;
    model = T5EncoderModel.fromConfig(cfg);
    model.loadStateDict(new PrefixedSource(fx, 'params/'), { ignorePrefixes: ['proj_out.'] });
  });
  afterAll(() => {
    model.dispose();
    fx.close();
  });

  it('matches last_hidden_state and the per-block intermediates', async () => {
    const atol = Number(fx.metadata.atol);
    const ids = fx.read('inputs/input_ids') as tf.Tensor2D;
    const mask = fx.read('inputs/attention_mask') as tf.Tensor2D;
    const blocks = ['encoder.block.0', 'encoder.block.1'];
    const { result, captures } = await model.capture(blocks, () => model.forward(ids, mask));
    const err = await expectClose(result, fx.read('outputs/last_hidden_state'), atol, 1e-4);
    console.log(`t5/encoder last_hidden_state max_abs=${err.toExponential(2)} (atol ${atol})`);
    for (const b of blocks) await expectClose(captures[b], fx.read(`intermediates/${b}`), atol, 1e-4);
    tf.dispose([result, ids, mask, ...Object.values(captures)]);
  });

  it('padded keys do not influence real tokens (item 1 has 6 real tokens)', async () => {
    const ids = fx.read('inputs/input_ids') as tf.Tensor2D;
    const mask = fx.read('inputs/attention_mask') as tf.Tensor2D;
    const full = model.forward(ids, mask);
    const short = model.forward(ids.slice([1, 0], [1, 6]), mask.slice([1, 0], [1, 6]));
    await expectClose(full.slice([1, 0, 0], [1, 6, -1]), short, 1e-5, 1e-4);
    tf.dispose([ids, mask, full, short]);
  });

  it('forward leaks no tensors', async () => {
    const ids = fx.read('inputs/input_ids') as tf.Tensor2D;
    const mask = fx.read('inputs/attention_mask') as tf.Tensor2D;
    await expectNoLeak(() => model.forward(ids, mask));
    tf.dispose([ids, mask]);
  });

  it('rejects a mask that does not match the ids', () => {
    const ids = tf.zeros([2, 4], 'int32') as tf.Tensor2D;
    const mask = tf.ones([2, 3], 'bool') as tf.Tensor2D;
    expect(() => model.forward(ids, mask)).toThrow(/attention_mask \[2,3\] does not match input_ids \[2,4\]/);
    tf.dispose([ids, mask]);
  });
});

describe('relative position buckets (bidirectional)', () => {
  it('t5-base (32 buckets, max distance 128): hand-computed values', () => {
    const b = (d: number) => relativePositionBucket(d, 32, 128);
    // key before query (Δ<0) → 0..15; key after query (Δ>0) → 16..31; exact below 8, log-spaced above.
    expect([0, -1, -7, -8, -15, -16, -32, -64, -127, -128, -1000].map(b)).toEqual([0, 1, 7, 8, 9, 10, 12, 14, 15, 15, 15]);
    expect([1, 7, 8, 16, 32, 64, 1000].map(b)).toEqual([17, 23, 24, 26, 28, 30, 31]);
  });
  it('fixture config (8 buckets, max distance 16)', () => {
    const b = (d: number) => relativePositionBucket(d, 8, 16);
    expect([0, -1, -2, -3, -4, -8, -9, 1, 2, 9].map(b)).toEqual([0, 1, 2, 2, 2, 3, 3, 5, 6, 7]);
  });
});

describe('T5 full-size layout (t5-base, docs/REFERENCE.md §4.5)', () => {
  const m = new T5EncoderModel(T5_BASE_CONFIG);
  const manifest = m.parameterManifest();
  it('has the HF T5EncoderModel keys and shapes', () => {
    expect(Object.keys(manifest)).toHaveLength(2 + 12 * 8 + 1 + 1);
    expect(manifest['shared.weight']).toEqual([32128, 768]);
    expect(manifest['encoder.embed_tokens.weight']).toEqual([32128, 768]);
    expect(manifest['encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight']).toEqual([32, 12]);
    expect(Object.keys(manifest).filter((k) => k.includes('relative_attention_bias'))).toHaveLength(1);
    for (let i = 0; i < 12; i++) {
      const p = `encoder.block.${i}.layer`;
      for (const x of ['q', 'k', 'v', 'o']) expect(manifest[`${p}.0.SelfAttention.${x}.weight`]).toEqual([768, 768]);
      expect(manifest[`${p}.0.layer_norm.weight`]).toEqual([768]);
      expect(manifest[`${p}.1.DenseReluDense.wi.weight`]).toEqual([3072, 768]);
      expect(manifest[`${p}.1.DenseReluDense.wo.weight`]).toEqual([768, 3072]);
      expect(manifest[`${p}.1.layer_norm.weight`]).toEqual([768]);
    }
    expect(manifest['encoder.final_layer_norm.weight']).toEqual([768]);
    const elements = Object.values(manifest).reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(elements).toBe(2 * 32128 * 768 + 12 * (4 * 768 * 768 + 2 * 768 * 3072 + 2 * 768) + 32 * 12 + 768);
  });
  it('gated-gelu (flan-t5 / v1.1) uses wi_0, wi_1, wo', () => {
    const g = new T5EncoderModel({ ...T5_BASE_CONFIG, feed_forward_proj: 'gated-gelu', d_ff: 2048, num_layers: 1 }).parameterManifest();
    expect(g['encoder.block.0.layer.1.DenseReluDense.wi_0.weight']).toEqual([2048, 768]);
    expect(g['encoder.block.0.layer.1.DenseReluDense.wi_1.weight']).toEqual([2048, 768]);
    expect(g['encoder.block.0.layer.1.DenseReluDense.wi.weight']).toBeUndefined();
  });
  it('bad configs give clear errors', () => {
    expect(() => new T5EncoderModel({ ...T5_BASE_CONFIG, feed_forward_proj: 'gated-gelu-x' })).toThrow(/feed_forward_proj/);
    expect(() => new T5EncoderModel({ ...T5_BASE_CONFIG, feed_forward_proj: 'swish' })).toThrow(/unsupported activation "swish"/);
    expect(() => new T5EncoderModel({ ...T5_BASE_CONFIG, d_model: 0 })).toThrow(/"d_model" must be a positive integer/);
  });
});

describe('T5EncoderModel.loadPretrained (full HF checkpoint with tied embeddings)', () => {
  const cfg: T5Config = { vocab_size: 11, d_model: 8, d_kv: 4, d_ff: 16, num_layers: 2, num_heads: 2, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, feed_forward_proj: 'gated-gelu' };
  it('fills encoder.embed_tokens from shared.weight and ignores decoder.* / lm_head.*', async () => {
    const src = new T5EncoderModel(cfg);
    src.initWeights(seededNormal(1, 0.5));
    src.encoder.embed_tokens.weight.set(src.shared.weight.value.clone()); // tied, as in HF
    const sd = { ...src.stateDict() };
    delete sd['encoder.embed_tokens.weight'];
    const extra = { 'decoder.block.0.layer.0.SelfAttention.q.weight': tf.zeros([8, 8]), 'lm_head.weight': tf.zeros([11, 8]) };
    const m = new T5EncoderModel(cfg);
    m.loadPretrained(new MapSource({ ...sd, ...extra }));
    await expectClose(m.encoder.embed_tokens.weight.value, src.shared.weight.value, 0, 0);
    const ids = tf.tensor2d([[3, 4, 1, 0]], [1, 4], 'int32');
    const mask = tf.tensor2d([[1, 1, 1, 0]], [1, 4], 'bool');
    const a = src.forward(ids, mask);
    const b = m.forward(ids, mask);
    await expectClose(b, a, 0, 0);
    tf.dispose([ids, mask, a, b, ...Object.values(extra)]);
    src.dispose();
    m.dispose();
  });
  it('a missing block weight is reported (strict)', () => {
    const src = new T5EncoderModel(cfg);
    src.initWeights((_k, p) => tf.zeros(p.shape));
    const sd = { ...src.stateDict() };
    delete sd['encoder.block.1.layer.1.DenseReluDense.wo.weight'];
    const m = new T5EncoderModel(cfg);
    expect(() => m.loadPretrained(new MapSource(sd))).toThrow(/missing keys \(1\):\s+encoder\.block\.1\.layer\.1\.DenseReluDense\.wo\.weight/);
    src.dispose();
    m.dispose();
  });
});
