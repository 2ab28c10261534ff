import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { PrefixedSource } from '../../src/io/safetensors.ts';
import {
  AudioAutoencoderConditioner,
  AudioAutoencoderConditionerV2,
  type AudioAutoencoderConditionerConfig,
  type AudioAutoencoderConditionerV2Config,
  type AudioConditionerEntry,
} from '../../src/models/conditioners/audio/autoencoder.ts';
import { AutoencoderPretransform } from '../../src/models/vae/pretransform.ts';
import { runAudioAutoencoderCase } from '../../src/parity/runners/conditioners/audio.ts';
import type { Fixture } from '../../src/parity/types.ts';
import { InjectedNoise, SeededNoise } from '../../src/nn/noise.ts';
import { expectClose, expectNoLeak, fixture, fixtureJson } from '../helpers.ts';

type Entry = AudioConditionerEntry<AudioAutoencoderConditionerV2Config>;
const PREFIX = 'conditioner.conditioners.audio_prompt.';

function audioEntry(configFile: string): Entry {
  const cfg = fixtureJson<{ model: { conditioning: { configs: Entry[] } } }>(`manifests/${configFile}`);
  return cfg.model.conditioning.configs.find((c) => c.id === 'audio_prompt')!;
}

function fixtureEntry(fx: Fixture): { entry: AudioConditionerEntry<AudioAutoencoderConditionerConfig>; dim: number } {
  const c = fx.config.conditioning as { cond_dim: number; configs: AudioConditionerEntry<AudioAutoencoderConditionerConfig>[] };
  return { entry: c.configs[0], dim: c.cond_dim };
}

function loadV1(fx: Fixture): AudioAutoencoderConditioner {
  const { entry, dim } = fixtureEntry(fx);
  const cond = AudioAutoencoderConditioner.fromConfig(entry, dim);
  cond.loadStateDict(fx.params);
  return cond;
}

function items(audio: tf.Tensor3D): tf.Tensor3D[] {
  return Array.from({ length: audio.shape[0] }, (_, b) => tf.slice(audio, [b, 0, 0], [1, audio.shape[1], audio.shape[2]]));
}

