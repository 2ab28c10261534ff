// generate() on the built-in demo model: the text tasks (T2A, T2M), audio prompt, image input, init-audio
// variation, negative prompt, batches, injected noise, precomputed conditioning, raw output and latents,
// and that no tensor is left behind (also after an error and after cancellation).
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { T5Conditioner } from '../../src/models/conditioners/text/t5.ts';
import type { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { generate } from '../../src/pipeline/generate.ts';
import type { GenerateOptions, GenerateResult } from '../../src/pipeline/types.ts';
import { SeededNoise } from '../../src/nn/noise.ts';
import { makeImage, makeTone, tempDir } from './media-helpers.ts';

const SR = 44100;
const fast = { steps: 4, secondsTotal: 1.5, seed: 7 } satisfies GenerateOptions;
const RAIN = 'rain on a tin roof';

let model: AudioXModel;
let dir: string;
let tone: string;
let image: string;
let baseline: GenerateResult;

beforeAll(async () => {
  model = await loadModel('demo');
  dir = tempDir('generate');
  tone = await makeTone(path.join(dir, 'tone.wav'), 3, { freq: 330 });
  image = await makeImage(path.join(dir, 'img.png'), '0x2080c0');
  baseline = await generate(model, { ...fast, prompt: RAIN });
});

afterAll(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function peak(r: GenerateResult): number {
  let p = 0;
  for (const item of r.audio) for (const ch of item) for (const v of ch) p = Math.max(p, Math.abs(v));
  return p;
}

/** Stereo 44.1 kHz of the requested length, finite, peak-normalised over the batch. */
function expectAudio(r: GenerateResult, batch = 1, seconds = fast.secondsTotal): void {
  expect(r.sampleRate).toBe(SR);
  expect(r.audio).toHaveLength(batch);
  for (const item of r.audio) {
    expect(item).toHaveLength(2);
    for (const ch of item) {
      expect(ch).toHaveLength(Math.round(seconds * SR));
      expect(ch.every(Number.isFinite)).toBe(true);
    }
  }
  expect(peak(r)).toBeCloseTo(1, 6);
}

function maxDiff(a: GenerateResult, b: GenerateResult): number {
  let m = 0;
  a.audio.forEach((item, i) => item.forEach((ch, c) => ch.forEach((v, k) => (m = Math.max(m, Math.abs(v - b.audio[i][c][k]))))));
  return m;
}

describe('tasks and inputs on the demo model', () => {
  it('T2A: text prompt → stereo 44.1 kHz trimmed to the requested seconds', () => {
    expectAudio(baseline);
    expect(baseline.seed).toBe(7);
    expect(baseline.sigmas).toHaveLength(fast.steps + 1);
    expect(baseline.sigmas[0]).toBeCloseTo(500, 3);
    expect(baseline.params).toMatchObject({ prompt: RAIN, steps: 4, cfgScale: 7, sampler: 'dpmpp-3m-sde', sigmaMin: 0.03, secondsTotal: 1.5 });
  });

  it('T2M: a music prompt gives different audio, and no tensor is left behind', async () => {
    const before = tf.memory().numTensors;
    const r = await generate(model, { ...fast, prompt: 'an upbeat jazz piano trio with brushed drums' });
    expect(tf.memory().numTensors).toBe(before);
    expectAudio(r);
    expect(maxDiff(r, baseline)).toBeGreaterThan(1e-3);
  });

  it('injected noise reproduces the seeded run; full-length raw output and latents on request', async () => {
    const initial = new SeededNoise(fast.seed).randn('initial', [1, 8, 215]);
    const r = await generate(model, { ...fast, secondsTotal: 10, prompt: RAIN, noise: { initial }, normalize: false, returnLatents: true });
    initial.dispose();
    expect(r.latents?.shape).toEqual([1, 8, 215]);
    r.latents?.dispose();
    expect(r.audio[0][0]).toHaveLength(215 * 2048); // all there is: ⌊sample_size / 2048⌋·2048 (quirk 26)
    // The baseline decoded only the latents its 1.5 s can see: the same audio to float rounding, and
    // the reference's normalisation of this raw audio (trimmed) is the baseline.
    const n = baseline.audio[0][0].length;
    let p = 0;
    for (const ch of r.audio[0]) for (let k = 0; k < n; k++) p = Math.max(p, Math.abs(ch[k]));
    expect(p).toBeGreaterThan(1.5); // raw: not normalised
    let d = 0;
    r.audio[0].forEach((ch, c) => {
      for (let k = 0; k < n; k++) d = Math.max(d, Math.abs(ch[k] / p - baseline.audio[0][c][k]));
    });
    expect(d).toBeLessThan(2e-4);
  });

  it('audio prompt (a 3 s tone, brought to the 10 s window)', async () => {
    const r = await generate(model, { ...fast, prompt: RAIN, audio: tone });
    expectAudio(r);
    expect(maxDiff(r, baseline)).toBeGreaterThan(1e-3);
    expect(r.params.audio).toBe(tone);
  });

  it('image input (a still picture as 50 identical frames)', async () => {
    const r = await generate(model, { ...fast, prompt: RAIN, image });
    expectAudio(r);
    expect(maxDiff(r, baseline)).toBeGreaterThan(1e-3);
  });

  it('referenceQuirks switches the demo-code bugs on (image /255 twice, audio prompt not resampled, left-padded)', async () => {
    const opts = { ...fast, prompt: RAIN, image, audio: tone };
    const fixed = await generate(model, opts);
    const quirky = await generate(model, { ...opts, referenceQuirks: true });
    expectAudio(quirky);
    expect(quirky.params.referenceQuirks).toBe(true);
    expect(maxDiff(fixed, quirky)).toBeGreaterThan(1e-3);
  });

  it('init-audio variation starts from the encoded audio at σ = init noise level', async () => {
    const r = await generate(model, { ...fast, prompt: RAIN, initAudio: tone, initNoiseLevel: 2 });
    expectAudio(r);
    expect(r.sigmas[0]).toBeCloseTo(2, 5);
    expect(r.params.initNoiseLevel).toBe(2);
    expect(maxDiff(r, baseline)).toBeGreaterThan(1e-3);
  });

  it('inpainting regenerates the mask range (reference polarity): all of it regenerated = no init audio', async () => {
    // With the whole window in the mask the reference starts from pure noise and never pastes the init
    // audio back before the last step, whose result dpmpp-3m-sde replaces by the denoised estimate: the
    // same audio as a generation without init audio. (Inverted polarity would keep the init audio.)
    const before = tf.memory().numTensors;
    const all = await generate(model, { ...fast, prompt: RAIN, initAudio: tone, inpaint: { maskStart: 0, maskEnd: '100%' } });
    expect(tf.memory().numTensors).toBe(before);
    expect(maxDiff(all, baseline)).toBeLessThan(1e-5);
    // A part of it, given in seconds, with soft edges: differs from both.
    const part = await generate(model, {
      ...fast,
      prompt: RAIN,
      initAudio: tone,
      inpaint: { maskStart: '0.5s', maskEnd: '1.2s', softnessL: '2%', softnessR: 2, marination: 0.1 },
    });
    expectAudio(part);
    expect(maxDiff(part, baseline)).toBeGreaterThan(1e-3);
    expect(part.params.inpaint).toMatchObject({ maskStart: 5, maskEnd: 12, softnessL: 2, softnessR: 2, marination: 0.1 });
    expect(part.params.initNoiseLevel).toBeNull();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('inpainting and variation refuse inconsistent arguments before any tensor is made', async () => {
    const before = tf.memory().numTensors;
    await expect(generate(model, { ...fast, inpaint: { maskStart: 10, maskEnd: 20 } })).rejects.toThrow(/inpainting needs init audio/);
    await expect(generate(model, { ...fast, initAudio: tone, initNoiseLevel: 2, inpaint: { maskStart: 10, maskEnd: 20 } })).rejects.toThrow(
      /variations only/,
    );
    await expect(generate(model, { ...fast, initAudio: tone, inpaint: { maskStart: '3s', maskEnd: '1s' } })).rejects.toThrow(/must come after/);
    await expect(generate(model, { ...fast, initAudio: tone, inpaint: { maskStart: '1s', maskEnd: '11s' } })).rejects.toThrow(
      /inpaint end must lie in the generation window/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('init audio longer than the window lengthens the generation (whole latent frames), output as long as the init audio', async () => {
    const long = await makeTone(path.join(dir, 'long.wav'), 11, { freq: 220 });
    const r = await generate(model, { ...fast, prompt: RAIN, initAudio: long, initNoiseLevel: 1, returnLatents: true });
    expect(r.latents?.shape).toEqual([1, 8, Math.ceil((11 * SR) / 2048)]);
    r.latents?.dispose();
    expectAudio(r, 1, 11);
  });

  it('refuses outputs shorter than one latent frame and absurd values, before any tensor', async () => {
    const before = tf.memory().numTensors;
    await expect(generate(model, { ...fast, secondsTotal: 1e-5 })).rejects.toThrow(/at least one latent frame \(0\.0464 s/);
    await expect(generate(model, { ...fast, cfgScale: 1e308 })).rejects.toThrow(/cfg scale must be in \[0, 100\]/);
    await expect(generate(model, { ...fast, sigmaMax: 1e300 })).rejects.toThrow(/sigma-max must be in \(0, 10000\], got 1e\+300/);
    expect(tf.memory().numTensors).toBe(before);
    const one = await generate(model, { ...fast, steps: 2, secondsTotal: 2048 / SR });
    expect(one.audio[0][0]).toHaveLength(2048);
  });

  it('fullLength keeps the whole decoded window and normalises over all of it', async () => {
    const r = await generate(model, { ...fast, prompt: RAIN, fullLength: true });
    expect(r.audio[0][0]).toHaveLength(215 * 2048);
    expect(peak(r)).toBeCloseTo(1, 6);
    expect(r.params.fullLength).toBe(true);
  });

  it('negative prompt changes the result, leaking nothing', async () => {
    const before = tf.memory().numTensors;
    const r = await generate(model, { ...fast, prompt: RAIN, negativePrompt: 'thunder, wind' });
    expect(tf.memory().numTensors).toBe(before);
    expectAudio(r);
    expect(maxDiff(r, baseline)).toBeGreaterThan(1e-3);
  });

  it('batch of 2: different items, normalised by the global peak', async () => {
    const r = await generate(model, { ...fast, prompt: RAIN, batchSize: 2, secondsTotal: 0.5 });
    expectAudio(r, 2, 0.5);
    let d = 0;
    r.audio[0][0].forEach((v, k) => (d = Math.max(d, Math.abs(v - r.audio[1][0][k]))));
    expect(d).toBeGreaterThan(1e-3);
  });

  it('precomputed conditioning tensors replace their conditioner', async () => {
    const t5 = model.wrapper.conditioner.get('text_prompt') as T5Conditioner;
    const text = t5.forward([RAIN]);
    const r = await generate(model, { ...fast, prompt: 'ignored: the text conditioner does not run', conditioningTensors: { text_prompt: text } });
    tf.dispose([text.embedding, text.mask]);
    expect(maxDiff(r, baseline)).toBe(0);
    await expect(generate(model, { ...fast, conditioningTensors: { nope: text } })).rejects.toThrow(/no conditioning id "nope"/);
  });
});

describe('no leaks on failure and cancellation', () => {
  it('an error in the middle of sampling', async () => {
    const before = tf.memory().numTensors;
    const boom = new Error('callback failed');
    await expect(
      generate(model, {
        ...fast,
        prompt: RAIN,
        onProgress: ({ step }) => {
          if (step === 1) throw boom;
        },
      }),
    ).rejects.toBe(boom);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('cancellation through an AbortSignal', async () => {
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    const steps: number[] = [];
    const e = await generate(model, {
      ...fast,
      prompt: RAIN,
      audio: tone,
      signal: ac.signal,
      onProgress: ({ step }) => {
        steps.push(step);
        if (step === 1) ac.abort();
      },
    }).catch((x: unknown) => x);
    expect((e as Error).name).toBe('AbortError');
    expect(steps).toEqual([0, 1]);
    expect(tf.memory().numTensors).toBe(before);
    // Aborted before it starts: fails at once.
    await expect(generate(model, { ...fast, signal: AbortSignal.abort() })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(before);
  });
});
