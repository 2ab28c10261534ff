// Synchformer / MotionFormer video features (docs/REFERENCE.md §6).
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fixture } from '../../src/parity/types.ts';
import { Synchformer, type SynchformerVitOverrides } from '../../src/models/synchformer/synchformer.ts';
import { encodeVideoWithSync, prepareSyncFrames, segmentWorkingBytes, syncFeatureBytes, syncSegmentCount } from '../../src/models/synchformer/features.ts';
import { MOTIONFORMER_DIVIDED_224_16X4 } from '../../src/models/synchformer/motionformer.ts';
import { WASM_BUDGET, budgetOf } from '../../src/backend/index.ts';
import { expectClose, expectNoLeak, fixture, fixtureJson } from '../helpers.ts';

describe('Synchformer encode_video_with_sync (synchformer/encode_video_with_sync)', () => {
  let fx: Fixture;
  let model: Synchformer;
  let video: tf.Tensor;
  beforeAll(() => {
    fx = fixture('synchformer/encode_video_with_sync.safetensors');
    model = Synchformer.fromVitOverrides(fx.config.VIT_overrides as SynchformerVitOverrides);
    model.load(fx.params);
    video = fx.tensor('inputs/video'); // F16 in the file (exact), float32 here
  });
  afterAll(() => {
    model.dispose();
    video.dispose();
    fx.file.close();
  });

  it('matches the features and the per-chunk intermediates', async () => {
    expect(video.dtype).toBe('float32');
    const paths = ['vfeat_extractor', 'vfeat_extractor.patch_embed_3d', 'vfeat_extractor.blocks.0', 'vfeat_extractor.blocks.1', 'vfeat_extractor.spatial_attn_agg'];
    const { result, captures } = await model.capture(paths, () => encodeVideoWithSync(model, video, { batchSize: -1 }));
    // Fixture `name.k` = k-th call of the hook; ours: `vfeat_extractor.name` then `.1`, `.2`, …
    const ours = (name: string, k: number) => {
      const base = name === 'synchformer_call' ? 'vfeat_extractor' : `vfeat_extractor.${name}`;
      return captures[k ? `${base}.${k}` : base];
    };
    for (const n of fx.names('intermediates')) {
      const [, name, k] = /^(.*)\.(\d+)$/.exec(n)!;
      const exp = fx.tensor(`intermediates/${n}`);
      const got = ours(name, Number(k)).reshape(exp.shape);
      const err = await expectClose(got, exp, fx.atol, 1e-4);
      console.log(`  intermediate ${n}: max_abs ${err.toExponential(2)}`);
      tf.dispose([exp, got]);
    }
    const exp = fx.tensor('outputs/features');
    console.log(`synchformer features max_abs ${(await expectClose(result, exp, fx.atol, fx.rtol)).toExponential(2)}`);
    tf.dispose([exp, result, ...Object.values(captures)]);
  });

  it('gives the same features whatever the segment batch size', async () => {
    const ref = encodeVideoWithSync(model, video, { batchSize: -1 });
    const b3 = encodeVideoWithSync(model, video, { batchSize: 3 });
    const b2 = encodeVideoWithSync(model, video, { batchSize: 2 });
    await expectClose(b3, ref, 1e-6, 1e-5);
    await expectClose(b2, ref, 1e-6, 1e-5);
    tf.dispose([ref, b3, b2]);
  });

  it('orders a batch as (b s): item 1 of a batch equals item 1 alone', async () => {
    const first = video.slice([0, 0, 0, 0, 0], [1, 24, 3, 224, 224]); // 2 segments
    const second = video.slice([0, 8, 0, 0, 0], [1, 24, 3, 224, 224]);
    const both = tf.concat([first, second], 0);
    const progress: number[] = [];
    const batched = encodeVideoWithSync(model, both, { batchSize: 3, onProgress: (d) => progress.push(d) });
    expect(batched.shape).toEqual([2, 16, 32]);
    expect(progress).toEqual([3, 4]);
    const alone = encodeVideoWithSync(model, second);
    const item1 = batched.slice([1, 0, 0], [1, 16, 32]);
    await expectClose(item1, alone, 1e-6, 1e-5);
    // Segment 1 of the first item (frames 8..23) is segment 0 of the second (frames 8..23).
    const s1 = batched.slice([0, 8, 0], [1, 8, 32]);
    const s0 = batched.slice([1, 0, 0], [1, 8, 32]);
    await expectClose(s1, s0, 1e-6, 1e-5);
    tf.dispose([first, second, both, batched, alone, item1, s1, s0]);
  });

  it('does not leak tensors', async () => {
    await expectNoLeak(() => encodeVideoWithSync(model, video, { batchSize: 2 }));
  });

  it('rejects bad inputs with clear errors', () => {
    const small = tf.zeros([1, 16, 3, 112, 112]);
    expect(() => encodeVideoWithSync(model, small)).toThrow(/expected video \[B, T, 3, 224, 224\], got \[1,16,3,112,112\]/);
    const short = video.slice([0, 0, 0, 0, 0], [1, 15, 3, 224, 224]);
    expect(() => encodeVideoWithSync(model, short)).toThrow(/15 frames is fewer than one 16-frame segment/);
    expect(() => encodeVideoWithSync(model, video, { batchSize: 0 })).toThrow(/batchSize must be a positive integer or -1/);
    const seg = video.slice([0, 0, 0, 0, 0], [1, 8, 3, 224, 224]);
    expect(() => model.vfeat_extractor.forward(seg as tf.Tensor5D)).toThrow(/expected segments \[N, 16, 3, 224, 224\]/);
    tf.dispose([small, short, seg]);
  });
});

