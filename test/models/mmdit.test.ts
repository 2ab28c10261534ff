import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixedSource, SafetensorsFile } from '../../src/io/safetensors.ts';
import { MMDiTWrapper, MMDiffusionTransformer, type MMDiTConfig } from '../../src/models/mmdit.ts';
import { CrossAttention, swigluHidden } from '../../src/models/mmdit-blocks.ts';
import { ChannelLastConv1d } from '../../src/nn/relaid-layers.ts';
import { DiTWrapper } from '../../src/models/dit.ts';
import { combineCfg, cfgCondBatch } from '../../src/models/cfg.ts';
import type { DiffusionModel, DiffusionCond } from '../../src/models/diffusion-types.ts';
import { sampleK } from '../../src/sampling/sample.ts';
import { SeededNoise } from '../../src/nn/noise.ts';
import * as F from '../../src/nn/functional.ts';
import { FIXTURES, expectClose, expectNoLeak, seededNormal } from '../helpers.ts';

const MANIFESTS = path.join(FIXTURES, 'manifests');
interface MMDiTFixture {
  fx: SafetensorsFile;
  wrapper: MMDiTWrapper;
  cfgScale: number;
}

function openFixture(name: string): MMDiTFixture {
  const fx = SafetensorsFile.open(path.join(FIXTURES, `mmdit/${name}.safetensors`));
  const cfg = JSON.parse(fx.metadata.config) as { diffusion: { config: MMDiTConfig } };
  const wrapper = MMDiTWrapper.fromConfig(cfg.diffusion.config);
  wrapper.model.loadStateDict(new PrefixedSource(fx, 'params/'));
  const args = JSON.parse(fx.metadata.args) as { cfg_scale: number };
  return { fx, wrapper, cfgScale: args.cfg_scale };
}

describe.each(['cfg', 'nocfg'])('MMDiT fixture mmdit/%s', (name) => {
  let f: MMDiTFixture;
  let x: tf.Tensor, t: tf.Tensor, c: tf.Tensor;
  beforeAll(() => {
    f = openFixture(name);
    [x, t, c] = ['x', 't', 'cross_attn_cond'].map((n) => f.fx.read(`inputs/${n}`));
  });
  afterAll(() => {
    tf.dispose([x, t, c]);
    f.wrapper.dispose();
    f.fx.close();
  });

  it('matches the output and every intermediate', async () => {
    const atol = Number(f.fx.metadata.atol);
    const pairs: [string, string][] = [
      ['model.to_timestep_embed', 'timestep_embed'],
      ['model.preprocess_conv', 'preprocess_conv'],
      ['model.transformer.project_in', 'transformer.project_in'],
      ['model.transformer.proj_mm_tokens', 'transformer.proj_mm_tokens'],
      ['model.transformer.proj_mm_seq_len', 'transformer.proj_mm_seq_len'],
      ['model.transformer.layers.0', 'transformer.layers.0'],
      ['model.transformer.layers.1', 'transformer.layers.1'],
      ['model.transformer.project_out', 'transformer.project_out'],
    ];
    const { result, captures } = await f.wrapper.capture(
      pairs.map(([p]) => p),
      () => f.wrapper.forward(x, t, { crossAttnCond: c, cfgScale: f.cfgScale, scalePhi: 0, batchCfg: true, rescaleCfg: true }),
    );
    const report: string[] = [];
    for (const [ours, theirs] of pairs) {
      const exp = f.fx.read(`intermediates/${theirs}`);
      // Intermediates are not bound by the tolerance, but they agree to it here.
      report.push(`${theirs} ${(await expectClose(captures[ours], exp, atol, 1e-4)).toExponential(2)}`);
      exp.dispose();
    }
    // batch_output: the reference `_forward` on the (CFG-doubled) batch.
    const batched = f.cfgScale !== 1;
    const bx = batched ? tf.concat([x, x]) : x;
    const bt = batched ? tf.concat([t, t]) : t;
    const bc = batched ? cfgCondBatch(c) : c;
    const batchOut = f.wrapper.model.forwardOnce(bx, bt, bc);
    const expBatch = f.fx.read('intermediates/batch_output');
    report.push(`batch_output ${(await expectClose(batchOut, expBatch, atol, 1e-4)).toExponential(2)}`);
    const exp = f.fx.read('outputs/output');
    report.push(`output ${(await expectClose(result, exp, atol, 1e-4)).toExponential(2)}`);
    console.log(`mmdit/${name} max abs: ${report.join(', ')}`);
    if (batched) tf.dispose([bx, bt, bc]);
    tf.dispose([batchOut, expBatch, exp, result, ...Object.values(captures)]);
  });

  it('leaves no tensors behind', async () => {
    await expectNoLeak(() => f.wrapper.forward(x, t, { crossAttnCond: c, cfgScale: f.cfgScale }));
  });

  it('fails clearly on a wrong context length, latent length, global cond or batchCfg false', () => {
    const c383 = c.slice([0, 0, 0], [1, 383, 768]);
    const x15 = x.slice([0, 0, 0], [1, 8, 15]);
    const g = tf.zeros([1, 4]);
    const w = f.wrapper;
    expect(() => w.forward(x, t, { crossAttnCond: c383 })).toThrow(/exactly \[1, 384, 768\].*got \[1,383,768\]/);
    expect(() => w.forward(x15, t, { crossAttnCond: c })).toThrow(/_latent_seq_len − 1 = 16 frames.*got 15/);
    expect(() => w.forward(x, t, {})).toThrow(/crossAttnCond \[B, 384, 768\] is required/);
    expect(() => w.forward(x, t, { crossAttnCond: c, globalCond: g })).toThrow(/global conditioning is not supported/);
    expect(() => w.forward(x, t, { crossAttnCond: c, batchCfg: false })).toThrow(/batchCfg must be true/);
    tf.dispose([c383, x15, g]);
  });
});

