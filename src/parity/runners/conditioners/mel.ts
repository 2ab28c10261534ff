// `conditioners` fixtures of AudioMelConditioner (type `mel_spec`), dispatched by ../conditioners.ts.
// The reference's torch.rand / torch.randint masking draws are stored as inputs/mask_rand [B] and
// inputs/mask_start [B] (one randint of shape [1] per item) and replayed through the `mask` stream.
import * as tf from '@tensorflow/tfjs';
import { AudioMelConditioner, type AudioMelConditionerConfig } from '../../../models/conditioners/audio/mel.ts';
import { InjectedNoise } from '../../../nn/noise.ts';
import type { Fixture, RunnerResult } from '../../types.ts';
import { conditionerEntry } from '../conditioners.ts';

/** The recorded masking draws in call order: rand([B]), then randint(…, [1]) per item. */
export function recordedMaskDraws(fx: Fixture): tf.Tensor[] {
  if (!fx.has('inputs/mask_rand')) return [];
  const rand = fx.tensor('inputs/mask_rand');
  const starts = fx.tensor('inputs/mask_start');
  const perItem = tf.split(starts.reshape([-1]), starts.size);
  starts.dispose();
  return [rand, ...perItem];
}

export async function runMelCase(fx: Fixture): Promise<RunnerResult> {
  const { config } = conditionerEntry(fx, 'mel_spec');
  const m = AudioMelConditioner.fromConfig(config as unknown as AudioMelConditionerConfig);
  const draws = recordedMaskDraws(fx);
  const audio = fx.tensor('inputs/audio');
  try {
    m.loadStateDict(fx.params);
    const noise = new InjectedNoise({ mask: draws });
    const out = m.forward([audio], { noise });
    if (noise.remaining('mask')) {
      tf.dispose([out.embedding, out.mask]);
      throw new Error(`${noise.remaining('mask')} recorded masking draws were not consumed`);
    }
    return { outputs: { embedding: out.embedding, mask: out.mask } };
  } finally {
    audio.dispose();
    tf.dispose(draws);
    m.dispose();
  }
}
