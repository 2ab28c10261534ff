// CLIP vision tower, SA_Transformer and the CLIP video conditioners (clip / clip-with-sync-w-empty-feat).
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fixture } from '../../src/parity/types.ts';
import { CLIP_MEAN, CLIP_STD, CLIP_VIT_B32, CLIPVisionModelWithProjection, clipPixelValues, type CLIPVisionConfig } from '../../src/models/clip.ts';
import {
  CLIPConditioner,
  CLIPWithSyncWithEmptyFeatureConditioner,
  videoConditionerFromConfig,
  type ConditionerEntry,
  type VideoConditioner,
  type VideoConditionerSizes,
} from '../../src/models/conditioners/video/clip.ts';
import { SA_Transformer } from '../../src/models/temporal-transformer.ts';
import { expectClose, expectNoLeak, fixture, fixtureJson, seededNormal } from '../helpers.ts';
import { fixtureSizes } from '../../src/parity/runners/conditioners/clip.ts';


/** Max |a − e| after asserting the fixture tolerance on an intermediate. */
async function checkIntermediate(actual: tf.Tensor, expected: tf.Tensor, name: string, atol: number): Promise<number> {
  const err = await expectClose(actual, expected, atol, 1e-4);
  console.log(`  intermediate ${name}: max_abs ${err.toExponential(2)}`);
  return err;
}

