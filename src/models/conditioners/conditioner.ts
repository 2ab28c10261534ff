// The contract between a conditioner and the generation pipeline: the conditioner turns the media of a
// generation into its own input (`prepareInput`), runs on it (`condition`) and frees it (`disposeInput`);
// generate() loops over the model's conditioners through this interface alone.
import type { Module } from '../../nn/module.ts';
import type { NoiseSource } from '../../nn/noise.ts';
import type { ConditionerOutput } from '../conditioning.ts';
import type { Synchformer } from '../synchformer/synchformer.ts';

/** The conditioning window of the released models: 10 s (50 CLIP frames at 5 fps, 240 sync tokens). */
export const CONDITIONING_SECONDS = 10;

/** An audio prompt: a path, stereo (or mono) samples for every item, or one such set per batch item. */
export type AudioPromptSource = string | Float32Array[] | Float32Array[][];

/** What one generation offers its conditioners; each reads the fields it declares in `reads`. */
export interface ConditionerMedia {
  prompt: string;
  /** Paths of a video or a still image (at most one of the two). */
  video?: string;
  image?: string;
  audio?: AudioPromptSource;
  secondsStart: number;
  secondsTotal: number;
  /**
   * Inputs given by conditioner id, passed through as they are (the values of number conditioners; the
   * input of a modality the pipeline has no field for).
   */
  byId: Readonly<Record<string, unknown>>;
}

export type MediaField = keyof ConditionerMedia;

/** The parts of the loaded model outside the conditioner tree that preparing an input may use. */
export interface ConditionerHost {
  readonly sampleRate: number;
  readonly videoFps: number;
  /** The Synchformer of the sync video conditioner (null: none loaded; its features are then zeros). */
  readonly synchformer: Synchformer | null;
}

/** How media are brought to the conditioning window. */
export interface MediaOptions {
  /** Where the window starts in the media, in seconds. */
  seekTime: number;
  /** Reproduce the reference demo's preprocessing bugs (quirks 13–15). */
  referenceQuirks: boolean;
  signal?: AbortSignal;
}

export interface PrepareOptions extends MediaOptions {
  /** The conditioner's id in the model config. */
  id: string;
  batchSize: number;
  host: ConditionerHost;
}

export interface ConditionContext {
  noise: NoiseSource;
  /** Mel conditioner: apply the reference's random span masking (default true, as the reference does). */
  melMasking?: boolean;
}

/** A problem with what the caller gave (not with the model): the pipeline reports it as a bad request. */
export class ConditionerInputError extends Error {}

/** A conditioner of `model.conditioning.configs`, as the pipeline sees it. */
export interface Conditioner<I = unknown> extends Module {
  /** The modality it conditions on ('video', 'text', 'audio', 'number', …), for messages and tools. */
  readonly modality: string;
  /**
   * The media fields its input is built from. A negative prompt re-runs the conditioners that read
   * `prompt` and reuses the others' outputs.
   */
  readonly reads: readonly MediaField[];
  /** Builds the input for `batchSize` items; tensors in it are owned by the caller (`disposeInput`). */
  prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<I>;
  /** Runs on a prepared input; the output tensors are new and owned by the caller. */
  condition(input: I, ctx: ConditionContext): ConditionerOutput;
  disposeInput(input: I): void;
  /**
   * What identifies the output of batch size 1 for these media, so that batch items with equal keys can
   * share it; null when it cannot be shared (e.g. it draws random numbers).
   */
  reuseKey(media: ConditionerMedia, opts: Omit<PrepareOptions, 'batchSize'>): string | null;
}
