// `conditioners` fixtures of the audio-autoencoder conditioners (dispatched here by
// runners/conditioners.ts on `fx.reference`). The audio goes in as the MultiConditioner's list of
// per-item [1, C, N] tensors; the recorded VAE noise is replayed through the `vae` stream.
import * as tf from '@tensorflow/tfjs';
import {
  AudioAutoencoderConditioner,
  AudioAutoencoderConditionerV2,
  type AudioAutoencoderConditionerConfig,
  type AudioAutoencoderConditionerV2Config,
  type AudioConditionerEntry,
} from '../../../models/conditioners/audio/autoencoder.ts';
import { InjectedNoise } from '../../../nn/noise.ts';
import type { Fixture, RunnerResult } from '../../types.ts';

type Entry = AudioConditionerEntry<AudioAutoencoderConditionerV2Config>;

function build(fx: Fixture): AudioAutoencoderConditioner | AudioAutoencoderConditionerV2 {
  const conditioning = fx.config.conditioning as { cond_dim?: number; configs?: Entry[] } | undefined;
  const entries = (conditioning?.configs ?? []).filter((e) => e.type === 'audio_autoencoder' || e.type === 'audio_autoencoder_v2');
  if (entries.length !== 1 || typeof conditioning?.cond_dim !== 'number') {
    throw new Error('audio conditioner fixture: config needs conditioning.cond_dim and exactly one audio_autoencoder(_v2) entry');
  }
  const [entry] = entries;
  return entry.type === 'audio_autoencoder'
    ? AudioAutoencoderConditioner.fromConfig(entry as AudioConditionerEntry<AudioAutoencoderConditionerConfig>, conditioning.cond_dim)
    : AudioAutoencoderConditionerV2.fromConfig(entry, conditioning.cond_dim);
}

export async function runAudioAutoencoderCase(fx: Fixture): Promise<RunnerResult> {
  const cond = build(fx);
  const audio = fx.tensor('inputs/audio') as tf.Tensor3D;
  const eps = fx.tensor('inputs/noise');
  const items = Array.from({ length: audio.shape[0] }, (_, b) => tf.slice(audio, [b, 0, 0], [1, audio.shape[1], audio.shape[2]]));
  try {
    cond.loadStateDict(fx.params);
    const noise = new InjectedNoise({ vae: eps });
    const { embedding, mask } = cond.forward(items, { noise });
    if (noise.remaining('vae') !== 0) throw new Error('audio conditioner: not every recorded VAE noise draw was used');
    return { outputs: { embedding, mask } };
  } finally {
    items.forEach((t) => t.dispose());
    audio.dispose();
    eps.dispose();
    cond.dispose();
  }
}
