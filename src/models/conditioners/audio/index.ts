// The audio modality: `audio_autoencoder`, `audio_autoencoder_v2` and `mel_spec`.
import type { ConditionerFactory } from '../registry.ts';
import {
  AudioAutoencoderConditioner,
  AudioAutoencoderConditionerV2,
  type AudioAutoencoderConditionerConfig,
  type AudioAutoencoderConditionerV2Config,
  type AudioConditionerEntry,
} from './autoencoder.ts';
import { AudioMelConditioner, type AudioMelConditionerConfig } from './mel.ts';

export const AUDIO_CONDITIONERS: Readonly<Record<string, ConditionerFactory>> = {
  audio_autoencoder: (entry, condDim) =>
    AudioAutoencoderConditioner.fromConfig(entry as unknown as AudioConditionerEntry<AudioAutoencoderConditionerConfig>, condDim),
  audio_autoencoder_v2: (entry, condDim) =>
    AudioAutoencoderConditionerV2.fromConfig(entry as unknown as AudioConditionerEntry<AudioAutoencoderConditionerV2Config>, condDim),
  mel_spec: (entry, condDim) => AudioMelConditioner.fromConfig({ ...(entry.config ?? {}), output_dim: condDim } as AudioMelConditionerConfig),
};
