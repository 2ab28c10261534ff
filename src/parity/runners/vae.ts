// `vae` fixtures: AutoencoderPretransform.encode (with the recorded bottleneck noise) or .decode,
// chosen from the fixture's `reference`; params are the AudioAutoencoder's (the pretransform's `model`).
import * as tf from '@tensorflow/tfjs';
import { AutoencoderPretransform, type PretransformConfig } from '../../models/vae/pretransform.ts';
import { InjectedNoise } from '../../nn/noise.ts';
import type { Fixture, Runner, RunnerResult } from '../types.ts';

function build(fx: Fixture): AutoencoderPretransform {
  const section = fx.config.pretransform as PretransformConfig | undefined;
  if (!section) throw new Error('vae fixture: config has no "pretransform" section');
  const args = fx.args as { scale?: number; iterate_batch?: boolean };
  const pt = AutoencoderPretransform.fromConfig(
    { ...section, scale: args.scale ?? section.scale, iterate_batch: args.iterate_batch ?? section.iterate_batch },
    { sampleRate: fx.config.sample_rate as number | undefined },
  );
  pt.model.loadStateDict(fx.params);
  return pt;
}

async function run(fx: Fixture): Promise<RunnerResult> {
  const op = /AutoencoderPretransform\.(encode|decode)\b/.exec(fx.reference)?.[1];
  if (!op) throw new Error(`vae fixture: cannot tell encode/decode from reference "${fx.reference}"`);
  const pt = build(fx);
  try {
    if (op === 'encode') {
      const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
      const eps = fx.tensor('inputs/noise');
      try {
        return { outputs: { latents: pt.encode(audio, { noise: new InjectedNoise({ vae: eps }) }) } };
      } finally {
        audio.dispose();
        eps.dispose();
      }
    }
    const latents = fx.tensor('inputs/latents') as tf.Tensor3D;
    try {
      return { outputs: { audio: pt.decode(latents, { chunked: false }) } };
    } finally {
      latents.dispose();
    }
  } finally {
    pt.dispose();
  }
}

export const runner: Runner = { component: 'vae', run };
