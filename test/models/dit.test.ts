import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PrefixedSource, SafetensorsFile } from '../../src/io/safetensors.ts';
import { DiffusionTransformer, DiTWrapper, type DiTConfig } from '../../src/models/dit.ts';
import type { DiffusionCond } from '../../src/models/diffusion-types.ts';
import * as F from '../../src/nn/functional.ts';
import { FIXTURES, expectClose, expectNoLeak, seededNormal } from '../helpers.ts';

const DIT = path.join(FIXTURES, 'dit');
const MANIFESTS = path.join(FIXTURES, 'manifests');
const CASES = fs.existsSync(DIT) ? fs.readdirSync(DIT).filter((f) => f.endsWith('.safetensors')).sort() : [];

interface Loaded {
  fx: SafetensorsFile;
  model: DiTWrapper;
  args: { cfg_scale?: number; scale_phi?: number };
  inputs: Record<string, tf.Tensor>;
  atol: number;
}

function load(file: string): Loaded {
  const fx = SafetensorsFile.open(path.join(DIT, file));
  const cfg = JSON.parse(fx.metadata.config) as { diffusion: { config: DiTConfig } };
  const model = DiTWrapper.fromConfig(cfg.diffusion.config);
  model.model.loadStateDict(new PrefixedSource(fx, 'params/'));
  const inputs: Record<string, tf.Tensor> = {};
  for (const k of fx.keys().filter((k) => k.startsWith('inputs/'))) inputs[k.slice(7)] = fx.read(k);
  return { fx, model, args: JSON.parse(fx.metadata.args), inputs, atol: Number(fx.metadata.atol) };
}

function release(l: Loaded): void {
  tf.dispose(Object.values(l.inputs));
  l.model.dispose();
  l.fx.close();
}

function condOf(l: Loaded): DiffusionCond {
  const i = l.inputs;
  return {
    crossAttnCond: i.cross_attn_cond,
    crossAttnMask: i.cross_attn_mask,
    globalCond: i.global_embed,
    negativeCrossAttnCond: i.negative_cross_attn_cond,
    negativeCrossAttnMask: i.negative_cross_attn_mask,
    cfgScale: l.args.cfg_scale,
    scalePhi: l.args.scale_phi,
    rescaleCfg: true,
  };
}

/** Module path of ours → fixture intermediate name. */
const INTERMEDIATES: [string, string][] = [
  ['timestep_features', 'timestep_features'],
  ['to_timestep_embed', 'timestep_embed'],
  ['to_cond_embed', 'cond_embed'],
  ['to_global_embed', 'global_embed_proj'],
  ['preprocess_conv', 'preprocess_conv'],
  ['transformer.project_in', 'transformer.project_in'],
  ['transformer.layers.0', 'transformer.layers.0'],
  ['transformer.layers.1', 'transformer.layers.1'],
  ['transformer.project_out', 'transformer.project_out'],
  ['postprocess_conv', 'postprocess_conv'],
];

