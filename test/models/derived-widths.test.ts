// Widths the reference hard-codes (768) come from the config here: the MAF block and the mel conditioner's
// proj_features take cond_dim, the CLIP tail takes the tower's hidden_size. Full-size configs still get 768
// (see also test/cli-params.test.ts, which compares whole manifests); the shrunk pipeline/maf_mel fixture
// loads into a model built from its config alone.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { CLIPConditioner } from '../../src/models/conditioners/video/clip.ts';
import { AudioMelConditioner } from '../../src/models/conditioners/audio/mel.ts';
import { validateConfig, type AudioXConfig } from '../../src/models/config.ts';
import { createModelFromConfig, mafDim } from '../../src/models/wrapper.ts';
import { withFakedClipSizes } from '../../src/parity/runners/pipeline-video.ts';
import { fixture, fixtureJson } from '../helpers.ts';

const RELEASED = ['audiox-maf.assumed', 'audiox-maf-mmdit.assumed'];

describe('MAF width', () => {
  it.each(RELEASED)('%s: 768 (= cond_dim), maf_block.* shapes as in the manifest', (name) => {
    const config = validateConfig(fixtureJson(`manifests/${name}.config.json`), name);
    expect(mafDim(config)).toBe(768);
    const manifest = fixtureJson(`manifests/${name}.json`);
    const before = tf.memory().numTensors;
    const w = createModelFromConfig(config);
    const ours = Object.entries(w.parameterManifest()).filter(([k]) => k.startsWith('maf_block.'));
    expect(ours.length).toBeGreaterThan(0);
    for (const [k, shape] of ours) expect([k, shape]).toEqual([k, manifest[k]]);
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });

  it('follows cond_dim; gate_type_config.dim still overrides it', () => {
    const base = fixtureJson<AudioXConfig>('manifests/audiox-maf.assumed.config.json');
    const small = structuredClone(base);
    small.model.conditioning.cond_dim = 48;
    expect(mafDim(small)).toBe(48);
    (small.model.diffusion.gate_type_config as { dim?: number }).dim = 24;
    expect(mafDim(small)).toBe(24);
  });
});

describe('mel conditioner width', () => {
  const cfg = { mel_spec_type: 'mel_features', n_mel_channels: 24 };
  it('proj_features gives output_dim; proj_out (never applied) keeps the reference 768 input', () => {
    const m = new AudioMelConditioner({ ...cfg, output_dim: 32 });
    expect(m.parameterManifest()).toEqual({
      'proj_features.weight': [32, 24],
      'proj_features.bias': [32],
      'proj_out.weight': [32, 768],
      'proj_out.bias': [32],
    });
    m.dispose();
  });
  it('full size (output_dim 768): Linear(n_mels, 768), no proj_out', () => {
    const m = new AudioMelConditioner({ ...cfg, n_mel_channels: 256, output_dim: 768 });
    expect(m.parameterManifest()).toEqual({ 'proj_features.weight': [768, 256], 'proj_features.bias': [768] });
    m.dispose();
  });
  it('_dim (demo) replaces the nominal width everywhere', () => {
    const m = new AudioMelConditioner({ ...cfg, output_dim: 32, _dim: 16 });
    expect(m.parameterManifest()).toEqual({
      'proj_features.weight': [16, 24],
      'proj_features.bias': [16],
      'proj_out.weight': [32, 16],
      'proj_out.bias': [32],
    });
    m.dispose();
  });
});

describe('CLIP tail width', () => {
  it("defaults to the CLIP tower's hidden_size (768 for ViT-B/32)", () => {
    const tower = { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 64, patch_size: 32, projection_dim: 8, layer_norm_eps: 1e-5 };
    const small = new CLIPConditioner(16, {}, { clip_vision: tower, frames: 2, sa_depth: 1, num_heads: 2, dim_head: 8 });
    expect(small.sizes.temporal_dim).toBe(16);
    expect(small.sizes.mlp_dim).toBe(64);
    expect(small.parameterManifest()['Temp_pos_embedding']).toEqual([1, 2, 16]);
    small.dispose();
    const full = new CLIPConditioner(768);
    expect(full.sizes.temporal_dim).toBe(768);
    full.dispose();
  });
});

describe('pipeline/maf_mel', () => {
  it('a model built from its config (shrunk CLIP tail sizes from the notes) has exactly the fixture parameters', () => {
    const fx = fixture('pipeline/maf_mel');
    const config = validateConfig(withFakedClipSizes(fx, fx.config), fx.rel);
    expect(mafDim(config)).toBe(32);
    const w = createModelFromConfig(config);
    const ours = w.parameterManifest();
    const theirs = Object.fromEntries(fx.names('params').map((n) => [n, fx.file.entry(`params/${n}`).shape]));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
    expect(ours).toEqual(theirs);
    w.dispose();
    fx.file.close();
  });
});
