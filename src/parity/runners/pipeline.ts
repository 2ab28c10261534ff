// Component `pipeline`: generate_diffusion_cond end to end, through the same generate() the CLI uses.
// Precomputed conditioner outputs, the initial/SDE/VAE noise draws and the audio prompt come from the
// fixture; the int16 output is the reference's post-processing of the raw decoded audio.
import * as tf from '@tensorflow/tfjs';
import { toInt16Reference } from '../../io/wav.ts';
import { validateConfig } from '../../models/config.ts';
import { AudioXModel } from '../../models/load.ts';
import { createModelFromConfig } from '../../models/wrapper.ts';
import { generate } from '../../pipeline/generate.ts';
import type { CondTensors } from '../../pipeline/types.ts';
import type { Fixture, Runner } from '../types.ts';
import { recordedMaskDraws } from './conditioners/mel.ts';
import { fakedClipConditioning, withFakedClipSizes } from './pipeline-video.ts';

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
    const pre: Record<string, CondTensors> = {};
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
    const sde = fx.names('intermediates').filter((n) => /^noise_\d+$/.test(n)).sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
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
        ...(fx.has('inputs/audio_prompt_vae_noise') ? { vae: read('inputs/audio_prompt_vae_noise') } : {}),
        ...(maskDraws.length ? { mask: maskDraws } : {}),
      },
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
      secondsTotal: config.sample_size / config.sample_rate,
      normalize: false,
    });
    const B = result.audio.length;
    const C = result.audio[0].length;
    const N = result.audio[0][0].length;
    const flat = new Float32Array(B * C * N);
    result.audio.forEach((item, b) => item.forEach((ch, c) => flat.set(ch, (b * C + c) * N)));
    // 'b d n -> d (b n)' then the reference's int16 conversion.
    const perChannel = Array.from({ length: C }, (_, c) => {
      const out = new Float32Array(B * N);
      for (let b = 0; b < B; b++) out.set(result.audio[b][c], b * N);
      return out;
    });
    const i16 = toInt16Reference(perChannel);
    const i16flat = new Int32Array(C * B * N);
    i16.forEach((ch, c) => i16flat.set(Int32Array.from(ch), c * B * N));
    return {
      outputs: {
        audio: tf.tensor(flat, [B, C, N]),
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
