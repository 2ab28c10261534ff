// Media → conditioner inputs in the fixed 10 s window, the reference-quirk switches, and the rejection of bad
// inputs before any model work (no generation runs in this file).
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MediaError } from '../../src/io/ffmpeg.ts';
import type { CLIPWithSyncWithEmptyFeatureConditioner } from '../../src/models/conditioners/video/clip.ts';
import { encodeVideoWithSync } from '../../src/models/synchformer/features.ts';
import { readImage } from '../../src/io/video.ts';
import { stillImageFrames } from '../../src/io/frames.ts';
import { ModelNotFoundError, type AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { generate, GenerateError, resolveParams } from '../../src/pipeline/generate.ts';
import { audioPrompt } from '../../src/models/conditioners/audio/prompt.ts';
import { syncFeatures, videoFrames } from '../../src/models/conditioners/video/input.ts';
import { checkMediaInputs, CONDITIONING_SECONDS } from '../../src/pipeline/media.ts';
import { makeEmptyWav, makeImage, makePatternImage, makeTone, makeVideo, tempDir } from './media-helpers.ts';

let model: AudioXModel;
let clip: CLIPWithSyncWithEmptyFeatureConditioner;
let dir: string;
const f: Record<string, string> = {};
const plain = { seekTime: 0, referenceQuirks: false };
const quirks = { seekTime: 0, referenceQuirks: true };

beforeAll(async () => {
  model = await loadModel('demo');
  clip = model.wrapper.conditioner.get('video_prompt') as CLIPWithSyncWithEmptyFeatureConditioner;
  dir = tempDir('media');
  f.video2 = await makeVideo(path.join(dir, 'v2.mp4'), 2);
  f.video12 = await makeVideo(path.join(dir, 'v12.mp4'), 12);
  f.image = await makeImage(path.join(dir, 'img.png'), '0x804020');
  f.pattern = await makePatternImage(path.join(dir, 'pattern.png'));
  f.video24 = await makeVideo(path.join(dir, 'v24.mp4'), 2, { rate: 24 });
  f.tone22k = await makeTone(path.join(dir, 'tone22k.wav'), 1, { rate: 22050, channels: 1 });
  f.tone12 = await makeTone(path.join(dir, 'tone12.wav'), 12);
  f.emptyWav = await makeEmptyWav(path.join(dir, 'empty.wav'));
  f.zeroBytes = path.join(dir, 'zero.mp4');
  fs.writeFileSync(f.zeroBytes, '');
  f.text = path.join(dir, 'notes.mp4');
  fs.writeFileSync(f.text, 'this is not a video, just some text\n'.repeat(20));
});

afterAll(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** [1, T, 3, S, S] → per-frame Float32Arrays. */
async function framesOf(t: tf.Tensor): Promise<Float32Array[]> {
  const [, T] = t.shape;
  const d = (await t.data()) as Float32Array;
  const n = d.length / T;
  return Array.from({ length: T }, (_, i) => d.slice(i * n, (i + 1) * n));
}

/** The value of a scalar computed by `fn` (nothing left allocated). */
function scalar(fn: () => tf.Tensor): number {
  const t = tf.tidy(fn);
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe('video and image → CLIP frames in the 10 s window', () => {
  it('pads a 2 s video to 50 frames by repeating its last frame', async () => {
    const t = await videoFrames(model, clip, { video: f.video2 }, plain);
    expect(t.shape).toEqual([1, 50, 3, 224, 224]);
    const fr = await framesOf(t);
    t.dispose();
    expect(same(fr[0], fr[9])).toBe(false); // the test pattern moves
    for (let i = 10; i < 50; i++) expect(same(fr[i], fr[9])).toBe(true);
    expect(fr[0].reduce((m, v) => Math.max(m, v), 0)).toBeGreaterThan(1); // uint8 value range: the conditioner divides by 255
  });

  it('trims a 12 s video to 50 frames and seeks with --seconds-start (time-exact, 5 fps)', async () => {
    const whole = await videoFrames(model, clip, { video: f.video12 }, plain);
    const seeked = await videoFrames(model, clip, { video: f.video12 }, { ...plain, seekTime: 2 });
    expect(whole.shape).toEqual([1, 50, 3, 224, 224]);
    expect(seeked.shape).toEqual([1, 50, 3, 224, 224]);
    const a = await framesOf(whole);
    const b = await framesOf(seeked);
    tf.dispose([whole, seeked]);
    expect(same(a[49], a[48])).toBe(false); // 10 s of a 12 s video: no padding
    // Frame k of the seeked window shows t = 2 + k/5 s, i.e. frame 10 + k of the unseeked one.
    let maxDiff = 0;
    for (let i = 0; i < a[10].length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[10][i] - b[0][i]));
    expect(maxDiff).toBeLessThanOrEqual(2);
  });

  it('image: uint8 value range by default, /255 once more with referenceQuirks (quirk 13)', async () => {
    const t = await videoFrames(model, clip, { image: f.image }, plain);
    const q = await videoFrames(model, clip, { image: f.image }, quirks);
    expect(t.shape).toEqual([1, 50, 3, 224, 224]);
    const redMean = (x: tf.Tensor) => scalar(() => x.slice([0, 0, 0, 0, 0], [1, 1, 1, 224, 224]).mean());
    const r = redMean(t);
    const rq = redMean(q);
    tf.dispose([t, q]);
    expect(Math.abs(r - 128)).toBeLessThan(4); // red = 0x80 (± colour conversion)
    expect(rq).toBeCloseTo(r / 255, 4);
  });

  it('no video and no image → zeros (the conditioner substitutes its empty feature)', async () => {
    const t = await videoFrames(model, clip, {}, plain);
    expect(t.shape).toEqual([1, 50, 3, 224, 224]);
    expect(scalar(() => t.abs().max())).toBe(0);
    t.dispose();
  });
});

/** Largest |x| of a tensor's values. */
async function maxAbs(t: tf.Tensor): Promise<number> {
  return ((await t.data()) as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

async function maxDiff(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const x = (await a.data()) as Float32Array;
  const y = (await b.data()) as Float32Array;
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

describe('default vs referenceQuirks for video (README "Reference quirks")', () => {
  it('CLIP frames: the same where ⌈fps/5⌉ strides hit the slot starts (25 fps), different at 24 fps', async () => {
    const before = tf.memory().numTensors;
    const t = [
      await videoFrames(model, clip, { video: f.video2 }, plain),
      await videoFrames(model, clip, { video: f.video2 }, quirks),
      await videoFrames(model, clip, { video: f.video24 }, plain),
      await videoFrames(model, clip, { video: f.video24 }, quirks),
    ];
    expect(await maxDiff(t[0], t[1])).toBe(0);
    expect(await maxDiff(t[2], t[3])).toBeGreaterThan(10);
    tf.dispose(t);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('Synchformer features: the default (crop, slot centres) differs from the reference (squash, strides)', async () => {
    const before = tf.memory().numTensors;
    const d = await syncFeatures(model, clip, { video: f.video2 }, plain);
    const q = await syncFeatures(model, clip, { video: f.video2 }, quirks);
    expect(d.shape).toEqual([1, clip.sizes.sync_tokens, clip.sizes.temporal_dim]);
    expect(await maxAbs(d)).toBeGreaterThan(0);
    expect(await maxDiff(d, q)).toBeGreaterThan(1e-4);
    tf.dispose([d, q]);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);
});

describe('still images get real Synchformer features', () => {
  it('= the Synchformer over the picture repeated 250 times (one segment computed, repeated)', async () => {
    const before = tf.memory().numTensors;
    const got = await syncFeatures(model, clip, { image: f.pattern }, plain);
    expect(got.shape).toEqual([1, clip.sizes.sync_tokens, clip.sizes.temporal_dim]);
    expect(await maxAbs(got)).toBeGreaterThan(1e-3);
    const img = await readImage(f.pattern);
    const { sync } = stillImageFrames(img.hwc, img.H, img.W, { referenceQuirks: false });
    const full = tf.tidy(() => tf.tile(tf.tensor(sync, [1, 1, 3, 224, 224]), [1, 250, 1, 1, 1]));
    const want = encodeVideoWithSync(model.synchformer!, full);
    full.dispose();
    expect(await maxDiff(got, want)).toBeLessThan(1e-6);
    tf.dispose([got, want]);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);

  it('an image given as --video takes the image path too; referenceQuirks squashes instead of cropping', async () => {
    const asImage = await syncFeatures(model, clip, { image: f.pattern }, plain);
    const asVideo = await syncFeatures(model, clip, { video: f.pattern }, plain);
    const quirk = await syncFeatures(model, clip, { image: f.pattern }, quirks);
    expect(await maxDiff(asImage, asVideo)).toBe(0);
    expect(await maxAbs(quirk)).toBeGreaterThan(1e-3);
    expect(await maxDiff(asImage, quirk)).toBeGreaterThan(1e-4);
    tf.dispose([asImage, asVideo, quirk]);
  });

  it('generate({ image }) hands those features to the video conditioner, batch included', async () => {
    const seen: number[][] = [];
    const forward = clip.forward.bind(clip);
    const spy = vi.spyOn(clip, 'forward').mockImplementation((video: tf.Tensor, s?: tf.Tensor) => {
      // [B, tokens, D, max |feature|] of each call
      if (s) seen.push([...s.shape, (s.dataSync() as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0)]);
      return forward(video, s);
    });
    const opts = { image: f.pattern, steps: 1, secondsTotal: 1, seed: 3, batchSize: 2 };
    await generate(model, opts); // builds the conditioners' lazily created constants before the leak check
    seen.length = 0;
    const before = tf.memory().numTensors;
    try {
      await generate(model, opts);
    } finally {
      spy.mockRestore();
    }
    expect(tf.memory().numTensors).toBe(before);
    const [b, tokens, dim, peak] = seen[0];
    expect([b, tokens, dim]).toEqual([2, clip.sizes.sync_tokens, clip.sizes.temporal_dim]);
    expect(peak).toBeGreaterThan(1e-3);
  }, 240_000);
});

describe('audio prompt → [1, 2, 441000]', () => {
  const nonZero = (x: Float32Array, a: number, b: number) => {
    let m = 0;
    for (let i = a; i < b; i++) m = Math.max(m, Math.abs(x[i]));
    return m;
  };

  it('default: resampled to 44.1 kHz, mono duplicated, right-padded with silence', async () => {
    const t = await audioPrompt(model, f.tone22k, plain);
    expect(t.shape).toEqual([1, 2, 441000]);
    const d = (await t.data()) as Float32Array;
    t.dispose();
    const l = d.subarray(0, 441000);
    const r = d.subarray(441000);
    expect(nonZero(l, 0, 44000)).toBeGreaterThan(0.05); // the 1 s tone, now 44100 samples
    expect(nonZero(l, 44200, 441000)).toBe(0);
    expect(same(Float32Array.from(l), Float32Array.from(r))).toBe(true);
  });

  it('referenceQuirks: native rate kept and left-padded (quirk 15)', async () => {
    const t = await audioPrompt(model, f.tone22k, quirks);
    const d = (await t.data()) as Float32Array;
    t.dispose();
    const l = d.subarray(0, 441000);
    expect(nonZero(l, 0, 441000 - 22050)).toBe(0); // 22050 native samples, padded on the left
    expect(nonZero(l, 441000 - 22050, 441000)).toBeGreaterThan(0.05);
  });

  it('a 12 s file is trimmed to the window; none gives silence', async () => {
    const t = await audioPrompt(model, f.tone12, plain);
    const d = (await t.data()) as Float32Array;
    expect(t.shape).toEqual([1, 2, CONDITIONING_SECONDS * 44100]);
    expect(nonZero(d, 440000, 441000)).toBeGreaterThan(0.05);
    const z = await audioPrompt(model, undefined, plain);
    expect(scalar(() => z.abs().max())).toBe(0);
    tf.dispose([t, z]);
  });
});

describe('bad input is rejected before any model work', () => {
  async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
    const e = await p.then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MediaError);
    expect((e as MediaError).code).toBe(code);
    expect((e as Error).message).toMatch(re);
  }

  it('missing, unreadable (a directory), empty and non-media files', async () => {
    await rejects(checkMediaInputs({ video: path.join(dir, 'nope.mp4') }), 'FILE_NOT_FOUND', /^video: .*does not exist/);
    await rejects(checkMediaInputs({ audio: dir }), 'FILE_NOT_FOUND', /^audio prompt: .*not a regular file/);
    await rejects(checkMediaInputs({ video: f.zeroBytes }), 'EMPTY_FILE', /empty \(0 bytes\)/);
    await rejects(checkMediaInputs({ video: f.text }), 'NOT_MEDIA', /not a readable audio\/video\/image file|could not open/);
  });

  it('zero-length media and seeks past the end', async () => {
    await rejects(checkMediaInputs({ audio: f.emptyWav }), 'NO_FRAMES', /No audio samples/);
    await rejects(checkMediaInputs({ initAudio: f.emptyWav }), 'NO_FRAMES', /^init audio: /);
    await rejects(checkMediaInputs({ video: f.video2 }, { seekTime: 5 }), 'NO_FRAMES', /No video frames .* window \[5, 15\]/);
    await rejects(checkMediaInputs({ audio: f.tone22k }, { seekTime: 3 }), 'NO_FRAMES', /starting at 3 s/);
  });

  it('the wrong kind of media for the option, with the CLI flag in the message', async () => {
    const labels = { video: '--video', image: '--image', audio: '--audio' };
    await rejects(checkMediaInputs({ video: f.tone12 }, { labels }), 'NO_VIDEO_STREAM', /^--video: .*only sound: pass it as the --audio/);
    await rejects(checkMediaInputs({ image: f.video2 }, { labels }), 'INVALID_ARGUMENT', /^--image: .*is a video, not a still image/);
    await rejects(checkMediaInputs({ audio: f.image }, { labels }), 'NO_AUDIO_STREAM', /^--audio: .*an audio file/);
    await rejects(checkMediaInputs({ video: f.video2, image: f.image }, { labels }), 'INVALID_ARGUMENT', /either a --video or an --image/);
    await expect(checkMediaInputs({ video: f.video2, image: undefined, audio: f.tone12 })).resolves.toBeUndefined();
    await expect(checkMediaInputs({ video: f.image })).resolves.toBeUndefined(); // a still image works as a video
  });

  it('generate() fails on bad media and bad parameters without allocating a tensor', async () => {
    const before = tf.memory().numTensors;
    await expect(generate(model, { video: path.join(dir, 'nope.mp4'), steps: 2 })).rejects.toThrow(/does not exist/);
    await expect(generate(model, { audio: f.emptyWav, steps: 2 })).rejects.toThrow(/No audio samples/);
    await expect(generate(model, { image: f.text, steps: 2 })).rejects.toThrow(MediaError);
    await expect(generate(model, { secondsTotal: 11 })).rejects.toThrow(/seconds must be in \(0, 10\.00\]/);
    await expect(generate(model, { sampler: 'euler-x' as never })).rejects.toThrow(/unknown sampler "euler-x"; valid: .*dpmpp-3m-sde/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('parameter ranges (resolveParams needs no weights)', () => {
    const limits = { name: 'demo', maxSeconds: 10 };
    expect(() => resolveParams(limits, { secondsTotal: 0 })).toThrow(GenerateError);
    expect(() => resolveParams(limits, { secondsTotal: 10.5 })).toThrow(/seconds must be in \(0, 10\.00\]/);
    expect(() => resolveParams(limits, { secondsStart: -1 })).toThrow(/seconds start must be in \[0, 100000\], got -1/);
    expect(() => resolveParams(limits, { steps: 0 })).toThrow(/steps must be an integer/);
    expect(() => resolveParams(limits, { sigmaMin: 5, sigmaMax: 1 })).toThrow(/sigma-min < sigma-max/);
    expect(() => resolveParams(limits, { inpaint: { maskStart: 0, maskEnd: 1 } })).toThrow(/inpainting needs init audio/);
    expect(() => resolveParams(limits, { initNoiseLevel: 3 })).toThrow(/init noise level needs init audio/);
    expect(() => resolveParams(limits, { initAudio: 'a.wav', initNoiseLevel: 0 })).toThrow(/init noise level must be in \(0, 10000\]/);
    const p = resolveParams(limits, {});
    expect(p).toMatchObject({ steps: 100, cfgScale: 7, sampler: 'dpmpp-3m-sde', sigmaMin: 0.03, sigmaMax: 500, secondsTotal: 10 });
    expect(resolveParams({ name: 'short', maxSeconds: 5 }, {}).secondsTotal).toBe(5);
  });

  it('unknown models and models whose weights are absent', async () => {
    await expect(loadModel('AudioX-Ultra')).rejects.toThrow(/unknown model "AudioX-Ultra": use one of demo, AudioX, AudioX-MAF, AudioX-MAF-MMDiT/);
    const noWeights = path.join(dir, 'converted');
    fs.mkdirSync(noWeights);
    fs.copyFileSync(path.join(model.dir, 'config.json'), path.join(noWeights, 'config.json'));
    await expect(loadModel(noWeights)).rejects.toThrow(/model\.safetensors is missing\. Convert the checkpoint with `audiox convert/);
    const home = process.env.AUDIOX_HOME;
    process.env.AUDIOX_HOME = path.join(dir, 'empty-home');
    try {
      await expect(loadModel('AudioX-MAF')).rejects.toThrow(ModelNotFoundError);
      await expect(loadModel('audiox-maf')).rejects.toThrow(/Run `audiox download AudioX-MAF` first/);
    } finally {
      if (home === undefined) delete process.env.AUDIOX_HOME;
      else process.env.AUDIOX_HOME = home;
    }
  });
});