describe('MMDiT construction', () => {
  it('audiox-maf-mmdit.assumed: model.model.* keys and shapes equal the manifest (no allocation)', () => {
    const name = 'audiox-maf-mmdit.assumed';
    const manifest = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.json`), 'utf8')) as Record<string, number[]>;
    const config = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.config.json`), 'utf8'));
    const before = tf.memory().numTensors;
    const wrapper = MMDiTWrapper.fromConfig(config.model.diffusion.config);
    const ours = Object.fromEntries(Object.entries(wrapper.parameterManifest()).map(([k, s]) => [`model.${k}`, s]));
    const theirs = Object.fromEntries(Object.entries(manifest).filter(([k]) => k.startsWith('model.model.')));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    expect(ours).toEqual(theirs);
    expect(tf.memory().numTensors).toBe(before);
    // The reference defaults: 384 context tokens, _latent_seq_len 237 ⇒ 236 latent frames; 64 heads of 24.
    expect(wrapper.model.latentLength).toBe(236);
    expect(wrapper.model.transformer.nheads).toBe(64);
    expect(wrapper.model.transformer.headDim).toBe(24);
  });

  it('defaults to _latent_seq_len 237 and rejects unsupported options', () => {
    const m = new MMDiffusionTransformer({ transformer_type: 'continuous_transformer', embed_dim: 64, num_heads: 8, depth: 1, io_channels: 4 });
    expect(m.latentLength).toBe(236);
    expect(() => new MMDiffusionTransformer({})).toThrow(/transformer_type "x-transformers"/);
    expect(() => new MMDiffusionTransformer({ transformer_type: 'continuous_transformer', global_cond_type: 'adaLN' })).toThrow(/adaLN/);
    expect(() => new MMDiffusionTransformer({ transformer_type: 'continuous_transformer', kernel_size: 4 })).toThrow(/kernel_size must be odd/);
  });

  it('FFN hidden size: 2/3 and multiple-of-256 rounding', () => {
    expect(swigluHidden(1536 * 4)).toBe(4096);
    expect(swigluHidden(1024 * 4)).toBe(2816);
    expect(swigluHidden(768 * 4)).toBe(2048);
    expect(swigluHidden(32 * 4)).toBe(256);
  });
});