describe('Synchformer full size', () => {
  it('matches manifests/synchformer.json without allocating', () => {
    const before = tf.memory().numTensors;
    const manifest = fixtureJson('manifests/synchformer.json');
    const m = new Synchformer();
    expect(m.parameterManifest()).toEqual(manifest);
    expect(m.vfeat_extractor.positions).toBe(196);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('10 s at 25 fps → 30 segments → 240 tokens', () => {
    expect(syncSegmentCount(250)).toBe(30);
    expect(syncSegmentCount(250) * MOTIONFORMER_DIVIDED_224_16X4.temporal_resolution).toBe(240);
    expect(syncSegmentCount(32)).toBe(3);
    expect(syncSegmentCount(15)).toBe(0);
  });

  // The planner's estimate against the peak tf.memory() sees, at the fixture's width and at full size (random
  // weights, one segment: ≈ 10 s on wasm + BLAS, ≈ 55 s without the addon).
  it.each([
    ['the fixture config, 24 frames', 24, false],
    ['full size, 16 frames', 16, true],
  ])("the sync branch's measured peak stays within the planner's estimate: %s", { timeout: 300_000 }, async (_, frames, full) => {
    let model: Synchformer;
    if (full) {
      model = new Synchformer();
      model.initWeights((_, p) => (p.dtype === 'int32' ? tf.zeros(p.shape, 'int32') : tf.randomNormal(p.shape, 0, 0.02, 'float32', 3)));
    } else {
      const fx = fixture('synchformer/encode_video_with_sync.safetensors');
      model = Synchformer.fromVitOverrides(fx.config.VIT_overrides as SynchformerVitOverrides);
      model.load(fx.params);
      fx.file.close();
    }
    // As the video conditioner feeds it: int32 frames → normalised → encoded, one segment per call.
    const raw = tf.zeros([1, frames, 3, 224, 224], 'int32');
    const base = tf.memory().numBytes;
    const info = await tf.profile(() => {
      const x = prepareSyncFrames(raw);
      const f = encodeVideoWithSync(model, x);
      x.dispose();
      return f;
    });
    const peak = info.peakBytes - base;
    const estimate = syncFeatureBytes(model.vfeat_extractor.config, frames);
    console.log(`sync branch over ${frames} frames: peak ${(peak / 2 ** 20).toFixed(1)} MiB, estimate ${(estimate / 2 ** 20).toFixed(1)} MiB`);
    expect(peak).toBeLessThanOrEqual(estimate);
    expect(peak).toBeGreaterThan(0.8 * estimate); // a tight bound, not a loose one
    tf.dispose([info.result as tf.Tensor, raw]);
    model.dispose();
  });

  it('needs over 100 MiB of working memory per segment', () => {
    expect(segmentWorkingBytes(MOTIONFORMER_DIVIDED_224_16X4)).toBeGreaterThan(100 * 2 ** 20);
  });

  it('refuses a segment batch that cannot fit the wasm heap, before computing anything', () => {
    const per = segmentWorkingBytes(MOTIONFORMER_DIVIDED_224_16X4);
    expect(30 * per).toBeGreaterThan(WASM_BUDGET);
    const m = new Synchformer(); // weights never loaded: the plan check must come first
    const x = tf.zeros([1, 250, 3, 224, 224]);
    const budget = budgetOf('wasm');
    expect(() => encodeVideoWithSync(m, x, { batchSize: 30, budget })).toThrow(/Synchformer \(30 segment\(s\) per call\) needs .* exceeds the wasm backend's budget/);
    m.budget = budget; // as loadModel hands it down
    expect(() => encodeVideoWithSync(m, x, { batchSize: 30 })).toThrow(/exceeds the wasm backend's budget of 3\.50 GiB \(the wasm heap is 4 GiB/);
    x.dispose();
  });
});

describe('prepareSyncFrames (§6.1)', () => {
  it('int32 (uint8 values) → /255 → (x − 0.5)/0.5; float input is taken as [0, 1]', async () => {
    const u8 = tf.tidy(() => tf.zeros([1, 3, 224, 224], 'int32').add(tf.tensor([0, 255, 51], [1, 3, 1, 1], 'int32')));
    const out = prepareSyncFrames(u8);
    expect(out.shape).toEqual([1, 1, 3, 224, 224]);
    const px = out.slice([0, 0, 0, 0, 0], [1, 1, 3, 1, 1]);
    await expectClose(px, [-1, 1, (51 / 255 - 0.5) / 0.5], 1e-6, 1e-6);
    const f = tf.fill([2, 1, 3, 224, 224], 0.25);
    const fo = prepareSyncFrames(f);
    const fpx = fo.slice([0, 0, 0, 0, 0], [1, 1, 1, 1, 1]);
    await expectClose(fpx, [-0.5], 1e-7, 0);
    tf.dispose([u8, out, px, f, fo, fpx]);
  });

  it('rejects frames that are not 224 × 224 and does not leak', async () => {
    const bad = tf.zeros([4, 3, 256, 256], 'int32');
    const before = tf.memory().numTensors;
    expect(() => prepareSyncFrames(bad)).toThrow(/expected frames \[B\?, T, 3, 224, 224\], got \[4,3,256,256\]/);
    expect(tf.memory().numTensors).toBe(before);
    bad.dispose();
    const ok = tf.zeros([2, 3, 224, 224], 'int32');
    await expectNoLeak(() => prepareSyncFrames(ok));
    ok.dispose();
  });
});
