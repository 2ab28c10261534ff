import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { WASM_BUDGET, budgetOf } from '../../src/backend/index.ts';
import { F, type ConvTranspose1d, type Module } from '../../src/nn/index.ts';
import type { Fixture } from '../../src/parity/types.ts';
import { DecoderBlock, OobleckDecoder, OobleckEncoder, type OobleckLayer } from '../../src/models/vae/oobleck.ts';
import {
  AutoencoderPretransform,
  chunkWindows,
  decodeMemoryEstimate,
  decoderReceptiveRadius,
  encodeMemoryEstimate,
  type PretransformConfig,
} from '../../src/models/vae/pretransform.ts';
import { InjectedNoise, SeededNoise } from '../../src/nn/noise.ts';
import { expectClose, expectNoLeak, fixture, fixtureJson } from '../helpers.ts';

const manifest = (name: string) => fixtureJson(`manifests/${name}`);
const FULL = fixtureJson<{ model: { pretransform: PretransformConfig } }>('manifests/audiox.config.json').model.pretransform;

function loadFixtureModel(fx: Fixture): AutoencoderPretransform {
  const pt = AutoencoderPretransform.fromConfig(fx.config.pretransform as PretransformConfig, { sampleRate: 44100 });
  pt.model.loadStateDict(fx.params);
  return pt;
}

/** Random weights in the fixtures' style (weight_g U(0.5, 1), weights N(0, 0.7/√fan_in), SnakeBeta N(0, 0.3)). */
function randomInit(m: Module, seed: number): void {
  let s = seed;
  m.initWeights((key, p) => {
    const shape = p.shape;
    if (key.endsWith('weight_g')) return tf.randomUniform(shape, 0.5, 1, 'float32', s++);
    if (key.endsWith('alpha') || key.endsWith('beta')) return tf.randomNormal(shape, 0, 0.3, 'float32', s++);
    if (key.endsWith('bias')) return tf.randomNormal(shape, 0, 0.05, 'float32', s++);
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return tf.randomNormal(shape, 0, 0.7 / Math.sqrt(fanIn), 'float32', s++);
  });
}

describe('Oobleck VAE parity (fixtures vae/*)', () => {
  for (const name of ['encode', 'encode_elu']) {
    it(`${name}: latents and per-layer intermediates`, async () => {
      const fx = fixture(`vae/${name}`);
      const pt = loadFixtureModel(fx);
      try {
        const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
        const eps = fx.tensor('inputs/noise');
        const latents = pt.encode(audio, { noise: new InjectedNoise({ vae: eps }) });
        const maxAbs = await expectClose(latents, fx.tensor('outputs/latents'), fx.atol, fx.rtol);
        console.log(`vae/${name}: latents max_abs ${maxAbs.toExponential(2)} (atol ${fx.atol})`);
        // Layer by layer in torch layout, against the forward hooks of encoder.layers.<i>.
        let h = audio.clone();
        for (const [i, layer] of pt.model.encoder.layers.items.entries()) {
          const next = (layer as OobleckLayer).forward(h);
          h.dispose();
          h = next;
          await expectClose(h, fx.tensor(`intermediates/encoder.layers.${i}`), fx.atol, 1e-3);
        }
        await expectClose(h, fx.tensor('intermediates/pre_bottleneck'), fx.atol, 1e-3);
        // meanOnly = the mean half of the encoder output, no noise drawn.
        const mean = pt.encode(audio, { meanOnly: true });
        await expectClose(mean, h.slice([0, 0, 0], [1, 4, h.shape[2]]), 0, 0);
        tf.dispose([audio, eps, latents, h, mean]);
      } finally {
        pt.dispose();
        fx.file.close();
      }
    });
  }

  for (const name of ['decode', 'decode_elu']) {
    it(`${name}: audio and per-layer intermediates`, async () => {
      const fx = fixture(`vae/${name}`);
      const pt = loadFixtureModel(fx);
      try {
        const z = fx.tensor('inputs/latents') as tf.Tensor3D;
        const audio = pt.decode(z, { chunked: false });
        const maxAbs = await expectClose(audio, fx.tensor('outputs/audio'), fx.atol, fx.rtol);
        console.log(`vae/${name}: audio max_abs ${maxAbs.toExponential(2)} (atol ${fx.atol})`);
        let h = z.clone();
        for (const [i, layer] of pt.model.decoder.layers.items.entries()) {
          const next = (layer as OobleckLayer).forward(h);
          h.dispose();
          h = next;
          await expectClose(h, fx.tensor(`intermediates/decoder.layers.${i}`), fx.atol, 1e-3);
        }
        tf.dispose([z, audio, h]);
      } finally {
        pt.dispose();
        fx.file.close();
      }
    });
  }

  it('encode and decode leave no tensors behind', async () => {
    const fx = fixture('vae/encode');
    const pt = loadFixtureModel(fx);
    const one = fx.tensor('inputs/audio');
    const audio = tf.concat([one, one]) as tf.Tensor3D;
    one.dispose();
    const z = tf.randomNormal([2, 4, 40]) as tf.Tensor3D;
    try {
      await expectNoLeak(() => pt.encode(audio, { noise: new SeededNoise(1) }));
      await expectNoLeak(() => pt.decode(z));
      await expectNoLeak(() => pt.decode(z, { chunked: true, chunkSize: 16, overlap: 8 }));
    } finally {
      tf.dispose([audio, z]);
      pt.dispose();
      fx.file.close();
    }
  });
});