describe.each(CASES)('DiT fixture %s', (file) => {
  const l = load(file);
  afterAll(() => release(l));

  it('matches the output and every intermediate, block by block', async () => {
    const dit = l.model.model;
    const paths = INTERMEDIATES.filter(([, theirs]) => l.fx.has(`intermediates/${theirs}`)).map(([ours]) => ours);
    const { result, captures } = await dit.capture(paths, () => l.model.forward(l.inputs.x, l.inputs.t, condOf(l)));
    const report: string[] = [];
    for (const [ours, theirs] of INTERMEDIATES) {
      if (!l.fx.has(`intermediates/${theirs}`)) continue;
      expect(captures[ours], ours).toBeDefined();
      const exp = l.fx.read(`intermediates/${theirs}`);
      report.push(`${theirs} ${(await expectClose(captures[ours], exp, l.atol, 1e-4)).toExponential(2)}`);
      exp.dispose();
    }
    const exp = l.fx.read('outputs/output');
    report.push(`output ${(await expectClose(result, exp, l.atol, 1e-4)).toExponential(2)} (atol ${l.atol})`);
    console.log(`dit/${file} max abs: ${report.join(', ')}`);
    tf.dispose([exp, result, ...Object.values(captures)]);
  });

  it('reproduces batch_output (the single pass before the CFG combination)', async () => {
    const { x, t, cross_attn_cond: c, global_embed: g, negative_cross_attn_cond: neg, negative_cross_attn_mask: m } = l.inputs;
    const cfg = (l.args.cfg_scale ?? 1) !== 1;
    const out = tf.tidy(() => {
      if (!cfg) return l.model.model.forwardOnce(x as tf.Tensor3D, t as tf.Tensor1D, c as tf.Tensor3D, g);
      const uncond = neg ? (m ? neg.mul(m.cast('float32').expandDims(2)) : neg) : tf.zerosLike(c);
      return l.model.model.forwardOnce(
        tf.concat([x, x]) as tf.Tensor3D,
        tf.concat([t, t]) as tf.Tensor1D,
        tf.concat([c, uncond]) as tf.Tensor3D,
        g ? tf.concat([g, g]) : undefined,
      );
    });
    const exp = l.fx.read('intermediates/batch_output');
    await expectClose(out, exp, l.atol, 1e-4);
    tf.dispose([out, exp]);
  });

  it('ignores the cross-attention mask (quirk 2)', async () => {
    const mask = tf.zerosLike(l.inputs.cross_attn_mask);
    const a = l.model.forward(l.inputs.x, l.inputs.t, condOf(l));
    const b = l.model.forward(l.inputs.x, l.inputs.t, { ...condOf(l), crossAttnMask: mask });
    expect(await a.data()).toEqual(await b.data());
    tf.dispose([a, b, mask]);
  });

  it('leaves no tensors behind (forward, capture, load + dispose)', async () => {
    await expectNoLeak(() => l.model.forward(l.inputs.x, l.inputs.t, condOf(l)));
    const before = tf.memory().numTensors;
    const other = load(file);
    release(other);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('DiT negative conditioning', () => {
  const l = load('cfg_negative.safetensors');
  afterAll(() => release(l));

  it('applies the negative mask: masked-out negative tokens act as zeros', async () => {
    const { x, t, negative_cross_attn_cond: neg, negative_cross_attn_mask: m } = l.inputs;
    expect((await m.data()).some((v) => !v)).toBe(true); // the fixture masks some tokens
    const zeroed = tf.tidy(() => neg.mul(m.cast('float32').expandDims(2)));
    const a = l.model.forward(x, t, condOf(l));
    const b = l.model.forward(x, t, { ...condOf(l), negativeCrossAttnCond: zeroed, negativeCrossAttnMask: undefined });
    const c = l.model.forward(x, t, { ...condOf(l), negativeCrossAttnMask: undefined });
    await expectClose(a, b, 1e-6, 0);
    expect(tf.tidy(() => a.sub(c).abs().max()).dataSync()[0]).toBeGreaterThan(1e-3);
    tf.dispose([zeroed, a, b, c]);
  });
});

describe('DiT capture', () => {
  it("capture(['transformer.layers.0']) returns the block output of the fixture", async () => {
    const l = load('cfg_cross.safetensors');
    const { result, captures } = await l.model.model.capture(['transformer.layers.0'], () =>
      l.model.forward(l.inputs.x, l.inputs.t, condOf(l)),
    );
    expect(Object.keys(captures)).toEqual(['transformer.layers.0']);
    const exp = l.fx.read('intermediates/transformer.layers.0');
    await expectClose(captures['transformer.layers.0'], exp, l.atol, 1e-4);
    tf.dispose([result, exp, ...Object.values(captures)]);
    release(l);
  });
});

describe('DiT bad input', () => {
  const l = load('cfg_cross.safetensors');
  afterAll(() => release(l));
  const { x, t, cross_attn_cond: c } = l.inputs;

  it('rejects wrong io channels, cond width, t shape and batchCfg=false with clear errors', () => {
    const before = tf.memory().numTensors;
    const x7 = tf.zeros([1, 7, 24]);
    const c39 = tf.zeros([1, 10, 39]);
    const t2 = tf.zeros([2]);
    expect(() => l.model.forward(x7, t, { crossAttnCond: c })).toThrow(/x must be \[B, 8, T\], got \[1,7,24\]/);
    expect(() => l.model.forward(x, t, { crossAttnCond: c39 })).toThrow(/crossAttnCond must be \[1, S, 40\], got \[1,10,39\]/);
    expect(() => l.model.forward(x, t2, { crossAttnCond: c })).toThrow(/t must be \[1\]/);
    expect(() => l.model.forward(x, t, { crossAttnCond: c, globalCond: c })).toThrow(/global_cond_dim = 0/);
    expect(() => l.model.forward(x, t, { crossAttnCond: c, cfgScale: 3, negativeCrossAttnCond: c39 })).toThrow(/must match/);
    expect(() => l.model.forward(x, t, { crossAttnCond: c, batchCfg: false })).toThrow(/batchCfg must be true/);
    tf.dispose([x7, c39, t2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects unsupported configs', () => {
    const base: DiTConfig = { io_channels: 8, embed_dim: 64, depth: 1, num_heads: 1, transformer_type: 'continuous_transformer' };
    expect(() => new DiffusionTransformer({ ...base, transformer_type: undefined })).toThrow(/x-transformers.*not supported/);
    expect(() => new DiffusionTransformer({ ...base, patch_size: 2 })).toThrow(/patch_size = 2 is not supported/);
    expect(() => new DiffusionTransformer({ ...base, ...({ conformer: true } as object) })).toThrow(/unsupported config keys conformer/);
    expect(() => new DiffusionTransformer({ ...base, embed_dim: 32, num_heads: 2 })).toThrow(/head dim 16 < rotary dim 32/);
  });
});

describe('DiT full-size parameter manifests', () => {
  for (const name of ['audiox', 'audiox-maf.assumed']) {
    it(`${name}: model.model.* keys and shapes match exactly, without allocating`, () => {
      const config = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.config.json`), 'utf8'));
      const expected = JSON.parse(fs.readFileSync(path.join(MANIFESTS, `${name}.json`), 'utf8')) as Record<string, number[]>;
      const before = tf.memory();
      const wrapper = DiTWrapper.fromConfig(config.model.diffusion.config);
      const ours = wrapper.parameterManifest();
      const after = tf.memory();
      expect([after.numTensors, after.numBytes]).toEqual([before.numTensors, before.numBytes]);
      const theirs = Object.fromEntries(
        Object.entries(expected)
          .filter(([k]) => k.startsWith('model.model.'))
          .map(([k, s]) => [k.slice('model.'.length), s]),
      );
      expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
      for (const [k, s] of Object.entries(theirs)) expect(ours[k], k).toEqual(s);
      expect(Object.keys(ours).length).toBe(374);
    });
  }
});

describe('DiT building blocks', () => {
  it('adaLN variant builds its to_scale_shift_gate and runs', async () => {
    const m = new DiffusionTransformer({
      io_channels: 4, embed_dim: 64, depth: 1, num_heads: 2, cond_token_dim: 16,
      global_cond_type: 'adaLN', transformer_type: 'continuous_transformer',
    });
    expect(m.parameterManifest()['transformer.layers.0.to_scale_shift_gate.1.weight']).toEqual([384, 64]);
    m.initWeights(seededNormal(0, 0.1));
    const x = tf.randomNormal([1, 4, 5]);
    const t = tf.tensor1d([0.3]);
    const c = tf.randomNormal([1, 3, 16]);
    await expectNoLeak(() => {
      const y = m.forward(x, t, { crossAttnCond: c, cfgScale: 2 });
      expect(y.shape).toEqual([1, 4, 5]);
      return y;
    });
    tf.dispose([x, t, c]);
    m.dispose();
  });
});