describe('CLIPVisionModelWithProjection (clip/vision)', () => {
  let fx: Fixture;
  let model: CLIPVisionModelWithProjection;
  beforeAll(() => {
    fx = fixture('clip/vision.safetensors');
    model = CLIPVisionModelWithProjection.fromConfig(fx.config.clip_vision_config as CLIPVisionConfig);
    model.loadStateDict(fx.params);
  });
  afterAll(() => {
    model.dispose();
    fx.file.close();
  });

  it('matches last_hidden_state, image_embeds and the intermediates', async () => {
    const pixels = fx.tensor('inputs/pixel_values') as tf.Tensor4D;
    const paths = ['vision_model.embeddings', 'vision_model.pre_layrnorm', 'vision_model.encoder.layers.0', 'vision_model.encoder.layers.1'];
    const { result, captures } = await model.capture(paths, () => model.forward(pixels));
    for (const p of paths) {
      const exp = fx.tensor(`intermediates/${p.replace('vision_model.', '')}`);
      await checkIntermediate(captures[p], exp, p, fx.atol);
      exp.dispose();
    }
    const lhs = fx.tensor('outputs/last_hidden_state');
    const emb = fx.tensor('outputs/image_embeds');
    console.log(`clip/vision last_hidden_state max_abs ${(await expectClose(result.lastHiddenState, lhs, fx.atol, fx.rtol)).toExponential(2)}`);
    console.log(`clip/vision image_embeds max_abs ${(await expectClose(result.imageEmbeds, emb, fx.atol, fx.rtol)).toExponential(2)}`);
    tf.dispose([pixels, lhs, emb, result.lastHiddenState, result.imageEmbeds, ...Object.values(captures)]);
  });

  it('patch embedding equals a stride-P conv2d', async () => {
    const pixels = tf.randomNormal([2, 3, 32, 32], 0, 1, 'float32', 7) as tf.Tensor4D;
    const w = model.vision_model.embeddings.patch_embedding.weight.value; // [D, C, P, P]
    const ours = model.vision_model.embeddings.patch_embedding.forward(pixels);
    const conv = tf.conv2d(pixels.transpose([0, 2, 3, 1]) as tf.Tensor4D, w.transpose([2, 3, 1, 0]) as tf.Tensor4D, 8, 'valid'); // [N, 4, 4, D]
    await expectClose(ours, conv.reshape([2, 16, 32]), 1e-5, 1e-4);
    tf.dispose([pixels, ours, conv]);
  });

  it('does not leak tensors', async () => {
    const pixels = tf.zeros([1, 3, 32, 32]) as tf.Tensor4D;
    await expectNoLeak(() => {
      const o = model.forward(pixels);
      return [o.lastHiddenState, o.imageEmbeds];
    });
    pixels.dispose();
  });

  it('rejects pixel_values of the wrong size', () => {
    const bad = tf.zeros([1, 3, 30, 32]) as tf.Tensor4D;
    expect(() => model.forward(bad)).toThrow(/expected pixel_values \[N, 3, 32, 32\], got \[1,3,30,32\]/);
    bad.dispose();
  });

  it('full size (ViT-B/32) has the HF keys and shapes of the AudioX manifest', () => {
    const manifest = fixtureJson('manifests/audiox.json');
    const prefix = 'conditioner.conditioners.video_prompt.visual_encoder_model.';
    const expected = Object.fromEntries(Object.entries(manifest).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    const before = tf.memory().numTensors;
    const m = CLIPVisionModelWithProjection.fromConfig();
    expect(m.parameterManifest({ optional: false })).toEqual(expected);
    expect(m.parameterManifest()['vision_model.embeddings.position_ids']).toEqual([1, 50]); // optional buffer
    expect(m.numTokens).toBe(50);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('clipPixelValues', () => {
  it('divides by 255 then applies the CLIP mean/std per channel', async () => {
    const px = tf.tensor([255, 0, 128], [3, 1, 1], 'int32');
    const want = [(1 - CLIP_MEAN[0]) / CLIP_STD[0], (0 - CLIP_MEAN[1]) / CLIP_STD[1], (128 / 255 - CLIP_MEAN[2]) / CLIP_STD[2]];
    const out = clipPixelValues(px);
    await expectClose(out, want, 1e-6, 1e-6);
    tf.dispose([px, out]);
  });

  it('reproduces the conditioner fixture pixel_values', async () => {
    const fx = fixture('conditioners/clip_tail.safetensors');
    const video = fx.tensor('inputs/video'); // [B, T, 3, H, W]
    const [b, t, c, h, w] = video.shape;
    const out = clipPixelValues(video).reshape([b * t, c, h, w]);
    const exp = fx.tensor('intermediates/pixel_values');
    console.log(`  pixel_values max_abs ${(await expectClose(out, exp, 1e-6, 1e-5)).toExponential(2)}`);
    tf.dispose([video, out, exp]);
    fx.file.close();
  });

  it('rejects frames without 3 channels', () => {
    const bad = tf.zeros([2, 4, 6, 6]);
    expect(() => clipPixelValues(bad)).toThrow(/expected frames \[\.\.\., 3, H, W\]/);
    bad.dispose();
  });
});

describe('SA_Transformer', () => {
  it('has the reference key names and to_out only when projecting', () => {
    const keys = Object.keys(new SA_Transformer({ dim: 8, depth: 1, heads: 2, dim_head: 4, mlp_dim: 16 }).parameterManifest()).sort();
    expect(keys).toEqual([
      'layers.0.0.fn.to_out.0.bias',
      'layers.0.0.fn.to_out.0.weight',
      'layers.0.0.fn.to_qkv.weight',
      'layers.0.0.norm.bias',
      'layers.0.0.norm.weight',
      'layers.0.1.fn.net.0.bias',
      'layers.0.1.fn.net.0.weight',
      'layers.0.1.fn.net.3.bias',
      'layers.0.1.fn.net.3.weight',
      'layers.0.1.norm.bias',
      'layers.0.1.norm.weight',
      'norm.bias',
      'norm.weight',
    ]);
    // heads 1 and dim_head == dim: to_out is nn.Identity in the reference.
    const id = new SA_Transformer({ dim: 8, depth: 1, heads: 1, dim_head: 8, mlp_dim: 16 }).parameterManifest();
    expect(Object.keys(id).some((k) => k.includes('to_out'))).toBe(false);
  });

  it('one head over a single token: attention returns v, so the block is hand-computable', async () => {
    // With N = 1 the softmax is 1: attn(x) = to_out(v). Build dim 2, heads 1, dim_head 2 (to_out = identity).
    const m = new SA_Transformer({ dim: 2, depth: 1, heads: 1, dim_head: 2, mlp_dim: 2 });
    const vals: Record<string, number[]> = {
      'layers.0.0.norm.weight': [1, 1],
      'layers.0.0.norm.bias': [0, 0],
      'layers.0.0.fn.to_qkv.weight': [1, 0, 0, 1, 1, 0, 0, 1, 2, 0, 0, 3], // v = [2a, 3b]
      'layers.0.1.norm.weight': [1, 1],
      'layers.0.1.norm.bias': [0, 0],
      'layers.0.1.fn.net.0.weight': [0, 0, 0, 0],
      'layers.0.1.fn.net.0.bias': [0, 0],
      'layers.0.1.fn.net.3.weight': [0, 0, 0, 0],
      'layers.0.1.fn.net.3.bias': [0.5, -0.5],
      'norm.weight': [1, 1],
      'norm.bias': [0, 0],
    };
    m.initWeights((k, p) => tf.tensor(vals[k], p.shape));
    // x = [3, 1]: LN → [1, −1] (eps-corrected); v = [2, −3]; x + v = [5, −2]; + FF bias → [5.5, −2.5]; LN → ±1.
    const ln = 1 / Math.sqrt(1 + 1e-5);
    const x1 = [3 + 2 * ln + 0.5, 1 - 3 * ln - 0.5];
    const mean = (x1[0] + x1[1]) / 2;
    const sd = Math.sqrt(((x1[0] - mean) ** 2 + (x1[1] - mean) ** 2) / 2 + 1e-5);
    const x = tf.tensor3d([[[3, 1]]]);
    const y = m.forward(x);
    await expectClose(y, [(x1[0] - mean) / sd, (x1[1] - mean) / sd], 1e-5, 1e-5);
    tf.dispose([x, y]);
    m.dispose();
  });
});

const CONDITIONER_CASES = [
  { rel: 'conditioners/clip_tail.safetensors', cls: CLIPConditioner, sync: false },
  { rel: 'conditioners/clip_sync_tail.safetensors', cls: CLIPWithSyncWithEmptyFeatureConditioner, sync: true },
];

function entryOf(fx: Fixture): ConditionerEntry {
  return (fx.config.conditioning as { configs: ConditionerEntry[] }).configs[0];
}

for (const c of CONDITIONER_CASES) {
  describe(`${c.cls.name} (${c.rel})`, () => {
    let fx: Fixture;
    let m: VideoConditioner;
    const inputs: Record<string, tf.Tensor> = {};
    beforeAll(() => {
      fx = fixture(c.rel);
      m = videoConditionerFromConfig(entryOf(fx), 768, fixtureSizes(fx));
      m.loadStateDict(fx.params);
      for (const n of fx.names('inputs')) inputs[n] = fx.tensor(`inputs/${n}`);
    });
    afterAll(() => {
      m.dispose();
      tf.dispose(Object.values(inputs));
      fx.file.close();
    });
    const run = () => m.forwardFromHidden(inputs.video, inputs.clip_last_hidden_state, inputs.video_sync_frames);

    it('is built as the right class', () => {
      expect(m).toBeInstanceOf(c.cls);
    });

    it('matches embedding, mask and the intermediates', async () => {
      const paths = ['Temp_transformer', 'proj', ...(c.sync ? ['proj_sync'] : [])];
      const { result, captures } = await m.capture(paths, run);
      const names: Record<string, string> = { Temp_transformer: 'temp_transformer_out', proj: 'proj_out', proj_sync: 'proj_sync_out' };
      for (const p of paths) {
        const exp = fx.tensor(`intermediates/${names[p]}`);
        await checkIntermediate(captures[p], exp, names[p], fx.atol);
        exp.dispose();
      }
      const [b, t] = inputs.video.shape;
      const tin = m.temporalInput(inputs.clip_last_hidden_state as tf.Tensor3D, b, t);
      const tinExp = fx.tensor('intermediates/temp_transformer_in');
      await checkIntermediate(tin, tinExp, 'temp_transformer_in', fx.atol);
      const emb = fx.tensor('outputs/embedding');
      const mask = fx.tensor('outputs/mask');
      console.log(`${c.rel} embedding max_abs ${(await expectClose(result.embedding, emb, fx.atol, fx.rtol)).toExponential(2)}`);
      await expectClose(result.mask, mask, 0, 0);
      tf.dispose([tin, tinExp, emb, mask, result.embedding, result.mask, ...Object.values(captures)]);
    });

    it('replaces an all-zero video by the learned empty feature (quirk 10), bit-exactly', async () => {
      expect(fx.args.zero_items).toEqual([1]);
      const { embedding, mask } = run();
      const item1 = embedding.slice([1, 0, 0], [1, -1, -1]);
      expect(Array.from(await item1.data())).toEqual(Array.from(await m.empty_visual_feat.value.data()));
      const item0 = embedding.slice([0, 0, 0], [1, -1, -1]);
      expect(Array.from(await item0.data())).not.toEqual(Array.from(await m.empty_visual_feat.value.data()));
      tf.dispose([embedding, mask, item0, item1]);
    });

    it('does not leak tensors', async () => {
      await expectNoLeak(() => {
        const o = run();
        return [o.embedding, o.mask];
      });
    });

    it('rejects bad shapes with clear errors', () => {
      const v3 = inputs.video.slice([0, 0, 0, 0, 0], [2, 3, 3, 6, 6]);
      const h3 = inputs.clip_last_hidden_state.slice([0, 0, 0], [6, 5, 32]);
      expect(() => m.forwardFromHidden(v3, h3, inputs.video_sync_frames)).toThrow(/3 frames per item, but Temp_pos_embedding holds exactly 4/);
      expect(() => m.forwardFromHidden(inputs.video, h3, inputs.video_sync_frames)).toThrow(/expected last_hidden_state \[8, 5, 32\]/);
      const flat = inputs.video.reshape([8, 3, 6, 6]);
      expect(() => m.forwardFromHidden(flat, inputs.clip_last_hidden_state)).toThrow(/expected video frames \[B, T, 3, H, W\]/);
      expect(() => m.forward(inputs.video)).toThrow(/without its CLIP tower/);
      if (c.sync) {
        const badSync = tf.zeros([2, 200, 32]);
        expect(() => m.forwardFromHidden(inputs.video, inputs.clip_last_hidden_state, badSync)).toThrow(/expected sync features \[2, 240, D\]/);
        badSync.dispose();
      } else {
        const sync = tf.zeros([2, 240, 32]);
        expect(() => m.forwardFromHidden(inputs.video, inputs.clip_last_hidden_state, sync)).toThrow(/takes no sync features/);
        sync.dispose();
      }
      tf.dispose([v3, h3, flat]);
    });
  });
}

describe('video conditioner with its CLIP tower (tiny, random weights)', () => {
  const clipCfg: Partial<CLIPVisionConfig> = {
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    image_size: 16,
    patch_size: 8,
    projection_dim: 8,
  };
  const sizes: Partial<VideoConditionerSizes> = { temporal_dim: 16, frames: 3, out_features: 4, sa_depth: 1, num_heads: 2, dim_head: 8, sync_tokens: 12, clip_vision: { ...CLIP_VIT_B32, ...clipCfg } };

  it('forward = CLIP(last_hidden_state) then the tail; zero video → empty feature; no leaks', async () => {
    const m = new CLIPWithSyncWithEmptyFeatureConditioner(768, {}, sizes);
    m.initWeights(seededNormal(12, 0.3));
    expect(m.sizes.tokens).toBe(5);
    const video = tf.tidy(() => {
      const v = tf.randomUniform([2, 3, 3, 16, 16], 0, 256, 'int32', 3);
      return tf.concat([v.slice([0, 0, 0, 0, 0], [1, 3, 3, 16, 16]), tf.zeros([1, 3, 3, 16, 16], 'int32')], 0);
    });
    const sync = tf.randomNormal([2, 12, 16], 0, 1, 'float32', 5);
    const full = m.forward(video, sync);
    const hidden = tf.tidy(() => m.visual_encoder_model!.lastHiddenState(clipPixelValues(video).reshape([6, 3, 16, 16]) as tf.Tensor4D));
    const tail = m.forwardFromHidden(video, hidden, sync);
    await expectClose(full.embedding, tail.embedding, 0, 0);
    const item1 = full.embedding.slice([1, 0, 0], [1, -1, -1]);
    expect(Array.from(await item1.data())).toEqual(Array.from(await m.empty_visual_feat.value.data()));
    // A nearly black video (one pixel at 1) is not "empty" (exact-zero test).
    const almost = tf.tidy(() => tf.zeros([1, 3, 3, 16, 16], 'int32').add(tf.oneHot([5], 16 * 16 * 3 * 3, 1, 0, 'int32').reshape([1, 3, 3, 16, 16])));
    const o2 = m.forward(almost);
    expect(Array.from(await o2.embedding.data())).not.toEqual(Array.from(await m.empty_visual_feat.value.data()));
    await expectNoLeak(() => {
      const o = m.forward(video, sync);
      return [o.embedding, o.mask];
    });
    tf.dispose([video, sync, hidden, full.embedding, full.mask, tail.embedding, tail.mask, item1, almost, o2.embedding, o2.mask]);
    m.dispose();
  });

  it('rejects a CLIP tower whose token grid does not match the tail', () => {
    expect(() => new CLIPConditioner(768, {}, { ...sizes, tokens: 7 })).toThrow(/CLIP tower gives 5 tokens × 16, but the tail expects 7 × 16/);
  });
});

describe('full-size video conditioners vs the released manifests (no allocation)', () => {
  const cases = [
    { manifest: 'audiox.json', config: 'audiox.config.json', type: 'clip' },
    { manifest: 'audiox-maf.assumed.json', config: 'audiox-maf.assumed.config.json', type: 'clip-with-sync-w-empty-feat' },
    { manifest: 'audiox-maf-mmdit.assumed.json', config: 'audiox-maf-mmdit.assumed.config.json', type: 'clip-with-sync-w-empty-feat' },
  ];
  for (const c of cases) {
    it(`${c.manifest}: conditioner.conditioners.video_prompt.*`, () => {
      const before = tf.memory().numTensors;
      const manifest = fixtureJson(`manifests/${c.manifest}`);
      const config = fixtureJson<{
        model: { conditioning: { cond_dim: number; configs: ConditionerEntry[] } };
      }>(`manifests/${c.config}`);
      const entry = config.model.conditioning.configs.find((e) => e.id === 'video_prompt')!;
      expect(entry.type).toBe(c.type);
      const m = videoConditionerFromConfig(entry, config.model.conditioning.cond_dim);
      const prefix = 'conditioner.conditioners.video_prompt.';
      const expected = Object.fromEntries(Object.entries(manifest).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
      expect(m.parameterManifest({ optional: false })).toEqual(expected);
      expect(m.sizes.frames * m.sizes.tokens).toBe(2500);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('CLIPConditioner forces out_features 128, the sync variant honours it (quirk 25)', () => {
    expect(new CLIPConditioner(768, { out_features: 64 }).sizes.out_features).toBe(128);
    expect(new CLIPWithSyncWithEmptyFeatureConditioner(768, { out_features: 64 }).sizes.out_features).toBe(64);
    expect(new CLIPConditioner(768, { video_fps: 2 }).parameterManifest()['proj.weight']).toEqual([128, 1000]);
    expect(() => videoConditionerFromConfig({ id: 'v', type: 't5' }, 768)).toThrow(/not a CLIP video conditioner type/);
    expect(() => new CLIPConditioner(768, { clip_model_name: 'clip-vit-large' })).toThrow(/unknown clip model name/);
    // The reference's Conditioner base adds an (unused) proj_out when output_dim ≠ 768.
    expect(new CLIPConditioner(512).parameterManifest()['proj_out.weight']).toEqual([512, 768]);
  });
});