describe('full-size construction', () => {
  it('AutoencoderPretransform.fromConfig(audiox model.pretransform) has exactly the manifest keys/shapes', () => {
    const pt = AutoencoderPretransform.fromConfig(FULL);
    const ours = Object.fromEntries(Object.entries(pt.parameterManifest()).map(([k, v]) => [`pretransform.${k}`, v]));
    for (const name of ['audiox.json', 'audiox-maf.assumed.json', 'audiox-maf-mmdit.assumed.json']) {
      const m = manifest(name);
      const want = Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('pretransform.')));
      expect(Object.keys(want).length).toBe(365);
      expect(ours).toEqual(want);
    }
    expect(pt.downsamplingRatio).toBe(2048);
    expect(pt.encodedChannels).toBe(64);
  });

  it('10 s decode plan fits the wasm budget; one 128-latent window is much smaller', () => {
    const dec = new OobleckDecoder(FULL.config.decoder.config);
    const full = decodeMemoryEstimate(dec, 237);
    const window = decodeMemoryEstimate(dec, 128);
    console.log(`full-size decode estimate: 237 latents ${(full / 2 ** 30).toFixed(2)} GiB, 128-latent window ${(window / 2 ** 30).toFixed(2)} GiB`);
    // Largest activation [1, 128, 485376] f32 ≈ 248 MB; the estimate is a few of those.
    expect(full).toBeGreaterThan(5 * 485376 * 128 * 4);
    expect(full).toBeLessThan(WASM_BUDGET / 2);
    expect(window).toBeLessThan(full * 0.6);
  });

  it('refuses a decode that does not fit the backend budget, before touching weights', () => {
    const pt = AutoencoderPretransform.fromConfig(FULL); // weights never loaded
    pt.model.budget = budgetOf('wasm'); // as loadModel hands the runtime's budget down
    const z = tf.zeros([1, 64, 20000]) as tf.Tensor3D; // 20000 latents ≈ 16 min of audio in one pass
    try {
      expect(() => pt.decode(z, { chunked: false })).toThrow(/VAE decode of 20000 latents, estimated .* exceeds the wasm backend's budget/);
    } finally {
      z.dispose();
    }
  });
});