describe('MMDiT blocks', () => {
  it('ChannelLastConv1d (k=3, pad 1) equals torch Conv1d on the transposed input', async () => {
    const conv = new ChannelLastConv1d(5, 7, 3, 1);
    const w = tf.randomNormal([7, 5, 3], 0, 1, 'float32', 1);
    const b = tf.randomNormal([7], 0, 1, 'float32', 2);
    conv.initWeights((k) => (k === 'weight' ? w.clone() : b.clone()));
    const x = tf.randomNormal([2, 9, 5], 0, 1, 'float32', 3);
    const ours = conv.forward(x);
    const ref = F.conv1d(x.transpose([0, 2, 1]) as tf.Tensor3D, w, b, { padding: 1 }).transpose([0, 2, 1]);
    await expectClose(ours, ref, 1e-5, 1e-5);
    await expectNoLeak(() => conv.forward(x));
    tf.dispose([w, b, x, ours, ref]);
    conv.dispose();
  });

  it('cross-attention: keys = v-projection, values = RMS(k-projection) (quirk 7); one token ⇒ the value', async () => {
    const ca = new CrossAttention(8, 2);
    ca.initWeights(seededNormal(5, 0.5));
    const x = tf.randomNormal([1, 4, 8], 0, 1, 'float32', 6);
    const one = tf.randomNormal([1, 1, 8], 0, 1, 'float32', 7);
    const two = tf.randomNormal([1, 2, 8], 0, 1, 'float32', 8);
    // Hand computation with the interleaved (h d j) split of to_kv.
    const kv = ca.to_kv.forward(two).reshape([1, 2, 2, 4, 2]).transpose([4, 0, 2, 1, 3]); // [j, B, H, M, hd]
    const [kProj, vProj] = tf.unstack(kv);
    const q = F.rmsNorm(F.splitHeads(ca.to_q.forward(x), 2), null, 1e-6) as tf.Tensor4D;
    const expected = F.mergeHeads(F.attention(q, vProj as tf.Tensor4D, F.rmsNorm(kProj, null, 1e-6) as tf.Tensor4D));
    const got = ca.forward(x, two);
    await expectClose(got, expected, 1e-5, 1e-5);
    // A single context token: every query receives RMS(k-projection) of that token.
    const single = ca.forward(x, one);
    const k1 = tf.unstack(ca.to_kv.forward(one).reshape([1, 1, 2, 4, 2]).transpose([4, 0, 2, 1, 3]))[0];
    const v1 = F.mergeHeads(F.rmsNorm(k1, null, 1e-6) as tf.Tensor4D);
    await expectClose(single, tf.tile(v1, [1, 4, 1]), 1e-6, 1e-6);
    tf.dispose([x, one, two, kv, kProj, vProj, q, expected, got, single, k1, v1]);
    ca.dispose();
  });

  it('CFG combine: uncond + (cond − uncond)·s, scale_phi rescale by the channel std (unbiased)', async () => {
    const cond = tf.tensor3d([1, 2, 3, 5], [1, 4, 1]);
    const uncond = tf.tensor3d([0, 0, 1, 1], [1, 4, 1]);
    const both = tf.concat([cond, uncond]);
    const plain = combineCfg(both, 3, 0);
    await expectClose(plain, [3, 6, 7, 13], 1e-6, 0);
    const std = (v: number[]) => {
      const m = v.reduce((a, b) => a + b) / v.length;
      return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
    };
    const r = std([1, 2, 3, 5]) / std([3, 6, 7, 13]);
    const phi = combineCfg(both, 3, 0.7);
    await expectClose(phi, [3, 6, 7, 13].map((v) => 0.7 * v * r + 0.3 * v), 1e-5, 1e-5);
    tf.dispose([cond, uncond, both, plain, phi]);
  });
});

describe('one sampler drives both backbones', () => {
  it('a DiT-shaped and an MMDiT-shaped tiny model run through the same sampleK call', async () => {
    const T = 6;
    const dit = DiTWrapper.fromConfig({
      io_channels: 4, embed_dim: 64, depth: 1, num_heads: 2, cond_token_dim: 8, project_cond_tokens: true,
      transformer_type: 'continuous_transformer',
    });
    const mmdit = MMDiTWrapper.fromConfig({
      io_channels: 4, embed_dim: 16, depth: 1, num_heads: 4, cond_token_dim: 8, project_cond_tokens: false,
      transformer_type: 'continuous_transformer', _latent_seq_len: T + 1,
    });
    dit.initWeights(seededNormal(100, 0.1));
    mmdit.initWeights(seededNormal(200, 0.1));
    const ditCond = tf.randomNormal([1, 5, 8], 0, 1, 'float32', 1);
    const mmCond = tf.randomNormal([1, 384, 768], 0, 1, 'float32', 2);
    const noise = new SeededNoise(3).randn('initial', [1, 4, T]);
    const sample = (model: DiffusionModel, cond: DiffusionCond) =>
      sampleK({ model, noise, cond, steps: 3, samplerType: 'dpmpp-3m-sde', sigmaMin: 0.3, sigmaMax: 50, noiseSource: new SeededNoise(4) });
    for (const [model, crossAttnCond] of [[dit, ditCond], [mmdit, mmCond]] as const) {
      const before = tf.memory().numTensors;
      const out = await sample(model, { crossAttnCond, cfgScale: 5, scalePhi: 0.5 });
      expect(out.shape).toEqual([1, 4, T]);
      expect(Array.from(await out.data()).every(Number.isFinite)).toBe(true);
      out.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose([ditCond, mmCond, noise]);
    dit.dispose();
    mmdit.dispose();
  });
});

describe('CFG condition batch', () => {
  it('null = zeros; a negative condition is zeroed where its mask is false', async () => {
    const c = tf.ones([1, 3, 2]);
    const n = tf.fill([1, 3, 2], 2);
    const m = tf.tensor2d([[1, 0, 1]]);
    const plain = cfgCondBatch(c);
    await expectClose(plain, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], 0, 0);
    const neg = cfgCondBatch(c, n, m);
    await expectClose(neg, [1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 2, 2], 0, 0);
    const bad = tf.ones([1, 2]);
    expect(() => cfgCondBatch(c, n, bad)).toThrow(/negative mask must be \[1,3\]/);
    tf.dispose([c, n, m, plain, neg, bad]);
  });
});
