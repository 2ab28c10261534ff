// Component `pipeline`: generate_diffusion_cond end to end, through the same generate() the CLI uses.
// Precomputed conditioner outputs, the initial/SDE/VAE noise draws and the audio prompt come from the
// fixture; the int16 output is the reference's post-processing of the raw decoded audio.
import * as tf from '@tensorflow/tfjs';
import { toInt16 } from '../../io/wav.ts';
import { validateConfig } from '../../models/config.ts';
import { AudioXModel } from '../../models/load.ts';
import { createModelFromConfig } from '../../models/wrapper.ts';
import { generate, peakNormalizeBatch } from '../../pipeline/generate.ts';
import type { ConditionerOutput, InpaintOptions } from '../../pipeline/types.ts';
import type { Fixture, Runner } from '../types.ts';
import { recordedMaskDraws } from './conditioners/mel.ts';
import { fakedClipConditioning, withFakedClipSizes } from './pipeline-video.ts';

/** Injected draws `intermediates/<prefix><i>` in call order. */
function numbered(fx: Fixture, prefix: string): string[] {
  const re = new RegExp(`^${prefix}\\d+$`);
  return fx
    .names('intermediates')
    .filter((n) => re.test(n))
    .sort((x, y) => Number(x.slice(prefix.length)) - Number(y.slice(prefix.length)));
}

/** The Gradio inpainting sliders (`mask_args`, percent) as generate()'s inpaint option. */
function inpaintOf(m: Record<string, number>): InpaintOptions {
  return {
    maskStart: m.maskstart,
    maskEnd: m.maskend,
    softnessL: m.softnessL,
    softnessR: m.softnessR,
    marination: m.marination,
    cropFrom: m.cropfrom,
    pasteFrom: m.pastefrom,
    pasteTo: m.pasteto,
  };
}

function channelsOf2d(t: tf.Tensor): Float32Array[] {
  const [c, n] = t.shape;
  const d = t.dataSync() as Float32Array;
  return Array.from({ length: c }, (_, i) => d.slice(i * n, (i + 1) * n));
}

/** [B, C, N] → one [channel][sample] set per batch item. */
function itemsOf(t: tf.Tensor): Float32Array[][] {
  if (t.rank !== 3) throw new Error(`audio prompt must be [B, C, N], got [${t.shape}]`);
  const [b, c, n] = t.shape;
  const d = t.dataSync() as Float32Array;
  return Array.from({ length: b }, (_, j) => Array.from({ length: c }, (_, i) => d.slice((j * c + i) * n, (j * c + i + 1) * n)));
}