describe('AudioAutoencoderConditioner (audio_autoencoder) parity', () => {
  for (const name of ['audio_autoencoder', 'audio_autoencoder_zero']) {
    it(`${name}: embedding, mask and intermediates`, async () => {
      const fx = fixture(`conditioners/${name}`);
      const cond = loadV1(fx);
      const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
      const eps = fx.tensor('inputs/noise');
      const list = items(audio);
      try {
        const { result, captures } = await cond.capture(['pretransform.model.encoder', 'proj_out'], () =>
          cond.forward(list, { noise: new InjectedNoise({ vae: eps }) }),
        );
        const maxAbs = await expectClose(result.embedding, fx.tensor('outputs/embedding'), fx.atol, fx.rtol);
        console.log(`conditioners/${name}: embedding max_abs ${maxAbs.toExponential(2)} (atol ${fx.atol})`);
        await expectClose(result.mask, fx.tensor('outputs/mask'), 0, 0);
        expect(result.mask.shape).toEqual([audio.shape[0], 32]); // quirk 20: [B, cond_dim]
        // The encoder runs once per item (iterate_batch): pre_bottleneck[.k] = k-th call.
        for (let b = 0; b < audio.shape[0]; b++) {
          const ours = captures[`pretransform.model.encoder${b ? `.${b}` : ''}`];
          const want = audio.shape[0] === 1 ? 'pre_bottleneck' : `pre_bottleneck.${b}`;
          await expectClose(ours, fx.tensor(`intermediates/${want}`), fx.atol, 1e-3);
        }
        await expectClose(captures.proj_out, fx.tensor('intermediates/proj_out'), fx.atol, 1e-3);
        tf.dispose([result.embedding, result.mask, ...Object.values(captures)]);
      } finally {
        tf.dispose([audio, eps, ...list]);
        cond.dispose();
        fx.file.close();
      }
    });
  }

  it('the parity runner passes both fixtures', async () => {
    for (const name of ['audio_autoencoder', 'audio_autoencoder_zero']) {
      const fx = fixture(`conditioners/${name}`);
      try {
        const r = await runAudioAutoencoderCase(fx);
        if (!('outputs' in r)) throw new Error('expected outputs');
        await expectClose(r.outputs.embedding, fx.tensor('outputs/embedding'), fx.atol, fx.rtol);
        tf.dispose(Object.values(r.outputs));
      } finally {
        fx.file.close();
      }
    }
  });

  it('quirk 10: exactly-silent items get empty_audio_feat, nearly-silent ones do not; noise is drawn for all', async () => {
    const fx = fixture('conditioners/audio_autoencoder_zero');
    const cond = loadV1(fx);
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    const quiet = tf.fill([1, 2, 1720], 1e-30) as tf.Tensor3D;
    const silent = tf.zeros([1, 2, 1720]) as tf.Tensor3D;
    const [loud] = items(audio);
    try {
      const noise = new SeededNoise(5);
      const out = cond.forward([loud, silent, quiet], { noise });
      const empty = cond.emptyAudioFeat.value;
      await expectClose(out.embedding.slice([1, 0, 0], [1, 215, 32]), empty, 0, 0);
      const q = out.embedding.slice([2, 0, 0], [1, 215, 32]);
      expect(tf.tidy(() => q.sub(empty).abs().max().dataSync()[0])).toBeGreaterThan(1e-3);
      // Replaying the same stream gives the same result: one [3, 4, 215] draw for the whole batch.
      const again = cond.forward([loud, silent, quiet], { noise: new SeededNoise(5) });
      await expectClose(again.embedding, out.embedding, 0, 0);
      tf.dispose([out.embedding, out.mask, again.embedding, again.mask, q]);
    } finally {
      tf.dispose([audio, quiet, silent, loud]);
      cond.dispose();
      fx.file.close();
    }
  });

  it('mono is duplicated and extra channels are dropped (set_audio_channels)', async () => {
    const fx = fixture('conditioners/audio_autoencoder');
    const cond = loadV1(fx);
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    const left = audio.slice([0, 0, 0], [1, 1, 1720]) as tf.Tensor3D;
    const dual = tf.concat([left, left], 1) as tf.Tensor3D;
    const three = tf.concat([audio, left], 1) as tf.Tensor3D;
    try {
      const run = (x: tf.Tensor3D) => cond.forward([x], { noise: new SeededNoise(9) }).embedding;
      const [a, b, c, d] = [run(left), run(dual), run(three), run(audio)];
      await expectClose(a, b, 0, 0);
      await expectClose(c, d, 0, 0);
      tf.dispose([a, b, c, d]);
    } finally {
      tf.dispose([audio, left, dual, three]);
      cond.dispose();
      fx.file.close();
    }
  });

  it('leaves no tensors behind', async () => {
    const fx = fixture('conditioners/audio_autoencoder_zero');
    const cond = loadV1(fx);
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    try {
      await expectNoLeak(() => {
        const { embedding, mask } = cond.forward(audio, { noise: new SeededNoise(1) });
        return [embedding, mask];
      });
    } finally {
      audio.dispose();
      cond.dispose();
      fx.file.close();
    }
  });

  it('bad input is a clear error', () => {
    const fx = fixture('conditioners/audio_autoencoder');
    const cond = loadV1(fx);
    const flat = tf.zeros([2, 1720]);
    const short = tf.zeros([1, 2, 1600]) as tf.Tensor3D;
    const ok = tf.zeros([1, 2, 1720]) as tf.Tensor3D;
    try {
      expect(() => cond.forward(flat, { noise: new SeededNoise(0) })).toThrow(/must be \[B, channels, samples\], got rank 2/);
      expect(() => cond.forward([], { noise: new SeededNoise(0) })).toThrow(/no audio/);
      expect(() => cond.forward([ok, short], { noise: new SeededNoise(0) })).toThrow(/different lengths/);
      expect(() => cond.forward(short, { noise: new SeededNoise(0) })).toThrow(/gives 200 latents, but the reference needs exactly 215/);
      expect(() => cond.forward(ok)).toThrow(/NoiseSource is required/);
      expect(() => AudioAutoencoderConditioner.fromConfig({ type: 'mel_spec', config: fixtureEntry(fx).entry.config }, 32)).toThrow(/wrong conditioner type/);
    } finally {
      tf.dispose([flat, short, ok]);
      cond.dispose();
      fx.file.close();
    }
  });
});

