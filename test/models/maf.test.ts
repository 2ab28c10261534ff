import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixedSource, SafetensorsFile } from '../../src/io/safetensors.ts';
import { MAFBlock, type MAFConfig } from '../../src/models/maf.ts';
import { getConditioningInputs, type ConditionerOutputs } from '../../src/models/conditioning.ts';
import { MultiheadAttention } from '../../src/nn/mha.ts';
import { FIXTURES, expectClose, expectNoLeak, seededNormal } from '../helpers.ts';

const MANIFESTS = path.join(FIXTURES, 'manifests');
describe('MAF block: fixture maf/direct', () => {
  let fx: SafetensorsFile;
  let block: MAFBlock;
  beforeAll(() => {
    fx = SafetensorsFile.open(path.join(FIXTURES, 'maf/direct.safetensors'));
    const cfg = JSON.parse(fx.metadata.config) as { maf_block: MAFConfig };
    block = MAFBlock.fromConfig(cfg.maf_block);
    block.loadStateDict(new PrefixedSource(fx, 'params/'));
  });
  afterAll(() => {
    block.dispose();
    fx.close();
  });

  it('matches outputs and intermediates', async () => {
    const atol = Number(fx.metadata.atol);
    const [v, t, a] = ['video_tokens', 'text_tokens', 'audio_tokens'].map((n) => fx.read(`inputs/${n}`));
    const paths = ['gating_network', 'cross_attn', 'norm1', 'fusion_transformer.layers.0', 'fusion_transformer.layers.1'];
    const { result, captures } = await block.capture(paths, () => block.forward(v, t, a));
    const pairs: [string, string][] = [
      ['gating_network', 'gates'],
      ['cross_attn', 'cross_attn'],
      ['norm1', 'updated_experts'],
      ['fusion_transformer.layers.0', 'fusion_transformer.layers.0'],
      ['fusion_transformer.layers.1', 'fusion_transformer.layers.1'],
    ];
    const report: string[] = [];
    for (const [ours, theirs] of pairs) {
      const exp = fx.read(`intermediates/${theirs}`);
      report.push(`${theirs} ${(await expectClose(captures[ours], exp, atol, 1e-4)).toExponential(2)}`);
      exp.dispose();
    }
    for (const name of ['video', 'text', 'audio'] as const) {
      const exp = fx.read(`outputs/${name}`);
      report.push(`${name} ${(await expectClose(result[name], exp, atol, 1e-4)).toExponential(2)}`);
      exp.dispose();
    }
    console.log(`maf/direct max abs: ${report.join(', ')}`);
    tf.dispose([v, t, a, ...Object.values(result), ...Object.values(captures)]);
  });

  it('leaves no tensors behind', async () => {
    const [v, t, a] = ['video_tokens', 'text_tokens', 'audio_tokens'].map((n) => fx.read(`inputs/${n}`));
    await expectNoLeak(() => Object.values(block.forward(v, t, a)));
    tf.dispose([v, t, a]);
  });

  it('rejects tokens of the wrong width', () => {
    const x = tf.zeros([1, 4, 16]);
    const ok = tf.zeros([1, 4, 32]);
    expect(() => block.forward(ok, x, ok)).toThrow(/\[B, N, 32\]/);
    tf.dispose([x, ok]);
  });
});

