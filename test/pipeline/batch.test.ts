// `--batch` with every conditioning kind: a batch of 2 through generate() gives 2 items whose conditioning is
// the same (repeated media, text, numbers) or per item (audio prompts given per item), the items differ by their
// own noise, and each item equals the run of batch 1 fed that item's random draws (items are independent).
// Kinds: text, video (CLIP + Synchformer), image, mel audio prompt and the MAF gate on the demo model; the VAE
// audio prompt (audio_autoencoder) and a number conditioner on the small model of pipeline/global_seconds_audio.
// Exception, as in the reference: a model with global conditioning (global_cond_ids; none of the released models)
// prepends every item's global token to every item (quirk 19), so there the items depend on the batch.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/models/config.ts';
import { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';
import { generate } from '../../src/pipeline/generate.ts';
import { audioPrompt } from '../../src/models/conditioners/audio/prompt.ts';
import { checkMediaInputs } from '../../src/pipeline/media.ts';
import type { GenerateOptions, GenerateResult } from '../../src/pipeline/types.ts';
import type { NoiseStream } from '../../src/nn/noise.ts';
import { SeededNoise } from '../../src/nn/noise.ts';
import { fixture } from '../helpers.ts';
import { makeImage, makeTone, makeVideo, tempDir } from './media-helpers.ts';

type Draws = Partial<Record<NoiseStream, tf.Tensor | tf.Tensor[]>>;

/** Max |a − b| over every sample, relative to the peak of `b`. */
function relDiff(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  let p = 0;
  b.forEach((ch, c) => ch.forEach((v, k) => ((d = Math.max(d, Math.abs(a[c][k] - v))), (p = Math.max(p, Math.abs(v))))));
  return d / p;
}

function tone(freq: number, n: number, sr = 44100): Float32Array[] {
  const x = Float32Array.from({ length: n }, (_, k) => 0.5 * Math.sin((2 * Math.PI * freq * k) / sr));
  return [x, x.map((v) => -v)];
}

/** Row `i` of a batch tensor [B, …] → [1, …]. */
function row(t: tf.Tensor, i: number): tf.Tensor {
  return tf.slice(t, [i, ...t.shape.slice(1).map(() => 0)], [1, ...t.shape.slice(1)]);
}

const base = { steps: 2, sampler: 'dpmpp-2m', secondsTotal: 0.25, normalize: false, seed: 3 } satisfies GenerateOptions;

/** Item i of a batch and the batch-1 run with item i's draws agree to float rounding (relative to the peak). */
const SAME = 1e-3;

/**
 * Runs a batch of 2 with `draws2()` and, for each item in `check`, a batch of 1 with `drawsOf(i)`; expects the
 * item to equal the single run and the two items to differ. Every tensor made is disposed.
 */
async function expectBatchOf2(
  model: AudioXModel,
  opts: GenerateOptions,
  draws2: () => Draws,
  drawsOf: (i: number) => Draws,
  single: (i: number) => GenerateOptions = () => opts,
  check = [1],
): Promise<GenerateResult> {
  const before = tf.memory().numTensors;
  const d2 = draws2();
  const r2 = await generate(model, { ...base, ...opts, batchSize: 2, noise: d2 });
  expect(r2.audio).toHaveLength(2);
  for (const item of r2.audio) {
    expect(item).toHaveLength(2);
    for (const ch of item) expect(ch).toHaveLength(Math.round((opts.secondsTotal ?? base.secondsTotal) * 44100));
  }
  expect(relDiff(r2.audio[0], r2.audio[1])).toBeGreaterThan(1e-2);
  for (const i of check) {
    const d = drawsOf(i);
    const r1 = await generate(model, { ...base, ...single(i), batchSize: 1, noise: d });
    tf.dispose(Object.values(d).flat() as tf.Tensor[]);
    expect(relDiff(r2.audio[i], r1.audio[0])).toBeLessThan(SAME);
  }
  tf.dispose(Object.values(d2).flat() as tf.Tensor[]);
  expect(tf.memory().numTensors).toBe(before);
  return r2;
}

describe('batch of 2 on the demo model (text, video, image, mel audio prompt, MAF)', () => {
  let model: AudioXModel;
  let dir: string;
  let image: string;
  let video: string;
  let toneFile: string;
  beforeAll(async () => {
    model = await loadModel('demo');
    dir = tempDir('batch');
    image = await makeImage(path.join(dir, 'img.png'), '0x2080c0');
    video = await makeVideo(path.join(dir, 'v.mp4'), 2);
    toneFile = await makeTone(path.join(dir, 'tone.wav'), 1, { freq: 440 });
    await generate(model, { ...base, steps: 1 }); // lazily built constants (mel filterbank, …) exist from here on
  }, 60_000);
  afterAll(() => {
    model?.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // The demo's mel conditioner masks (mask_ratio 0.7–1): one rand([B]), then one randint per item.
  const u = [0.2, 0.8];
  const starts = [11, 29];
  const x0 = () => new SeededNoise(5).randn('initial', [2, 8, 215]);
  const draws2 = (): Draws => ({ initial: x0(), mask: [tf.tensor1d(u), ...starts.map((s) => tf.tensor1d([s], 'int32'))] });
  const drawsOf = (i: number): Draws => {
    const x = x0();
    const xi = row(x, i);
    x.dispose();
    return { initial: xi, mask: [tf.tensor1d([u[i]]), tf.tensor1d([starts[i]], 'int32')] };
  };

  it('text prompt', async () => {
    await expectBatchOf2(model, { prompt: 'rain on a tin roof' }, draws2, drawsOf);
  }, 120_000);

  it('image', async () => {
    await expectBatchOf2(model, { prompt: 'birds', image }, draws2, drawsOf);
  }, 120_000);

  it('video (CLIP frames and Synchformer features)', async () => {
    await expectBatchOf2(model, { video }, draws2, drawsOf);
  }, 240_000);

  it('one audio prompt file for every item', async () => {
    await expectBatchOf2(model, { audio: toneFile }, draws2, drawsOf);
  }, 120_000);

  it('one audio prompt per item: item i is the run with prompt i', async () => {
    const prompts = [tone(220, 44100), tone(880, 44100)];
    await expectBatchOf2(model, { audio: prompts }, draws2, drawsOf, (i) => ({ audio: prompts[i] }), [0, 1]);
  }, 180_000);
});

describe('batch of 2 with the VAE audio prompt and a number conditioner (pipeline/global_seconds_audio model)', () => {
  const fx = fixture('pipeline/global_seconds_audio');
  /** The fixture's model; `tokens`: seconds_total as a cross-attention token instead of global conditioning. */
  function tinyModel(tokens: boolean): AudioXModel {
    const raw = structuredClone(fx.config) as { model: { diffusion: { cross_attention_cond_ids: string[]; global_cond_ids: string[] } } };
    if (tokens) {
      raw.model.diffusion.cross_attention_cond_ids.push('seconds_total');
      raw.model.diffusion.global_cond_ids = [];
    }
    const config = validateConfig(raw, fx.rel);
    const wrapper = createModelFromConfig(config);
    wrapper.loadStateDict(fx.params);
    return new AudioXModel('tiny', fx.path, config, wrapper, null, false);
  }
  const models: AudioXModel[] = [];
  afterAll(() => {
    models.forEach((m) => m.dispose());
    fx.file.close();
  });

  /** The fixture's precomputed video/text stand-ins, repeated to the batch. */
  function pre(b: number): NonNullable<GenerateOptions['conditioningTensors']> {
    const rep = (n: string) => {
      const t = fx.tensor(n);
      const r = tf.concat(Array.from({ length: b }, () => t), 0);
      t.dispose();
      return r;
    };
    return {
      video_prompt: { embedding: rep('inputs/video_prompt'), mask: rep('inputs/video_prompt_mask') },
      text_prompt: { embedding: rep('inputs/text_prompt'), mask: rep('inputs/text_prompt_mask') },
    };
  }
  const n = 1720; // 215 latents, the length the conditioner's empty_audio_feat requires
  const prompts = [tone(330, n), tone(990, n)];
  const x0 = () => new SeededNoise(9).randn('initial', [2, 4, 20]);
  const vae = () => new SeededNoise(10).randn('vae', [2, 4, 215]);
  const draws2 = (): Draws => ({ initial: x0(), vae: vae() });
  const drawsOf = (i: number): Draws => {
    const [x, v] = [x0(), vae()];
    const d = { initial: row(x, i), vae: row(v, i) };
    tf.dispose([x, v]);
    return d;
  };
  const short = { secondsTotal: 160 / 44100 };

  it('per-item audio prompts (VAE noise of batch 2) and seconds_total as a token: item i is the run with prompt i', async () => {
    const model = tinyModel(true);
    models.push(model);
    const [p2, p1] = [pre(2), pre(1)];
    const opts: GenerateOptions = { ...short, audio: prompts, conditioningTensors: p2 };
    try {
      await expectBatchOf2(model, opts, draws2, drawsOf, (i) => ({ ...opts, audio: prompts[i], conditioningTensors: p1 }), [0, 1]);
    } finally {
      for (const c of [...Object.values(p2), ...Object.values(p1)]) tf.dispose([c.embedding, c.mask]);
    }
  }, 120_000);

  it('seconds_total as global conditioning: the batch works, but items see each other (quirk 19, as the reference)', async () => {
    const model = tinyModel(false);
    models.push(model);
    const [p2, p1] = [pre(2), pre(1)];
    const before = tf.memory().numTensors;
    try {
      const d2 = draws2();
      const r2 = await generate(model, { ...base, ...short, audio: prompts, conditioningTensors: p2, batchSize: 2, noise: d2 });
      const d1 = drawsOf(0);
      const r1 = await generate(model, { ...base, ...short, audio: prompts[0], conditioningTensors: p1, noise: d1 });
      tf.dispose([...Object.values(d2), ...Object.values(d1)].flat() as tf.Tensor[]);
      expect(r2.audio.map((item) => item.map((ch) => ch.length))).toEqual([[160, 160], [160, 160]]);
      expect(relDiff(r2.audio[0], r2.audio[1])).toBeGreaterThan(1e-2);
      // [B, D] + [B, 1, D] broadcasts to [B, B, D]: each item gets every item's global token prepended.
      expect(relDiff(r2.audio[0], r1.audio[0])).toBeGreaterThan(1e-2);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      for (const c of [...Object.values(p2), ...Object.values(p1)]) tf.dispose([c.embedding, c.mask]);
    }
  }, 120_000);
});

describe('audioPrompt for a batch', () => {
  const model = { sampleRate: 44100 } as AudioXModel;
  const opts = { seekTime: 0, referenceQuirks: false };

  it('silence, one set repeated, and one set per item, in item order', async () => {
    const before = tf.memory().numTensors;
    const silence = await audioPrompt(model, undefined, opts, 100, 3);
    expect(silence.shape).toEqual([3, 2, 100]);
    const a = tone(100, 50);
    const b = tone(300, 50);
    const same = await audioPrompt(model, [a[0]], opts, 100, 2); // mono → both channels
    expect(same.shape).toEqual([2, 2, 50]);
    expect(Array.from((await same.data()).slice(100))).toEqual([...a[0], ...a[0]]);
    const each = await audioPrompt(model, [a, b], opts, 100, 2);
    expect(each.shape).toEqual([2, 2, 50]);
    const d = await each.data();
    expect(Array.from(d.slice(0, 100))).toEqual([...a[0], ...a[1]]);
    expect(Array.from(d.slice(100))).toEqual([...b[0], ...b[1]]);
    tf.dispose([silence, same, each]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a per-item count that is not the batch size, and items of different lengths', async () => {
    const a = tone(100, 50);
    await expect(audioPrompt(model, [a, a, a], opts, 100, 2)).rejects.toThrow(/3 per-item prompts given for a batch of 2/);
    await expect(audioPrompt(model, [a, tone(100, 60)], opts, 100, 2)).rejects.toThrow(/different lengths \(50, 60 samples\)/);
    await expect(checkMediaInputs({ audio: [a, [new Float32Array(0)]] })).rejects.toThrow(/audio prompt: the given samples are empty \(batch item 1\)/);
  });
});
