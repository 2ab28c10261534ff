// Regressions found by the full-size smoke run (bench/fullsize-smoke.ts), reproduced at tiny size.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16ToF32 } from '../src/io/safetensors.ts';
import { CLIPWithSyncWithEmptyFeatureConditioner } from '../src/models/conditioners/video/clip.ts';
import type { AudioXModel } from '../src/models/load.ts';
import { loadModel } from '../src/pipeline/load.ts';
import { offloadToHost, releaseStreamed, streamStats } from '../src/nn/streaming.ts';
import { AudioAutoencoderConditionerV2, type AudioAutoencoderConditionerV2Config, type AudioConditionerEntry } from '../src/models/conditioners/audio/autoencoder.ts';
import { audioPrompt, audioPromptSamples } from '../src/models/conditioners/audio/prompt.ts';
import { syncFeatures } from '../src/models/conditioners/video/input.ts';
import { fixtureJson } from './helpers.ts';
import { makeTone, makeVideo, tempDir } from './pipeline/media-helpers.ts';

describe('f16ToF32 (streamed half-precision checkpoints widen every block at every step)', () => {
  it('decodes all 65536 half values exactly (IEEE binary16)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const got = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
      if (!Object.is(got[h], Math.fround(want))) throw new Error(`half 0x${h.toString(16)}: ${got[h]} ≠ ${want}`);
    }
  });
});

describe('syncFeatures with a streamed Synchformer', () => {
  let model: AudioXModel;
  let dir: string;
  let video: string;
  beforeAll(async () => {
    model = await loadModel('demo');
    dir = tempDir('sync-stream');
    video = await makeVideo(path.join(dir, 'v.mp4'), 10);
  }, 60_000);
  afterAll(() => {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('uploads the feature extractor once for all 30 segments, with the resident result', async () => {
    const cond = [...model.wrapper.conditioner.conditioners.entries.values()].find(
      (c): c is CLIPWithSyncWithEmptyFeatureConditioner => c instanceof CLIPWithSyncWithEmptyFeatureConditioner,
    )!;
    const opts = { seekTime: 0, referenceQuirks: false };
    const want = await syncFeatures(model, cond, { video }, opts);
    const extractor = model.synchformer!.vfeat_extractor;
    offloadToHost([extractor]);
    try {
      const n0 = tf.memory().numTensors;
      streamStats.reset();
      const got = await syncFeatures(model, cond, { video }, opts);
      expect(streamStats.uploads).toBe(1);
      expect(got.shape).toEqual([1, cond.sizes.sync_tokens, cond.sizes.temporal_dim]);
      expect(Array.from(await got.data())).toEqual(Array.from(await want.data()));
      got.dispose();
      expect(tf.memory().numTensors).toBe(n0);
    } finally {
      want.dispose();
      releaseStreamed(model.synchformer!);
    }
  }, 120_000);
});

describe('audio prompt of audio_autoencoder_v2 (AudioX-MAF-MMDiT)', () => {
  type Entry = AudioConditionerEntry<AudioAutoencoderConditionerV2Config>;
  const cfg = fixtureJson<{ model: { conditioning: { configs: Entry[] } } }>('manifests/audiox-maf-mmdit.assumed.config.json');
  const v2 = AudioAutoencoderConditionerV2.fromConfig(cfg.model.conditioning.configs.find((c) => c.id === 'audio_prompt')!, 768);
  const model = { sampleRate: 44100 } as AudioXModel;
  const opts = { seekTime: 0, referenceQuirks: false };

  it('is latent_seq_len latents long (a 10 s prompt gives 215 ≠ 237 and crashed generation)', async () => {
    const n = audioPromptSamples(model, v2);
    expect(n).toBe(237 * 2048);
    expect(Math.floor(n / v2.pretransform.downsamplingRatio)).toBe(v2.latentSeqLen);
    const silence = await audioPrompt(model, undefined, opts, n);
    expect(silence.shape).toEqual([1, 2, n]);
    silence.dispose();
    const dir = tempDir('v2-prompt');
    try {
      const fromFile = await audioPrompt(model, await makeTone(path.join(dir, 't.wav'), 12), opts, n);
      expect(fromFile.shape).toEqual([1, 2, n]);
      fromFile.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stays 10 s for the other audio conditioners', () => {
    expect(audioPromptSamples(model, v2.pretransform)).toBe(441000);
  });
});