describe('chunked decoding (§5.4)', () => {
  it('window layout equals the reference: regular hops, last window right-aligned, inner edges trimmed', () => {
    expect(chunkWindows(237, 128, 32)).toEqual([
      { start: 0, keepFrom: 0, keepTo: 112 },
      { start: 96, keepFrom: 112, keepTo: 125 },
      { start: 109, keepFrom: 125, keepTo: 237 },
    ]);
    expect(chunkWindows(224, 128, 32)).toEqual([
      { start: 0, keepFrom: 0, keepTo: 112 },
      { start: 96, keepFrom: 112, keepTo: 224 },
    ]);
    expect(chunkWindows(128, 128, 32)).toEqual([{ start: 0, keepFrom: 0, keepTo: 128 }]);
    expect(() => chunkWindows(100, 128, 32)).toThrow(/shorter than one window/);
  });

  it('the full-size decoder sees ≈ 11 latents each side, inside the default overlap/2 = 16', () => {
    const r = decoderReceptiveRadius(new OobleckDecoder(FULL.config.decoder.config));
    expect(r).toBeGreaterThan(10);
    expect(r).toBeLessThan(16);
  });

  it('chunked ≈ unchunked when overlap/2 covers the receptive radius; seams show when it does not', async () => {
    // ratio 32, radius ≈ 11.4 latents (the same structure as the full model's, which is ≈ 11).
    const pt = AutoencoderPretransform.fromConfig({
      type: 'autoencoder',
      config: {
        encoder: { type: 'oobleck', config: { channels: 4, c_mults: [1, 2], strides: [4, 8], latent_dim: 8, use_snake: true } },
        decoder: { type: 'oobleck', config: { channels: 4, c_mults: [1, 2], strides: [4, 8], latent_dim: 4, use_snake: true, final_tanh: false } },
        bottleneck: { type: 'vae' },
        latent_dim: 4,
        downsampling_ratio: 32,
        io_channels: 2,
      },
    });
    randomInit(pt, 7);
    expect(decoderReceptiveRadius(pt.model.decoder)).toBeLessThan(16);
    const z = tf.randomNormal([2, 4, 150], 0, 1, 'float32', 3) as tf.Tensor3D;
    try {
      const full = pt.decode(z, { chunked: false });
      const chunked = pt.decode(z, { chunked: true, chunkSize: 64, overlap: 32 });
      const seams = pt.decode(z, { chunked: true, chunkSize: 64, overlap: 4 });
      expect(chunked.shape).toEqual([2, 2, 4800]);
      const diff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
      const scale = tf.tidy(() => full.abs().max().dataSync()[0]);
      const dOk = diff(chunked, full);
      const dSeam = diff(seams, full);
      console.log(`chunked vs unchunked: overlap 32 max_abs ${dOk.toExponential(2)}, overlap 4 max_abs ${dSeam.toExponential(2)} (max |audio| ${scale.toFixed(2)})`);
      expect(dOk).toBeLessThan(1e-5 * Math.max(1, scale));
      expect(dSeam).toBeGreaterThan(1e-3 * scale);
      tf.dispose([full, chunked, seams]);
    } finally {
      z.dispose();
      pt.dispose();
    }
  });

  it('decodeHead decodes only what the kept samples see, and matches the full decode there', async () => {
    const pt = AutoencoderPretransform.fromConfig({
      type: 'autoencoder',
      config: {
        encoder: { type: 'oobleck', config: { channels: 4, c_mults: [1, 2], strides: [4, 8], latent_dim: 8, use_snake: true } },
        decoder: { type: 'oobleck', config: { channels: 4, c_mults: [1, 2], strides: [4, 8], latent_dim: 4, use_snake: true, final_tanh: false } },
        bottleneck: { type: 'vae' },
        latent_dim: 4,
        downsampling_ratio: 32,
        io_channels: 2,
      },
    });
    randomInit(pt, 9);
    expect(pt.decodeRadius).toBe(decoderReceptiveRadius(pt.model.decoder));
    const z = tf.randomNormal([2, 4, 80], 0, 1, 'float32', 5) as tf.Tensor3D;
    try {
      await expectNoLeak(() => {
        const full = pt.decode(z, { chunked: false });
        const head = pt.decodeHead(z, 300, { chunked: false });
        const whole = pt.decodeHead(z, 80 * 32, { chunked: false });
        expect(head.shape).toEqual([2, 2, 300]);
        const fullHead = tf.slice(full, [0, 0, 0], [2, 2, 300]);
        const scale = tf.tidy(() => full.abs().max().dataSync()[0]);
        const d = tf.tidy(() => head.sub(fullHead).abs().max().dataSync()[0]);
        expect(d).toBeLessThan(1e-4 * Math.max(1, scale));
        expect(tf.tidy(() => whole.sub(full).abs().max().dataSync()[0])).toBe(0);
        tf.dispose([full, head, whole, fullHead]);
      });
      expect(() => pt.decodeHead(z, 80 * 32 + 1)).toThrow(/2561 samples asked of 80 latents \(at most 2560\)/);
    } finally {
      z.dispose();
      pt.dispose();
    }
  });

  it('the encode/decode memory estimates bound the measured peaks', async () => {
    const cfg = { channels: 16, c_mults: [1, 2, 4], strides: [2, 4, 8], use_snake: true };
    const dec = new OobleckDecoder({ ...cfg, latent_dim: 8, final_tanh: false });
    const enc = new OobleckEncoder({ ...cfg, latent_dim: 16 });
    randomInit(dec, 11);
    randomInit(enc, 12);
    const z = tf.randomNormal([1, 8, 64]) as tf.Tensor3D;
    const audio = tf.randomNormal([1, 2, 4096]) as tf.Tensor3D;
    const peak = async (f: () => tf.Tensor) => {
      const start = tf.memory().numBytes;
      const info = await tf.profile(f);
      (info.result as tf.Tensor).dispose();
      return info.peakBytes - start;
    };
    try {
      for (const [what, measured, est] of [
        ['decoder', await peak(() => dec.forward(z)), decodeMemoryEstimate(dec, 64)],
        ['encoder', await peak(() => enc.forward(audio)), encodeMemoryEstimate(enc, 4096)],
      ] as const) {
        console.log(`${what} peak: measured ${measured} B, estimated ${est} B`);
        expect(est).toBeGreaterThanOrEqual(measured);
        expect(est).toBeLessThan(1.5 * measured);
      }
    } finally {
      tf.dispose([z, audio]);
      dec.dispose();
      enc.dispose();
    }
  });
});

