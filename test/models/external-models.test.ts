// Conditioners declare the models they run besides the checkpoint; loadModel loads and attaches them from
// those declarations (no instanceof on conditioner classes), and conditioners read the host's by kind.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AudioXConfig } from '../../src/models/config.ts';
import type { ConditionerHost } from '../../src/models/conditioners/conditioner.ts';
import { T5Conditioner } from '../../src/models/conditioners/text/t5.ts';
import { syncFeatures } from '../../src/models/conditioners/video/input.ts';
import type { VideoConditionerSizes } from '../../src/models/conditioners/video/clip.ts';
import { DEMO_DIR } from '../../src/models/demo.ts';
import { Synchformer } from '../../src/models/synchformer/synchformer.ts';
import { T5EncoderModel } from '../../src/models/t5.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';
import type { Module } from '../../src/nn/module.ts';
import { loadModel } from '../../src/pipeline/load.ts';

const smallT5 = () => T5EncoderModel.fromConfig({ vocab_size: 8, d_model: 16, d_kv: 4, d_ff: 8, num_layers: 1, num_heads: 4 });

describe('declared external models', () => {
  it('the demo config: the sync video conditioner needs a Synchformer, the T5 one a text encoder, the mel one nothing', () => {
    const config = JSON.parse(fs.readFileSync(`${DEMO_DIR}/config.json`, 'utf8')) as AudioXConfig;
    const w = createModelFromConfig(config);
    try {
      const needs = Object.fromEntries([...w.conditioner.conditioners.entries].map(([id, c]) => [id, c.externalModels ?? []]));
      expect(needs).toEqual({ video_prompt: ['synchformer'], text_prompt: ['text-encoder'], audio_prompt: [] });
    } finally {
      w.dispose();
    }
  });

  it('T5Conditioner takes a T5 encoder through attachExternal and refuses anything else', () => {
    const c = new T5Conditioner({ output_dim: 16, dim: 16 });
    const s = new Synchformer();
    expect(() => c.attachExternal('text-encoder', { module: s })).toThrow(/T5Conditioner: cannot attach a text-encoder \(Synchformer\); it runs a T5 encoder/);
    expect(() => c.attachExternal('synchformer', { module: smallT5() })).toThrow(/cannot attach a synchformer/);
    const enc = smallT5();
    c.attachExternal('text-encoder', { module: enc });
    expect(() => c.forward(['x'])).toThrow(/no tokenizer attached/); // attached, without a tokenizer
    c.dispose();
    s.dispose();
  });

  it('the sync video conditioner reads the host Synchformer by kind and refuses a module of another type', async () => {
    const cond = { sizes: { sync_tokens: 8, temporal_dim: 16 } as VideoConditionerSizes }; // all syncFeatures reads of it
    const host = (m: Module | null): ConditionerHost => ({ sampleRate: 44100, videoFps: 5, externalModel: () => m });
    const opts = { seekTime: 0, referenceQuirks: false };
    const zeros = await syncFeatures(host(null), cond, { video: 'missing.mp4' }, opts);
    expect(zeros.shape).toEqual([1, 8, 16]); // none loaded: zeros, as the reference UI
    zeros.dispose();
    const t5 = smallT5();
    await expect(syncFeatures(host(t5), cond, { video: 'missing.mp4' }, opts)).rejects.toThrow(/host's synchformer is a T5EncoderModel, not a Synchformer/);
    t5.dispose();
  });

  it('the loaded demo model exposes its Synchformer by kind (text encoders sit in their conditioners)', async () => {
    const model = await loadModel('demo');
    try {
      expect(model.externalModel('synchformer')).toBe(model.synchformer);
      expect(model.synchformer).toBeInstanceOf(Synchformer);
      expect(model.externalModel('text-encoder')).toBeNull();
    } finally {
      model.dispose();
    }
  });
});