async function run(fx: Fixture) {
  const config = validateConfig(withFakedClipSizes(fx, fx.config), `${fx.rel} config`);
  const wrapper = createModelFromConfig(config);
  const model = new AudioXModel(fx.case, fx.path, config, wrapper, null, false);
  const owned: tf.Tensor[] = [];
  const read = (n: string) => {
    const t = fx.tensor(n);
    owned.push(t);
    return t;
  };
  try {
    wrapper.loadStateDict(fx.params);
    const a = fx.args as Record<string, number | string>;
    // Conditioner outputs given as inputs/<id> + inputs/<id>_mask for ids the model has no conditioner for.
    const pre: Record<string, ConditionerOutput> = {};
    for (const name of fx.names('inputs')) {
      if (name.endsWith('_mask') || !fx.has(`inputs/${name}_mask`) || wrapper.conditioner.ids.includes(name)) continue;
      pre[name] = { embedding: read(`inputs/${name}`), mask: read(`inputs/${name}_mask`) };
    }
    for (const [id, c] of Object.entries(fakedClipConditioning(fx, wrapper))) {
      owned.push(c.embedding, c.mask);
      pre[id] = c;
    }
    const maskDraws = recordedMaskDraws(fx);
    owned.push(...maskDraws);
    const sde = numbered(fx, 'noise_');
    // VAE draws in call order: the audio-prompt conditioner first, then the init-audio encode.
    const vae = ['inputs/audio_prompt_vae_noise', 'inputs/init_audio_vae_noise'].filter((n) => fx.has(n)).map(read);
    const maskArgs = (fx.args as { mask_args?: Record<string, number> }).mask_args;
    const initSampleRate = a.init_audio_sample_rate === undefined ? config.sample_rate : Number(a.init_audio_sample_rate);
    if (initSampleRate !== config.sample_rate) throw new Error(`init audio at ${initSampleRate} Hz: the runner gives samples at the model rate only`);
    const numbers: Record<string, number> = {};
    for (const id of wrapper.conditioner.ids) {
      if (fx.has(`inputs/${id}`) && !fx.has(`inputs/${id}_mask`) && !id.includes('audio')) numbers[id] = (await read(`inputs/${id}`).data())[0];
    }
    const result = await generate(model, {
      conditioningTensors: pre,
      audio: fx.has('inputs/audio_prompt') ? itemsOf(read('inputs/audio_prompt')) : undefined,
      noise: {
        initial: read('inputs/noise'),
        sde: sde.map((n) => read(`intermediates/${n}`)),
        inpaint: numbered(fx, 'inpaint_noise_').map((n) => read(`intermediates/${n}`)),
        ...(vae.length ? { vae } : {}),
        ...(maskDraws.length ? { mask: maskDraws } : {}),
      },
      initAudio: fx.has('inputs/init_audio') ? channelsOf2d(read('inputs/init_audio')) : undefined,
      initNoiseLevel: fx.has('inputs/init_audio') && !maskArgs ? Number(a.init_noise_level) : undefined,
      inpaint: maskArgs ? inpaintOf(maskArgs) : undefined,
      // The front-end keeps the whole decoded window.
      fullLength: true,
      numberConditioning: numbers,
      steps: Number(a.steps),
      cfgScale: Number(a.cfg_scale),
      cfgRescale: Number(a.scale_phi ?? 0),
      sampler: String(a.sampler_type) as never,
      sigmaMin: Number(a.sigma_min),
      sigmaMax: Number(a.sigma_max),
      rho: Number(a.rho ?? 1),
      seed: Number(a.seed),
      batchSize: Number(a.batch_size ?? 1),
      normalize: false,
    });
    const B = result.audio.length;
    const C = result.audio[0].length;
    const N = result.audio[0][0].length;
    const flat = new Float32Array(B * C * N);
    result.audio.forEach((item, b) => item.forEach((ch, c) => flat.set(ch, (b * C + c) * N)));
    // The post-processing: peak normalisation over everything, 'b d n -> d (b n)', int16.
    const normalized = peakNormalizeBatch(result.audio);
    const perChannel = Array.from({ length: C }, (_, c) => {
      const out = new Float32Array(B * N);
      for (let b = 0; b < B; b++) out.set(normalized[b][c], b * N);
      return out;
    });
    const floatFlat = new Float32Array(C * B * N);
    perChannel.forEach((ch, c) => floatFlat.set(ch, c * B * N));
    const i16flat = new Int32Array(C * B * N);
    // The reference's two int16 recipes: its demo front-end's WAV writer, or its README script.
    const recipe = fx.reference.includes('audiox.interface.gradio') ? 'writer' : 'readme';
    toInt16(perChannel, { recipe }).forEach((ch, c) => i16flat.set(Int32Array.from(ch), c * B * N));
    return {
      outputs: {
        audio: tf.tensor(flat, [B, C, N]),
        audio_float: tf.tensor(floatFlat, [C, B * N]),
        audio_int16: tf.tensor(i16flat, [C, B * N], 'int32'),
        sigmas: tf.tensor1d(result.sigmas),
      },
    };
  } finally {
    tf.dispose(owned);
    model.dispose();
  }
}

export const runner: Runner = { component: 'pipeline', run };
