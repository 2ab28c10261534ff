// Long-form generation (issue #19) on the demo model: the window plan alone, then the run through the
// library API — exact lengths, continuation through the inpainting mask, per-window media spans,
// determinism, cancellation, and nothing left behind.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { branchFrameOptions } from '../../src/io/frames.ts';
import { readVideoFrames } from '../../src/io/video.ts';
import { SEGMENT_SIZE, SYNC_FPS, SYNC_SIZE, syncSegmentCount } from '../../src/models/synchformer/features.ts';
import { readWav } from '../../src/io/wav.ts';
import { ProgressiveWavWriter } from '../../src/io/wav-stream.ts';
import type { Conditioner } from '../../src/models/conditioners/conditioner.ts';
import type { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { GenerateError } from '../../src/pipeline/generate.ts';
import { generateLongform, planWindows, windowSeed, type LongformOptions, type LongformProgress, type WindowResult } from '../../src/pipeline/longform.ts';
import { listDir, makeVideo, tempDir } from './media-helpers.ts';

const SR = 44100;
const RATIO = 2048;
/** The demo model's window: ⌊441000 / 2048⌋ = 215 latent frames. */
const T = 215;
const fast = { steps: 2, seed: 11, prompt: 'rain on a tin roof', windowOverlap: 1 } satisfies Partial<LongformOptions>;
/** The runs use a short window (64 latent frames, 2.97 s) so that a few windows stay cheap. */
const W = 64;
/** 1 s of overlap: round(44100 / 2048) frames. */
const O = 22;
/** Synchformer segments of a 10 s window at 25 fps (one forward call each, batch 1). */
const SEGMENTS = syncSegmentCount(250);

let model: AudioXModel;
let dir: string;

beforeAll(async () => {
  model = await loadModel('demo');
  model.config.sample_size = W * RATIO;
  dir = tempDir('longform');
});

afterAll(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Window results copied out of the callback (their tensors are freed after it). */
interface Captured {
  index: number;
  startSample: number;
  seed: number;
  secondsStart: number;
  audio: Float32Array[];
  latents: number[][][];
}

function capture(into: Captured[]): (w: WindowResult) => void {
  return (w) =>
    into.push({
      index: w.window.index,
      startSample: w.window.startSample,
      seed: w.seed,
      secondsStart: w.secondsStart,
      audio: w.audio.map((c) => c.slice()),
      latents: w.latents.arraySync() as number[][][],
    });
}

describe('planWindows', () => {
  const base = { windowFrames: T, ratio: RATIO, overlapFrames: 43, crossfadeSamples: 11025 };

  it('25 s from 3 windows with a 2 s overlap: each output sample is written exactly once', () => {
    const plan = planWindows({ ...base, totalSamples: 25 * SR });
    expect(plan.windows).toHaveLength(3);
    expect(plan.windows.map((w) => w.startFrame)).toEqual([0, 172, 344]);
    expect(plan.windows.map((w) => w.heldFrames)).toEqual([0, 43, 43]);
    let at = 0;
    for (const w of plan.windows) {
      expect(w.writeFrom).toBe(at);
      expect(w.writeTo).toBeGreaterThan(w.writeFrom);
      // What a window writes lies inside it; its cross-fade lies in the overlap with the previous window.
      expect(w.writeFrom).toBeGreaterThanOrEqual(w.startSample);
      expect(w.writeTo).toBeLessThanOrEqual(w.startSample + plan.windowSamples);
      if (w.fadeStart !== null) {
        expect(w.fadeStart).toBeGreaterThanOrEqual(w.startSample);
        expect(w.fadeStart + plan.crossfadeSamples).toBeLessThanOrEqual(w.startSample + 43 * RATIO);
      }
      at = w.writeTo;
    }
    expect(at).toBe(25 * SR);
  });

  it('one window when the length fits; more exactly when it does not', () => {
    expect(planWindows({ ...base, totalSamples: T * RATIO }).windows).toHaveLength(1);
    expect(planWindows({ ...base, totalSamples: T * RATIO + 1 }).windows).toHaveLength(2);
    expect(planWindows({ ...base, totalSamples: T * RATIO + (T - 43) * RATIO }).windows).toHaveLength(2);
    expect(planWindows({ ...base, totalSamples: 600 * SR }).windows).toHaveLength(1 + Math.ceil((600 * SR - T * RATIO) / ((T - 43) * RATIO)));
  });

  it('refuses an overlap beyond half a window, no overlap, and a cross-fade longer than the overlap', () => {
    expect(() => planWindows({ ...base, totalSamples: 20 * SR, overlapFrames: 108 })).toThrow(/at most half a window/);
    expect(() => planWindows({ ...base, totalSamples: 20 * SR, overlapFrames: 0 })).toThrow(GenerateError);
    expect(() => planWindows({ ...base, totalSamples: 20 * SR, crossfadeSamples: 43 * RATIO + 1 })).toThrow(/cross-fade/);
  });

  it('window seeds: the run seed first, then distinct 32-bit seeds', () => {
    const s = Array.from({ length: 20 }, (_, k) => windowSeed(123, k));
    expect(s[0]).toBe(123);
    expect(new Set(s).size).toBe(20);
    for (const v of s) expect(Number.isInteger(v) && v >= 0 && v <= 0xffffffff).toBe(true);
  });
});

describe('ProgressiveWavWriter', () => {
  it('writes appended pieces as one peak-normalised WAV; abort leaves nothing', async () => {
    const out = path.join(dir, 'pieces.wav');
    const w = ProgressiveWavWriter.open(out, { sampleRate: SR, channels: 2 });
    w.append([Float32Array.from([0.1, -0.2]), Float32Array.from([0.05, 0])]);
    w.append([Float32Array.from([0.4]), Float32Array.from([-0.1])]);
    expect(fs.existsSync(out)).toBe(false);
    await w.finish();
    const r = readWav(out);
    expect(r.data[0].length).toBe(3);
    expect(Math.max(...r.data[0].map(Math.abs))).toBeCloseTo(1, 3);
    expect(r.data[0][1]).toBeCloseTo(-0.5, 3);
    const before = listDir(dir);
    const a = ProgressiveWavWriter.open(path.join(dir, 'aborted.wav'), { sampleRate: SR, channels: 2 });
    a.append([new Float32Array(10), new Float32Array(10)]);
    a.abort();
    expect(listDir(dir)).toEqual(before);
    expect(() => w.append([new Float32Array(1), new Float32Array(1)])).toThrow(/after finish/);
    const bad = ProgressiveWavWriter.open(path.join(dir, 'nan.wav'), { sampleRate: SR, channels: 2 });
    expect(() => bad.append([Float32Array.from([NaN]), new Float32Array(1)])).toThrow(/NaN/);
    bad.abort();
    expect(listDir(dir)).toEqual(before);
  });
});

describe('generateLongform (demo model)', () => {
  let wins: Captured[];
  let out: string;
  let result: Awaited<ReturnType<typeof generateLongform>>;
  let progress: LongformProgress[];

  beforeAll(async () => {
    wins = [];
    progress = [];
    out = path.join(dir, 'rain6.wav');
    result = await generateLongform(model, { ...fast, output: out, secondsTotal: 6, onWindow: capture(wins), onProgress: (p) => progress.push(p) });
  });

  it('6 s exactly from 3 windows of 2.97 s with 1 s overlap, stereo at 44.1 kHz, peak-normalised', () => {
    expect(result.plan.windows).toHaveLength(3);
    expect(wins).toHaveLength(3);
    const wav = readWav(out);
    expect(wav.sampleRate).toBe(SR);
    expect(wav.data).toHaveLength(2);
    expect(wav.data[0].length).toBe(6 * SR);
    expect(result.samples).toBe(6 * SR);
    expect(result.plan.windows.map((w) => w.startFrame)).toEqual([0, W - O, 2 * (W - O)]);
    let peak = 0;
    for (const c of wav.data) for (const v of c) peak = Math.max(peak, Math.abs(v));
    expect(peak).toBeGreaterThan(0.99);
    expect(result.seeds).toEqual([0, 1, 2].map((k) => windowSeed(fast.seed, k)));
    expect(wins.map((w) => w.seed)).toEqual(result.seeds);
  });

  it("window k's overlap holds window k−1's latents (inpainting) and so decodes to its audio there", () => {
    expect(result.plan.overlapFrames).toBe(O);
    for (let k = 1; k < wins.length; k++) {
      const prev = wins[k - 1];
      const cur = wins[k];
      const shift = cur.startSample - prev.startSample;
      expect(shift).toBe((W - O) * RATIO);
      // Latents: the kept frames end the sampling at window k−1's values.
      for (let c = 0; c < cur.latents[0].length; c++) {
        expect(cur.latents[0][c].slice(0, O)).toEqual(prev.latents[0][c].slice(W - O));
      }
      // The regenerated frames are new.
      let dNew = 0;
      for (let c = 0; c < cur.latents[0].length; c++) for (let f = O; f < W; f++) dNew = Math.max(dNew, Math.abs(cur.latents[0][c][f]));
      expect(dNew).toBeGreaterThan(0);
      // Audio in the middle of the overlap (the decoder's context differs at the window edges).
      const mid0 = Math.floor((O * RATIO) / 4);
      const mid1 = Math.floor((3 * O * RATIO) / 4);
      let diff = 0;
      let ref = 0;
      for (let c = 0; c < 2; c++) {
        for (let i = mid0; i < mid1; i++) {
          diff += (cur.audio[c][i] - prev.audio[c][shift + i]) ** 2;
          ref += prev.audio[c][shift + i] ** 2;
        }
      }
      expect(Math.sqrt(diff / ref)).toBeLessThan(0.1);
    }
  });

  it('progress: window i/N and step j/M, a run fraction that grows to 1, and an ETA', () => {
    expect(progress.length).toBe(3 * fast.steps);
    expect(progress.map((p) => `${p.window}/${p.windows}:${p.step}/${p.steps}`)).toEqual(['0/3:0/2', '0/3:1/2', '1/3:0/2', '1/3:1/2', '2/3:0/2', '2/3:1/2']);
    for (let i = 1; i < progress.length; i++) expect(progress[i].runFraction).toBeGreaterThan(progress[i - 1].runFraction);
    expect(progress.at(-1)!.runFraction).toBe(1);
    expect(progress.at(-1)!.etaMs).toBe(0);
    expect(progress.every((p) => p.etaMs !== null && p.etaMs >= 0)).toBe(true);
  });

  it('is reproducible with a seed (and leaves no tensor behind); another seed gives other audio', async () => {
    const again = path.join(dir, 'again.wav');
    const tensors = tf.memory().numTensors;
    await generateLongform(model, { ...fast, output: again, secondsTotal: 6 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(readWav(again).data).toEqual(readWav(out).data);
    const other = path.join(dir, 'other.wav');
    await generateLongform(model, { ...fast, seed: 12, output: other, secondsTotal: 4 });
    expect(readWav(other).data[0].slice(0, SR)).not.toEqual(readWav(out).data[0].slice(0, SR));
  });
});

describe('generateLongform: media spans and cancellation', () => {
  let video: string;
  beforeAll(async () => {
    video = await makeVideo(path.join(dir, 'long.mp4'), 5);
  });

  // Slow on a loaded machine: the 25 fps frames of two 10 s conditioning windows are decoded and resized.
  it("each window's CLIP frames and Synchformer input are those of its own span of the video", { timeout: 600_000 }, async () => {
    const cond = model.wrapper.conditioner.get('video_prompt') as Conditioner<{ video: tf.Tensor }>;
    const original = cond.prepareInput.bind(cond);
    const clip: { seek: number; frames: Float32Array }[] = [];
    cond.prepareInput = async (media, opts) => {
      const input = await original(media, opts);
      clip.push({ seek: opts.seekTime, frames: input.video.dataSync() as Float32Array });
      return input;
    };
    // The Synchformer's input (the first 16-frame segment of each window) is captured; its work is skipped
    // (zeros of its output shape [n, 1, 8, temporal_dim 32]) to keep the test fast.
    const sync = model.synchformer!;
    const forward = sync.forward.bind(sync);
    const syncFirst: Float32Array[] = [];
    let calls = 0;
    sync.forward = (vis: tf.Tensor) => {
      if (calls++ % SEGMENTS === 0) syncFirst.push(vis.slice([0, 0, 0, 0, 0, 0], [1, 1, ...vis.shape.slice(2)]).dataSync() as Float32Array);
      return tf.zeros([vis.shape[0], 1, 8, 32]) as tf.Tensor4D;
    };
    const wins: Captured[] = [];
    try {
      await generateLongform(model, { ...fast, video, secondsStart: 0.5, fullVideo: true, output: path.join(dir, 'video.wav'), onWindow: capture(wins) });
    } finally {
      cond.prepareInput = original;
      sync.forward = forward;
    }
    // 4.5 s of video from 0.5 s: windows at 0.5 s and 0.5 + 42·2048/44100 s.
    expect(wins).toHaveLength(2);
    expect(clip.map((c) => c.seek)).toEqual(wins.map((w) => w.secondsStart));
    wins.forEach((w, k) => expect(w.secondsStart).toBeCloseTo(0.5 + (k * (W - O) * RATIO) / SR, 9));
    expect(syncFirst).toHaveLength(2);
    for (const [k, c] of clip.entries()) {
      const direct = await readVideoFrames(video, { fps: 5, seekTime: c.seek, duration: 10, size: 224, ...branchFrameOptions('clip', false) });
      expect(c.frames).toEqual(Float32Array.from(direct.frames));
      const s = await readVideoFrames(video, { fps: SYNC_FPS, seekTime: c.seek, duration: 10, size: SYNC_SIZE, ...branchFrameOptions('sync', false) });
      const n = SEGMENT_SIZE * 3 * SYNC_SIZE * SYNC_SIZE;
      const expected = Float32Array.from(s.frames.slice(0, n), (v) => (v / 255 - 0.5) / 0.5);
      expect(syncFirst[k].length).toBe(n);
      let d = 0;
      for (let i = 0; i < n; i++) d = Math.max(d, Math.abs(syncFirst[k][i] - expected[i]));
      expect(d).toBeLessThan(1e-5);
    }
    expect(clip[1].frames).not.toEqual(clip[0].frames);
    expect(syncFirst[1]).not.toEqual(syncFirst[0]);
  });

  it('cancellation between windows and mid-window leaves no file and no tensor', async () => {
    const before = listDir(dir);
    const tensors = tf.memory().numTensors;
    for (const when of ['between', 'mid'] as const) {
      const ac = new AbortController();
      const out = path.join(dir, `cancel-${when}.wav`);
      const run = generateLongform(model, {
        ...fast,
        secondsTotal: 5,
        output: out,
        signal: ac.signal,
        onWindow: (w) => when === 'between' && w.window.index === 0 && ac.abort(),
        onProgress: (p) => when === 'mid' && p.window === 1 && p.step === 0 && ac.abort(),
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(fs.existsSync(out)).toBe(false);
      expect(listDir(dir)).toEqual(before);
      expect(tf.memory().numTensors).toBe(tensors);
    }
  });

  it('bad requests fail before any work with a clear message', async () => {
    const o = { ...fast, output: path.join(dir, 'bad.wav') };
    await expect(generateLongform(model, { ...o, secondsTotal: 20, windowOverlap: 6 })).rejects.toThrow(/window overlap must be/);
    await expect(generateLongform(model, { ...o, secondsTotal: 20, windowOverlap: 2 })).rejects.toThrow(/at most half the model's window/);
    await expect(generateLongform(model, { ...o, fullVideo: true })).rejects.toThrow(/full video needs a video/);
    await expect(generateLongform(model, { ...o, video, fullVideo: true, secondsStart: 30 })).rejects.toThrow(/past the end of the video/);
    await expect(generateLongform(model, { ...o, secondsTotal: 20, batchSize: 2 } as LongformOptions)).rejects.toThrow(/batch size of 1/);
    expect(fs.existsSync(o.output)).toBe(false);
  });
});