describe('full-size audio-prompt conditioners match the manifests', () => {
  const cases = [
    ['audiox.config.json', 'audiox.json', 'audio_autoencoder'],
    ['audiox-maf-mmdit.assumed.config.json', 'audiox-maf-mmdit.assumed.json', 'audio_autoencoder_v2'],
  ] as const;
  for (const [configFile, manifestFile, type] of cases) {
    it(`${type} (${configFile})`, () => {
      const entry = audioEntry(configFile);
      expect(entry.type).toBe(type);
      const cond =
        type === 'audio_autoencoder'
          ? AudioAutoencoderConditioner.fromConfig(entry, 768)
          : AudioAutoencoderConditionerV2.fromConfig(entry, 768);
      const ours = Object.fromEntries(Object.entries(cond.parameterManifest()).map(([k, v]) => [PREFIX + k, v]));
      const manifest = fixtureJson<Record<string, number[]>>(`manifests/${manifestFile}`);
      const want = Object.fromEntries(Object.entries(manifest).filter(([k]) => k.startsWith(PREFIX)));
      expect(ours).toEqual(want);
    });
  }
  it('AudioX-MAF uses mel_spec, not an autoencoder', () => {
    expect(audioEntry('audiox-maf.assumed.config.json').type).toBe('mel_spec');
  });
});

