// MultiConditioner (spec §4.1): one conditioner per config entry under `conditioners.<id>`, built
// with output_dim = cond_dim, called in config order on the per-id inputs of a batch.
import * as tf from '@tensorflow/tfjs';
import { ModuleDict, Module } from '../../nn/module.ts';
import type { NoiseSource } from '../../sampling/noise.ts';
import type { ConditionerConfigEntry } from '../config.ts';
import type { ConditionerOutput } from '../conditioning.ts';
import { AudioAutoencoderConditioner, AudioAutoencoderConditionerV2 } from './audio/autoencoder.ts';
import { CLIPConditioner, CLIPWithSyncWithEmptyFeatureConditioner, videoConditionerFromConfig, type VideoConditionerSizes } from './video/clip.ts';
import { AudioMelConditioner } from './audio/mel.ts';
import { NumberConditioner } from './number/number.ts';
import { T5Conditioner } from './text/t5.ts';

/** Video input of a video conditioner: frames [B, T, 3, H, W] (uint8 values) and, for the sync variant, Synchformer features [B, 240, D]. */
export interface VideoInput {
  video: tf.Tensor;
  syncFeatures?: tf.Tensor;
}

/** What each conditioner consumes, by the conditioner's kind. */
export type ConditionerInput = VideoInput | string[] | tf.Tensor | number[];

export interface ConditionerContext {
  noise: NoiseSource;
  /** Mel conditioner: apply the reference's random span masking (default true, as the reference does). */
  melMasking?: boolean;
}

export type AnyConditioner =
  | CLIPConditioner
  | CLIPWithSyncWithEmptyFeatureConditioner
  | T5Conditioner
  | AudioAutoencoderConditioner
  | AudioAutoencoderConditionerV2
  | AudioMelConditioner
  | NumberConditioner;

export type ConditionerKind = 'video' | 'text' | 'audio' | 'number';

/** Project-specific size overrides for tiny models (e.g. the demo): `config._sizes` of a video entry. */
interface EntryExtras {
  _sizes?: Partial<VideoConditionerSizes>;
}

export function buildConditioner(entry: ConditionerConfigEntry, condDim: number): AnyConditioner {
  const cfg = entry.config ?? {};
  switch (entry.type) {
    case 'clip':
    case 'clip-with-sync-w-empty-feat':
      return videoConditionerFromConfig(entry, condDim, (cfg as EntryExtras)._sizes ?? {});
    case 't5':
      return T5Conditioner.fromConfig({ ...(cfg as object), output_dim: condDim } as ConstructorParameters<typeof T5Conditioner>[0]);
    case 'audio_autoencoder':
      return AudioAutoencoderConditioner.fromConfig(entry as unknown as Parameters<typeof AudioAutoencoderConditioner.fromConfig>[0], condDim);
    case 'audio_autoencoder_v2':
      return AudioAutoencoderConditionerV2.fromConfig(entry as unknown as Parameters<typeof AudioAutoencoderConditionerV2.fromConfig>[0], condDim);
    case 'mel_spec':
      return AudioMelConditioner.fromConfig({ ...(cfg as object), output_dim: condDim } as Parameters<typeof AudioMelConditioner.fromConfig>[0]);
    case 'number':
      return NumberConditioner.fromConfig({ ...(cfg as object), output_dim: condDim } as Parameters<typeof NumberConditioner.fromConfig>[0]);
    default:
      throw new Error(
        `conditioner "${entry.id}": type "${entry.type}" is not supported ` +
          '(supported: clip, clip-with-sync-w-empty-feat, t5, audio_autoencoder, audio_autoencoder_v2, mel_spec, number)',
      );
  }
}

export function conditionerKind(c: AnyConditioner): ConditionerKind {
  if (c instanceof CLIPConditioner || c instanceof CLIPWithSyncWithEmptyFeatureConditioner) return 'video';
  if (c instanceof T5Conditioner) return 'text';
  if (c instanceof NumberConditioner) return 'number';
  return 'audio';
}

export class MultiConditioner extends Module {
  readonly conditioners: ModuleDict<AnyConditioner>;
  readonly entries: ConditionerConfigEntry[];

  constructor(
    entries: ConditionerConfigEntry[],
    readonly condDim: number,
  ) {
    super();
    this.entries = entries;
    this.conditioners = this.module(
      'conditioners',
      new ModuleDict<AnyConditioner>(entries.map((e) => [e.id, buildConditioner(e, condDim)] as [string, AnyConditioner])),
    );
  }

  get ids(): string[] {
    return this.entries.map((e) => e.id);
  }

  get(id: string): AnyConditioner {
    const c = this.conditioners.get(id);
    if (!c) throw new Error(`no conditioner "${id}" (have: ${this.ids.join(', ')})`);
    return c;
  }

  /** Runs one conditioner on its input. */
  condition(id: string, input: ConditionerInput, ctx: ConditionerContext): ConditionerOutput {
    const c = this.get(id);
    const what = `conditioner "${id}"`;
    if (c instanceof CLIPConditioner || c instanceof CLIPWithSyncWithEmptyFeatureConditioner) {
      const v = input as VideoInput;
      if (!(v && v.video instanceof tf.Tensor)) throw new Error(`${what} expects {video: [B, T, 3, H, W]}`);
      if (c instanceof CLIPWithSyncWithEmptyFeatureConditioner && !v.syncFeatures) {
        throw new Error(`${what} (clip-with-sync-w-empty-feat) needs Synchformer features`);
      }
      return c.forward(v.video, v.syncFeatures);
    }
    if (c instanceof T5Conditioner) {
      if (!Array.isArray(input) || !input.every((s) => typeof s === 'string')) throw new Error(`${what} expects a list of strings`);
      return c.forward(input as string[]);
    }
    if (c instanceof NumberConditioner) {
      if (!Array.isArray(input) || !input.every((s) => typeof s === 'number')) throw new Error(`${what} expects a list of numbers`);
      return c.forward(input as number[]);
    }
    if (!(input instanceof tf.Tensor)) throw new Error(`${what} expects audio [B, 2, N]`);
    if (c instanceof AudioMelConditioner) return c.forward(input, { noise: ctx.noise, randomMasking: ctx.melMasking });
    return c.forward(input, { noise: ctx.noise });
  }

  /**
   * Runs every conditioner (config order) whose input is given; `precomputed` outputs are used as
   * they are (those conditioners are skipped). Returns new tensors owned by the caller.
   */
  forward(
    inputs: Partial<Record<string, ConditionerInput>>,
    ctx: ConditionerContext,
    precomputed: Record<string, ConditionerOutput> = {},
  ): Record<string, ConditionerOutput> {
    const out: Record<string, ConditionerOutput> = {};
    try {
      for (const id of this.ids) {
        if (precomputed[id]) {
          out[id] = { embedding: precomputed[id].embedding.clone(), mask: precomputed[id].mask.clone() };
          continue;
        }
        const input = inputs[id];
        if (input === undefined) throw new Error(`no input for conditioner "${id}"`);
        out[id] = this.condition(id, input, ctx);
      }
    } catch (e) {
      for (const c of Object.values(out)) tf.dispose([c.embedding, c.mask]);
      throw e;
    }
    return out;
  }
}
