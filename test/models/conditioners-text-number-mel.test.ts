import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixedSource, SafetensorsFile, saveTensors } from '../../src/io/safetensors.ts';
import { T5EncoderModel, type T5Config } from '../../src/models/t5.ts';
import { TextTokenizer } from '../../src/models/tokenizer.ts';
import { loadT5Pretrained, T5Conditioner } from '../../src/models/conditioners/text/t5.ts';
import { NumberConditioner } from '../../src/models/conditioners/number/number.ts';
import { AudioMelConditioner, hannWindow, melFilterbank, type AudioMelConditionerConfig } from '../../src/models/conditioners/audio/mel.ts';
import { InjectedNoise, SeededNoise } from '../../src/nn/noise.ts';
import * as F from '../../src/nn/functional.ts';
import { FIXTURES, expectClose, expectNoLeak, seededNormal } from '../helpers.ts';

const open = (rel: string) => SafetensorsFile.open(path.join(FIXTURES, rel));
const params = (fx: SafetensorsFile) => new PrefixedSource(fx, 'params/');
type Entry = { conditioning: { cond_dim: number; configs: { type: string; config: Record<string, unknown> }[] } };
const entryConfig = <T>(fx: SafetensorsFile): T => {
  const c = (JSON.parse(fx.metadata.config) as Entry).conditioning;
  return { output_dim: c.cond_dim, ...c.configs[0].config } as T;
};
const TOKENIZER = path.join(FIXTURES, 'tokenizer');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-cond-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('T5Conditioner', () => {
  let fx: SafetensorsFile;
  let cfg: T5Config;
  beforeAll(() => {
    fx = open('t5/encoder.safetensors');
    cfg = (JSON.parse(fx.metadata.config) as { t5_config: T5Config }).t5_config;
  });
  afterAll(() => fx.close());

  it('fixture tail: Identity and Linear proj_out, padded positions exactly 0', async () => {
    const atol = Number(fx.metadata.atol);
    const encoder = T5EncoderModel.fromConfig(cfg);
    encoder.loadStateDict(params(fx), { ignorePrefixes: ['proj_out.'] });
    const ident = new T5Conditioner({ output_dim: cfg.d_model, dim: cfg.d_model }).attach(encoder);
    expect(ident.proj_out).toBeNull();
    const lin = new T5Conditioner({ output_dim: 24, dim: cfg.d_model });
    lin.loadStateDict(params(fx), { ignorePrefixes: ['shared.', 'encoder.'] });
    const ids = fx.read('inputs/input_ids') as tf.Tensor2D;
    const mask = fx.read('inputs/attention_mask') as tf.Tensor2D;
    const a = ident.forwardIds(ids, mask);
    console.log(`t5 embeddings_identity max_abs=${(await expectClose(a.embedding, fx.read('outputs/embeddings_identity'), atol)).toExponential(2)}`);
    expect(a.mask.dtype).toBe('bool');
    expect(Array.from(await a.mask.data())).toEqual(Array.from(await mask.data()));
    const h = encoder.forward(ids, mask);
    const b = lin.project(h, mask);
    console.log(`t5 embeddings_linear max_abs=${(await expectClose(b, fx.read('outputs/embeddings_linear'), atol)).toExponential(2)}`);
    const padRow = await b.slice([1, 6, 0], [1, 4, -1]).data();
    expect(padRow.every((v) => v === 0)).toBe(true);
    await expectNoLeak(() => {
      const r = ident.forwardIds(ids, mask);
      return [r.embedding, r.mask];
    });
    tf.dispose([ids, mask, a.embedding, a.mask, h, b]);
    ident.dispose();
    lin.dispose();
  });

  it('forward(texts): always max_length tokens; the empty prompt keeps one non-zero token (quirk 23)', async () => {
    const tokenizer = TextTokenizer.fromFile(path.join(TOKENIZER, 'tokenizer.json'));
    const tiny: T5Config = { vocab_size: 512, d_model: 16, d_kv: 4, d_ff: 32, num_layers: 2, num_heads: 4, relative_attention_num_buckets: 8, relative_attention_max_distance: 16 };
    const encoder = T5EncoderModel.fromConfig(tiny);
    encoder.initWeights(seededNormal(3, 0.5));
    const cond = new T5Conditioner({ output_dim: 16, dim: 16, max_length: 128 }).attach(encoder, tokenizer);
    const { embedding, mask } = cond.forward(['', 'A dog barks in the distance.']);
    expect(embedding.shape).toEqual([2, 128, 16]);
    expect(mask.shape).toEqual([2, 128]);
    const m = Array.from(await mask.data(), Number);
    expect(m.slice(0, 128).reduce((s, v) => s + v, 0)).toBe(1);
    const e = await embedding.data();
    const nonZeroRows = (b: number) =>
      Array.from({ length: 128 }, (_, t) => t).filter((t) => e.slice((b * 128 + t) * 16, (b * 128 + t + 1) * 16).some((v) => v !== 0));
    expect(nonZeroRows(0)).toEqual([0]);
    const real = m.slice(128).reduce((s, v) => s + v, 0);
    expect(nonZeroRows(1)).toEqual(Array.from({ length: real }, (_, i) => i));
    await expectNoLeak(() => {
      const r = cond.forward(['leak check']);
      return [r.embedding, r.mask];
    });
    tf.dispose([embedding, mask]);
    cond.dispose();
  });

  it('loadT5Pretrained reads a HF snapshot directory (config.json, model.safetensors with shared.weight only, tokenizer.json)', async () => {
    const tiny: T5Config = { vocab_size: 512, d_model: 8, d_kv: 4, d_ff: 16, num_layers: 1, num_heads: 2, relative_attention_num_buckets: 8, relative_attention_max_distance: 16, feed_forward_proj: 'relu' };
    const src = T5EncoderModel.fromConfig(tiny);
    src.initWeights(seededNormal(9, 0.5));
    const sd = { ...src.stateDict() };
    delete sd['encoder.embed_tokens.weight'];
    const dir = path.join(tmp, 't5-tiny');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...tiny, model_type: 't5', architectures: ['T5ForConditionalGeneration'] }));
    fs.copyFileSync(path.join(TOKENIZER, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    await saveTensors(path.join(dir, 'model.safetensors'), sd);
    const { encoder, tokenizer } = loadT5Pretrained(dir);
    await expectClose(encoder.encoder.embed_tokens.weight.value, src.shared.weight.value, 0, 0);
    expect(tokenizer.encodeOne('')).toEqual([1]);
    encoder.dispose();
    src.dispose();
    expect(() => loadT5Pretrained(path.join(tmp, 'missing'))).toThrow(/has no config\.json/);
  });

  it('bad use gives clear errors', () => {
    expect(() => new T5Conditioner({ output_dim: 768, t5_model_name: 't5-huge' })).toThrow(/unknown T5 model "t5-huge"/);
    const c = new T5Conditioner({ output_dim: 768 });
    expect(c.proj_out).toBeNull();
    expect(new T5Conditioner({ output_dim: 768, project_out: true }).proj_out).not.toBeNull();
    expect(() => c.forward(['x'])).toThrow(/no tokenizer attached/);
    const ids = tf.zeros([1, 4], 'int32') as tf.Tensor2D;
    expect(() => c.forwardIds(ids, ids)).toThrow(/no T5 encoder attached/);
    ids.dispose();
    expect(() => c.attach(T5EncoderModel.fromConfig({ vocab_size: 8, d_model: 16, d_kv: 4, d_ff: 8, num_layers: 1, num_heads: 4 }))).toThrow(
      /encoder width 16 ≠ expected 768/,
    );
  });
});