describe('getConditioningInputs', () => {
  it('maf/wrapper fixture: text/video argument swap, [text | video | audio] order, masks in id order', async () => {
    const fx = SafetensorsFile.open(path.join(FIXTURES, 'maf/wrapper.safetensors'));
    const cfg = JSON.parse(fx.metadata.config) as { diffusion: { cross_attention_cond_ids: string[]; gate_type_config: MAFConfig }; maf_block_dim: number };
    const block = MAFBlock.fromConfig({ ...cfg.diffusion.gate_type_config, dim: cfg.maf_block_dim });
    block.loadStateDict(new PrefixedSource(fx, 'params/'), { prefix: 'maf_block.' });
    const ids = cfg.diffusion.cross_attention_cond_ids;
    const cond: ConditionerOutputs = Object.fromEntries(ids.map((id) => [id, { embedding: fx.read(`inputs/${id}`), mask: fx.read(`inputs/${id}_mask`) }]));
    const r = getConditioningInputs(cond, { crossAttnCondIds: ids, mafBlock: block });
    const atol = Number(fx.metadata.atol);
    const eC = fx.read('outputs/cross_attn_cond');
    const eM = fx.read('outputs/cross_attn_mask');
    const errC = await expectClose(r.crossAttnCond!, eC, atol, 1e-4);
    expect(r.crossAttnMask!.dtype).toBe('float32');
    const errM = await expectClose(r.crossAttnMask!, eM, 0, 0);
    console.log(`maf/wrapper max abs: cross_attn_cond ${errC.toExponential(2)}, cross_attn_mask ${errM}`);

    // The same call leaks nothing; the negative flavour returns the same tensors under negative_* names.
    await expectNoLeak(() => Object.values(getConditioningInputs(cond, { crossAttnCondIds: ids, mafBlock: block })));
    const n = getConditioningInputs(cond, { crossAttnCondIds: ids, mafBlock: block, negative: true });
    await expectClose(n.negativeCrossAttnCond!, r.crossAttnCond!, 0, 0);
    expect(n.negativeGlobalCond).toBeUndefined();
    tf.dispose([eC, eM, r.crossAttnCond!, r.crossAttnMask!, n.negativeCrossAttnCond!, n.negativeCrossAttnMask!]);
    for (const c of Object.values(cond)) tf.dispose([c.embedding, c.mask]);
    block.dispose();
    fx.close();
  });

  it('without a gate: concatenates in id order, adds a sequence axis to 2-D inputs, squeezes global cond', async () => {
    const cond: ConditionerOutputs = {
      a: { embedding: tf.fill([2, 3, 4], 1), mask: tf.ones([2, 3], 'bool') },
      b: { embedding: tf.fill([2, 4], 2), mask: tf.ones([2], 'bool') },
      g1: { embedding: tf.fill([2, 1, 3], 5), mask: tf.ones([2, 1]) },
      g2: { embedding: tf.fill([2, 1, 2], 6), mask: tf.ones([2, 1]) },
    };
    const r = getConditioningInputs(cond, { crossAttnCondIds: ['b', 'a'], globalCondIds: ['g1', 'g2'] });
    expect(r.crossAttnCond!.shape).toEqual([2, 4, 4]);
    expect(Array.from(await r.crossAttnCond!.slice([0, 0, 0], [1, 4, 1]).data())).toEqual([2, 1, 1, 1]);
    expect(r.crossAttnMask!.shape).toEqual([2, 4]);
    expect(r.crossAttnMask!.dtype).toBe('bool');
    expect(r.globalCond!.shape).toEqual([2, 5]);
    expect(Array.from(await r.globalCond!.slice([0, 0], [1, 5]).data())).toEqual([5, 5, 5, 6, 6]);
    tf.dispose([r.crossAttnCond!, r.crossAttnMask!, r.globalCond!, ...Object.values(cond).flatMap((c) => [c.embedding, c.mask])]);
  });

  it('fails clearly on a missing id, a wrong MAF id count and mismatched widths', () => {
    const e = { embedding: tf.zeros([1, 2, 32]), mask: tf.ones([1, 2]) };
    const w = { embedding: tf.zeros([1, 2, 8]), mask: tf.ones([1, 2]) };
    const block = MAFBlock.fromConfig({ dim: 32, num_experts_per_modality: 2, num_heads: 2, num_fusion_layers: 1 });
    expect(() => getConditioningInputs({ a: e }, { crossAttnCondIds: ['a', 'b'] })).toThrow(/no conditioning tensor for id "b"/);
    expect(() => getConditioningInputs({ a: e, b: e }, { crossAttnCondIds: ['a', 'b'], mafBlock: block })).toThrow(/exactly 3/);
    expect(() => getConditioningInputs({ a: e, b: w }, { crossAttnCondIds: ['a', 'b'] })).toThrow(/cannot concatenate the embeddings of a, b/);
    tf.dispose([e.embedding, e.mask, w.embedding, w.mask]);
  });
});

describe('full-size MAF block', () => {
  for (const name of ['audiox-maf.assumed', 'audiox-maf-mmdit.assumed']) {
    it(`${name}: maf_block.* keys and shapes equal the manifest (no allocation)`, () => {
      const manifest = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.json`), 'utf8')) as Record<string, number[]>;
      const config = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.config.json`), 'utf8'));
      const before = tf.memory().numTensors;
      const block = MAFBlock.fromConfig(config.model.diffusion.gate_type_config);
      const ours = Object.fromEntries(Object.entries(block.parameterManifest()).map(([k, s]) => [`maf_block.${k}`, s]));
      const theirs = Object.fromEntries(Object.entries(manifest).filter(([k]) => k.startsWith('maf_block.')));
      expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
      expect(ours).toEqual(theirs);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('MultiheadAttention (torch layout)', () => {
  it('a padded key is ignored: same result as dropping it', async () => {
    const mha = new MultiheadAttention(8, 2);
    mha.initWeights(seededNormal(1, 0.3));
    const q = tf.randomNormal([1, 3, 8], 0, 1, 'float32', 7);
    const kv = tf.randomNormal([1, 5, 8], 0, 1, 'float32', 8);
    const pad = tf.tensor2d([[false, false, false, false, true]], [1, 5], 'bool');
    const masked = mha.forward(q, kv, kv, { keyPaddingMask: pad });
    const kv4 = kv.slice([0, 0, 0], [1, 4, 8]);
    const dropped = mha.forward(q, kv4, kv4);
    await expectClose(masked, dropped, 1e-6, 1e-5);
    await expectNoLeak(() => mha.forward(q, kv, kv, { keyPaddingMask: pad }));
    tf.dispose([q, kv, pad, masked, kv4, dropped]);
    mha.dispose();
  });

  it('one head with identity projections is softmax(q kᵀ/√d) v', async () => {
    const mha = new MultiheadAttention(2, 1);
    mha.initWeights((k) => {
      if (k === 'in_proj_weight') return tf.concat([tf.eye(2), tf.eye(2), tf.eye(2)], 0);
      if (k === 'out_proj.weight') return tf.eye(2);
      return tf.zeros(k === 'in_proj_bias' ? [6] : [2]);
    });
    const q = tf.tensor3d([[[1, 0]]]);
    const kv = tf.tensor3d([[[1, 0], [0, 1]]]);
    const out = mha.forward(q, kv, kv);
    const w = Math.exp(1 / Math.SQRT2) / (Math.exp(1 / Math.SQRT2) + 1);
    await expectClose(out, [w, 1 - w], 1e-6, 0);
    tf.dispose([q, kv, out]);
    mha.dispose();
  });
});
