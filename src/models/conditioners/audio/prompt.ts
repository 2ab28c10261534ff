// Media → the audio conditioners' input: the audio prompt as a [batch, 2, samples] tensor of the
// conditioning window (docs/REFERENCE.md §8; quirk 15 only with `referenceQuirks`).
import * as tf from '@tensorflow/tfjs';
import { loadAudioWindow } from '../../../io/audio.ts';
import { MediaError } from '../../../io/ffmpeg.ts';
import { Module } from '../../../nn/module.ts';
import type { ConditionerOutput } from '../../conditioning.ts';
import {
  CONDITIONING_SECONDS,
  type AudioPromptSource,
  type ConditionContext,
  type Conditioner,
  type ConditionerHost,
  type ConditionerMedia,
  type MediaField,
  type MediaOptions,
  type PrepareOptions,
} from '../conditioner.ts';

/** What the audio conditioners read: the prompt, from the window start (a file is seeked). */
export const AUDIO_READS: readonly MediaField[] = ['audio', 'secondsStart'];

/**
 * Audio prompt [batch, 2, samples] (default sr·10, see audioPromptSamples): a file brought to the window, given
 * samples as they are (one set for every item, or one set per batch item), or silence.
 * Default: resampled to the model rate, right-padded with silence. With `referenceQuirks` a file is read like
 * the reference's `load_and_process_audio` (quirk 15: native rate kept, cut by model-rate sample indices,
 * left-padded). (The reference UI hides its audio-prompt widgets, so it always sends silence: that is what
 * giving no audio prompt reproduces.)
 */
export async function audioPrompt(
  host: Pick<ConditionerHost, 'sampleRate'>,
  source: AudioPromptSource | undefined,
  opts: MediaOptions,
  samples = Math.floor(host.sampleRate * CONDITIONING_SECONDS),
  batch = 1,
): Promise<tf.Tensor> {
  if (source === undefined) return tf.zeros([batch, 2, samples]);
  if (isPerItemAudio(source)) {
    if (source.length !== batch) {
      throw new MediaError('INVALID_ARGUMENT', `audio prompt: ${source.length} per-item prompts given for a batch of ${batch}; give one per item or a single one for all`);
    }
    const n = source[0][0]?.length;
    if (source.some((item) => item[0]?.length !== n)) {
      throw new MediaError('INVALID_ARGUMENT', `audio prompt: the per-item prompts have different lengths (${source.map((i) => i[0]?.length).join(', ')} samples); give them all the same length`);
    }
    const items = source.map(stereoTensor);
    const t = items.length === 1 ? items[0] : tf.concat(items, 0);
    if (items.length > 1) tf.dispose(items);
    return t;
  }
  let one: tf.Tensor;
  if (typeof source !== 'string') one = stereoTensor(source);
  else {
    const { data } = await loadAudioWindow(source, {
      duration: samples / host.sampleRate,
      sampleRate: host.sampleRate,
      seekTime: opts.seekTime,
      referenceQuirks: opts.referenceQuirks,
      signal: opts.signal,
    });
    one = stereoTensor(data);
  }
  if (batch === 1) return one;
  const t = tf.tidy(() => tf.tile(one, [batch, 1, 1]));
  one.dispose();
  return t;
}

/** Whether the samples are given per batch item ([batch][channel][sample]). */
export function isPerItemAudio(a: AudioPromptSource): a is Float32Array[][] {
  return Array.isArray(a) && a.length > 0 && Array.isArray(a[0]);
}

/**
 * Samples of the audio prompt a conditioner takes: 10 s, except `audio_autoencoder_v2`, whose
 * proj_features_128 is built for exactly `latent_seq_len` latents (237 → 485376 samples, 11.006 s; a 10 s
 * prompt gives 215 and cannot be projected).
 */
export function audioPromptSamples(host: Pick<ConditionerHost, 'sampleRate'>, c: object): number {
  const own = (c as Partial<FixedPromptLength>).promptSamples;
  return typeof own === 'function' ? own.call(c) : Math.floor(host.sampleRate * CONDITIONING_SECONDS);
}

/** An audio conditioner built for prompts of one exact length. */
export interface FixedPromptLength {
  promptSamples(): number;
}

/** [channels][samples] → [1, 2, N] (mono duplicated). */
export function stereoTensor(channels: Float32Array[]): tf.Tensor {
  if (!channels.length || !channels[0].length) throw new Error('audio has no samples');
  const n = channels[0].length;
  if (channels.some((c) => c.length !== n)) throw new Error('audio channels have different lengths');
  const two = channels.length === 1 ? [channels[0], channels[0]] : channels.slice(0, 2);
  const buf = new Float32Array(2 * n);
  buf.set(two[0], 0);
  buf.set(two[1], n);
  return tf.tensor(buf, [1, 2, n]);
}

/**
 * What the audio conditioners share as conditioners: they read the audio prompt, take it as a
 * [batch, 2, samples] tensor of their prompt length, and their outputs are never shared across items
 * (they depend on random draws of the item's seed: VAE noise, mel masking).
 */
export abstract class AudioPromptConditioner extends Module implements Conditioner<tf.Tensor> {
  readonly modality = 'audio';
  readonly reads = AUDIO_READS;

  async prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<tf.Tensor> {
    return audioPrompt(opts.host, media.audio, opts, audioPromptSamples(opts.host, this), opts.batchSize);
  }

  abstract condition(input: tf.Tensor, ctx: ConditionContext): ConditionerOutput;

  disposeInput(input: tf.Tensor): void {
    input.dispose();
  }

  reuseKey(): null {
    return null;
  }
}