describe('NumberConditioner: fixture conditioners/number', () => {
  let fx: SafetensorsFile;
  let m: NumberConditioner;
  beforeAll(() => {
    fx = open('conditioners/number.safetensors');
    m = NumberConditioner.fromConfig(entryConfig(fx));
    m.loadStateDict(params(fx));
  });
  afterAll(() => {
    m.dispose();
    fx.close();
  });

  it('matches embedding, mask and the Fourier features', async () => {
    const atol = Number(fx.metadata.atol);
    const values = Array.from(await fx.read('inputs/values').data());
    const { result, captures } = await m.capture(['embedder.embedding.0'], () => m.forward(values));
    console.log(`number embedding max_abs=${(await expectClose(result.embedding, fx.read('outputs/embedding'), atol)).toExponential(2)}`);
    await expectClose(result.mask, fx.read('outputs/mask'), 0, 0);
    await expectClose(captures['embedder.embedding.0'], fx.read('intermediates/fourier_features'), atol);
    tf.dispose([result.embedding, result.mask, ...Object.values(captures)]);
  });

  it('clamps to [min_val, max_val] and normalises (u = 0 → [0, sin 0…, cos 0…])', async () => {
    const a = m.forward([600, -2, 0, 512]);
    const e = await a.embedding.data();
    const d = 32;
    expect(Array.from(e.slice(0, d))).toEqual(Array.from(e.slice(3 * d, 4 * d))); // 600 → 512
    expect(Array.from(e.slice(d, 2 * d))).toEqual(Array.from(e.slice(2 * d, 3 * d))); // −2 → 0
    // u = 0: features are [0, 0×128, 1×128] so the output is bias + Σ of the cos columns of W.
    const w = m.embedder.embedding.items[1] as unknown as { weight: { value: tf.Tensor }; bias: { value: tf.Tensor } };
    const expected = tf.tidy(() => w.weight.value.slice([0, 129], [d, 128]).sum(1).add(w.bias.value));
    await expectClose(a.embedding.slice([1, 0, 0], [1, 1, d]).reshape([d]), expected, 1e-5, 1e-5);
    tf.dispose([a.embedding, a.mask, expected]);
  });

  it('leaks nothing; rejects bad values and ranges', async () => {
    await expectNoLeak(() => {
      const r = m.forward([1, 2]);
      return [r.embedding, r.mask];
    });
    expect(() => m.forward([])).toThrow(/non-empty list/);
    expect(() => m.forward([Number('x')])).toThrow(/value #0 \(NaN\) is not a number/);
    expect(() => new NumberConditioner({ output_dim: 4, min_val: 1, max_val: 1 })).toThrow(/max_val \(1\) must exceed min_val \(1\)/);
  });
});

describe('AudioMelConditioner', () => {
  const load = (rel: string) => {
    const fx = open(rel);
    const m = AudioMelConditioner.fromConfig(entryConfig<AudioMelConditionerConfig>(fx));
    m.loadStateDict(params(fx));
    return { fx, m };
  };

  it('mel_nomask: embedding, log-mel, filterbank and window match', async () => {
    const { fx, m } = load('conditioners/mel_nomask.safetensors');
    const atol = Number(fx.metadata.atol);
    expect(m.masksByDefault).toBe(false);
    const audio = fx.read('inputs/audio');
    const out = m.forward([audio]);
    console.log(`mel_nomask embedding max_abs=${(await expectClose(out.embedding, fx.read('outputs/embedding'), atol)).toExponential(2)}`);
    await expectClose(out.mask, fx.read('outputs/mask'), 0, 0);
    // float32 step by step like torchaudio; a few filter edges still differ by some ulps of f_pts (≤ 3e-5).
    await expectClose(tf.tensor2d(melFilterbank(513, 256, 24000), [513, 256]), fx.read('intermediates/mel_fb'), 5e-5, 1e-4);
    await expectClose(tf.tensor1d(hannWindow(1024)), fx.read('intermediates/stft_window'), 6e-8, 0); // ≤ 1 ulp
    const mono = audio.mean(1) as tf.Tensor2D;
    const logmel = m.logMel(mono);
    await expectClose(logmel, fx.read('intermediates/mels_after_mask'), 5e-5, 1e-4);
    await expectClose(logmel.transpose([0, 2, 1]), fx.read('intermediates/logmel'), 5e-5, 1e-4);
    await expectNoLeak(() => {
      const r = m.forward(audio);
      return [r.embedding, r.mask];
    });
    tf.dispose([audio, mono, logmel, out.embedding, out.mask]);
    m.dispose();
    fx.close();
  });

  it('mel_mask: replays the recorded rand/randint draws; masked frames become exactly proj_features(0)', async () => {
    const { fx, m } = load('conditioners/mel_mask.safetensors');
    const atol = Number(fx.metadata.atol);
    expect(m.masksByDefault).toBe(true);
    const audio = fx.read('inputs/audio');
    const starts = fx.read('inputs/mask_start');
    const noise = new InjectedNoise({ mask: [fx.read('inputs/mask_rand'), ...tf.split(starts, 2)] });
    const out = m.forward([audio.slice([0, 0, 0], [1, -1, -1]), audio.slice([1, 0, 0], [1, -1, -1])], { noise });
    expect(noise.remaining('mask')).toBe(0);
    console.log(`mel_mask embedding max_abs=${(await expectClose(out.embedding, fx.read('outputs/embedding'), atol)).toExponential(2)}`);
    // Expected masked spans from the recorded draws (ratio = 0.3·u + 0.7, len = int(19·ratio)).
    const u = await fx.read('inputs/mask_rand').data();
    const s = await starts.data();
    const e = await out.embedding.data();
    const bias = await m.proj_features.bias!.value.data();
    for (let b = 0; b < 2; b++) {
      const len = Math.trunc(Math.fround(19 * Math.fround(Math.fround(u[b] * Math.fround(0.3)) + Math.fround(0.7))));
      expect(len).toBeGreaterThanOrEqual(13);
      for (let t = 0; t < 19; t++) {
        const row = e.slice((b * 19 + t) * 768, (b * 19 + t + 1) * 768);
        const masked = t >= s[b] && t < s[b] + len;
        expect(row.every((v, i) => v === bias[i])).toBe(masked);
      }
    }
    // Switched off: identical to proj_features(log-mel).
    const off = m.forward([audio], { randomMasking: false });
    const ref = tf.tidy(() => F.linear(fx.read('intermediates/logmel').transpose([0, 2, 1]), m.proj_features.weight.value, m.proj_features.bias!.value));
    await expectClose(off.embedding, ref, atol);
    tf.dispose([audio, starts, out.embedding, out.mask, off.embedding, off.mask, ref]);
    m.dispose();
    fx.close();
  });

  it('default config masks 70–100 % of the frames with seeded noise, reproducibly', async () => {
    const m = new AudioMelConditioner({ output_dim: 768 });
    expect(m.proj_features.weight.shape).toEqual([768, 100]);
    m.initWeights((_k, p) => tf.ones(p.shape));
    const audio = tf.randomNormal([1, 2, 2560], 0, 0.1, 'float32', 7);
    const frames = 1 + Math.floor(2560 / 256);
    const run = async () => {
      const { embedding, mask } = m.forward([audio], { noise: new SeededNoise(5) });
      const e = await embedding.data();
      tf.dispose([embedding, mask]);
      return e;
    };
    const [a, b] = [await run(), await run()];
    expect(Array.from(a)).toEqual(Array.from(b));
    const maskedFrames = Array.from({ length: frames }, (_, t) => a.slice(t * 768, (t + 1) * 768).every((v) => v === 1)).filter(Boolean).length;
    expect(maskedFrames).toBeGreaterThanOrEqual(Math.trunc(frames * 0.7));
    await expectNoLeak(() => {
      const r = m.forward([audio], { noise: new SeededNoise(1) });
      return [r.embedding, r.mask];
    });
    audio.dispose();
    m.dispose();
  });

  it('bad inputs give clear errors', () => {
    const m = new AudioMelConditioner({ output_dim: 768 });
    m.initWeights((_k, p) => tf.zeros(p.shape));
    const audio = tf.zeros([1, 2, 2048]);
    expect(() => m.forward([audio])).toThrow(/random masking is enabled .* but no noise source was given/);
    const short = tf.zeros([1, 1, 300]);
    expect(() => m.forward([short], { randomMasking: false })).toThrow(/300 samples are too few for reflect padding by 512/);
    const flat = tf.zeros([2, 2048]);
    expect(() => m.forward(flat, { randomMasking: false })).toThrow(/expected \[b, C, N\] waveforms/);
    expect(() => m.forward([], { randomMasking: false })).toThrow(/no audio given/);
    expect(() => new AudioMelConditioner({ output_dim: 768, mel_spec_type: 'vocos' })).toThrow(/"vocos" is not supported/);
    expect(new AudioMelConditioner({ output_dim: 32 }).proj_out?.weight.shape).toEqual([32, 768]); // created, never applied
    tf.dispose([audio, short, flat]);
    m.dispose();
  });
});

describe('conditioners parity dispatcher', () => {
  it('reads the conditioner class from the reference metadata', async () => {
    const { referenceClass, runner } = await import('../../src/parity/runners/conditioners.ts');
    expect(referenceClass('audiox.models.conditioners.AudioMelConditioner.forward (via MultiConditioner)')).toBe('AudioMelConditioner');
    expect(referenceClass('audiox.models.conditioners.AudioAutoencoderConditionerv2.forward')).toBe('AudioAutoencoderConditionerv2');
    expect(referenceClass('transformers.T5EncoderModel')).toBeNull();
    const fake = (reference: string) => ({ reference }) as unknown as Parameters<typeof runner.run>[0];
    await expect(runner.run(fake('audiox.models.conditioners.IntConditioner.forward'))).rejects.toThrow(/no handler for IntConditioner/);
    await expect(runner.run(fake('something else'))).rejects.toThrow(/cannot tell the conditioner class/);
  });
});