describe('AudioAutoencoderConditionerV2 (audio_autoencoder_v2)', () => {
  const lastFramesReversed = () => tf.tensor1d(Int32Array.from({ length: 128 }, (_, j) => 214 - j), 'int32');
  // The tiny VAE of the v1 fixture, latent_seq_len 215 (its 1720-sample audio), cond_dim 32.
  function buildV2(fx: Fixture, opts: { mask_ratio_start?: number; mask_ratio_end?: number } = {}): AudioAutoencoderConditionerV2 {
    const { entry } = fixtureEntry(fx);
    const v2 = AudioAutoencoderConditionerV2.fromConfig(
      { type: 'audio_autoencoder_v2', config: { ...entry.config, latent_seq_len: 215, ...opts } },
      32,
    );
    v2.pretransform.loadStateDict(new PrefixedSource(fx.params, 'pretransform.'));
    // Hand-checkable projections: token j = latent frame 214 − j; proj_out copies the 4 latent
    // channels into the first 4 outputs and adds 1 to channel 31.
    v2.proj_features_128.weight.set(tf.tidy(() => tf.oneHot(lastFramesReversed(), 215).cast('float32')));
    v2.proj_features_128.bias!.set(tf.zeros([128]));
    v2.proj_out!.weight.set(tf.tidy(() => tf.concat([tf.eye(4), tf.zeros([28, 4])], 0)));
    v2.proj_out!.bias!.set(tf.oneHot(31, 32).cast('float32'));
    return v2;
  }

  it('encodes, projects 215 → 128 along time, then 4 → 32 channels; mask [B, D]', async () => {
    const fx = fixture('conditioners/audio_autoencoder_zero');
    const v2 = buildV2(fx);
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    const eps = fx.tensor('inputs/noise');
    const list = items(audio);
    try {
      const { embedding, mask } = v2.forward(list, { noise: new InjectedNoise({ vae: eps }) });
      expect(embedding.shape).toEqual([2, 128, 32]);
      expect(mask.shape).toEqual([2, 32]);
      // Expected by hand: the VAE latents [B, 4, 215] (same noise), frames 214, 213, …, 87, transposed.
      const latents = v2.pretransform.encode(audio, { noise: new InjectedNoise({ vae: eps }) });
      const want = tf.tidy(() => {
        const picked = tf.gather(latents, lastFramesReversed(), 2).transpose([0, 2, 1]); // [B, 128, 4]
        return tf.concat([picked, tf.zeros([2, 128, 27]), tf.ones([2, 128, 1])], 2);
      });
      await expectClose(embedding, want, 1e-6, 1e-6);
      // No empty-feature substitution: item 1 is silent and is encoded like any other.
      const silentTokens = embedding.slice([1, 0, 0], [1, 128, 4]);
      expect(tf.tidy(() => silentTokens.abs().max().dataSync()[0])).toBeGreaterThan(0);
      tf.dispose([embedding, mask, latents, want, silentTokens]);
    } finally {
      tf.dispose([audio, eps, ...list]);
      v2.dispose();
      fx.file.close();
    }
  });

  it('right-pads shorter items and applies random span masking with the injected draws', async () => {
    const fx = fixture('conditioners/audio_autoencoder');
    const v2 = buildV2(fx);
    const masked = buildV2(fx, { mask_ratio_start: 0.25, mask_ratio_end: 0.75 });
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    const short = audio.slice([0, 0, 0], [1, 2, 1000]) as tf.Tensor3D;
    const padded = tf.pad(short, [[0, 0], [0, 0], [0, 720]]) as tf.Tensor3D;
    // u = 0.5 → ratio 0.5 → 860 samples zeroed from randint 100.
    const spanZeroed = tf.concat([audio.slice([0, 0, 0], [1, 2, 100]), tf.zeros([1, 2, 860]), audio.slice([0, 0, 960], [1, 2, 760])], 2) as tf.Tensor3D;
    try {
      const a = v2.forward([audio, short], { noise: new SeededNoise(3) }).embedding;
      const b = v2.forward([audio, padded], { noise: new SeededNoise(3) }).embedding;
      await expectClose(a, b, 0, 0);
      const noise = new InjectedNoise(
        { mask: [tf.tensor1d([0.5]), tf.tensor1d([100], 'int32')] },
        new SeededNoise(4),
      );
      const c = masked.forward([audio], { noise }).embedding;
      expect(noise.remaining('mask')).toBe(0);
      const d = v2.forward([spanZeroed], { noise: new SeededNoise(4) }).embedding;
      await expectClose(c, d, 0, 0);
      tf.dispose([a, b, c, d]);
    } finally {
      tf.dispose([audio, short, padded, spanZeroed]);
      v2.dispose();
      masked.dispose();
      fx.file.close();
    }
  });

  it('leaves no tensors behind; wrong latent count and bad rank are clear errors', async () => {
    const fx = fixture('conditioners/audio_autoencoder');
    const v2 = buildV2(fx);
    const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
    const long = tf.zeros([1, 2, 2048]) as tf.Tensor3D;
    const flat = tf.zeros([2, 1720]);
    try {
      await expectNoLeak(() => {
        const { embedding, mask } = v2.forward([audio], { noise: new SeededNoise(1) });
        return [embedding, mask];
      });
      expect(() => v2.forward([long], { noise: new SeededNoise(0) })).toThrow(/gives 256 latents, but proj_features_128 expects latent_seq_len = 215/);
      expect(() => v2.forward([flat], { noise: new SeededNoise(0) })).toThrow(/got rank 2/);
    } finally {
      tf.dispose([audio, long, flat]);
      v2.dispose();
      fx.file.close();
    }
  });

  it('full-size default latent_seq_len is 237 (proj_features_128 [128, 237])', () => {
    const entry = audioEntry('audiox-maf-mmdit.assumed.config.json');
    const { latent_seq_len: _drop, ...rest } = entry.config;
    const v2 = AudioAutoencoderConditionerV2.fromConfig({ ...entry, config: rest }, 768);
    expect(v2.parameterManifest()['proj_features_128.weight']).toEqual([128, 237]);
    expect(v2.pretransform).toBeInstanceOf(AutoencoderPretransform);
  });
});