describe('layers', () => {
  it('the polyphase transposed conv equals torch ConvTranspose1d(k = 2s, pad ⌈s/2⌉) for s = 1, 2, 3, 4, 8', async () => {
    for (const s of [1, 2, 3, 4, 8]) {
      const block = new DecoderBlock(3, 5, s, true);
      randomInit(block, 20 + s);
      const up = block.layers.at(1) as unknown as ConvTranspose1d & OobleckLayer;
      const x = tf.randomNormal([2, 3, 9], 0, 1, 'float32', s) as tf.Tensor3D;
      const ours = up.forward(x);
      const w = F.foldWeightNorm(up.weightG!.value, up.weightV!.value);
      const want = F.convTranspose1d(x, w, up.bias!.value, { stride: s, padding: Math.ceil(s / 2) });
      expect(ours.shape).toEqual([2, 5, 9 * s + s - 2 * Math.ceil(s / 2)]);
      await expectClose(ours, want, 1e-5, 1e-5);
      tf.dispose([x, ours, w, want]);
      block.dispose();
    }
  });
});

describe('bad input', () => {
  const fx = () => fixture('vae/encode');
  it('wrong rank / channel count / length and missing noise are clear errors', () => {
    const f = fx();
    const pt = loadFixtureModel(f);
    const mono = tf.zeros([1, 1, 320]) as tf.Tensor3D;
    const flat = tf.zeros([2, 320]);
    const short = tf.zeros([1, 2, 4]) as tf.Tensor3D;
    const ok = tf.zeros([1, 2, 320]) as tf.Tensor3D;
    const badLatents = tf.zeros([1, 5, 10]) as tf.Tensor3D;
    try {
      expect(() => pt.encode(mono, { noise: new SeededNoise(0) })).toThrow(/expects \[B, 2, N\]/);
      expect(() => pt.encode(flat as tf.Tensor3D, { noise: new SeededNoise(0) })).toThrow(/rank 2/);
      expect(() => pt.encode(short, { noise: new SeededNoise(0) })).toThrow(/shorter than one latent/);
      expect(() => pt.encode(ok)).toThrow(/NoiseSource is required/);
      expect(() => pt.decode(badLatents)).toThrow(/expects \[B, 4, N\]/);
      expect(() => AutoencoderPretransform.fromConfig({ ...FULL, type: 'wavelet' })).toThrow(/not supported/);
      expect(() => AutoencoderPretransform.fromConfig({ ...FULL, config: { ...FULL.config, downsampling_ratio: 1024 } })).toThrow(/strides multiply to 2048/);
    } finally {
      tf.dispose([mono, flat, short, ok, badLatents]);
      pt.dispose();
      f.file.close();
    }
  });
});
