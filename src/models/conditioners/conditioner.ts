// The contract between a conditioner and the generation pipeline: the conditioner turns the media of a
// generation into its own input (`prepareInput`), runs on it (`condition`) and frees it (`disposeInput`);
// generate() loops over the model's conditioners through this interface alone.
import type { Module } from '../../nn/module.ts';
import type { NoiseSource } from '../../nn/noise.ts';
import type { ConditionerOutput } from '../conditioning.ts';
import type { TextTokenizer } from '../tokenizer.ts';

/** The conditioning window of the released models: 10 s (50 CLIP frames at 5 fps, 240 sync tokens). */
export const CONDITIONING_SECONDS = 10;

/** An audio prompt: a path, stereo (or mono) samples for every item, or one such set per batch item. */
export type AudioPromptSource = string | Float32Array[] | Float32Array[][];

/** What one generation offers its conditioners; each reads the fields it declares in `reads`. */
export interface ConditionerMedia {
  /** The text prompt ('' for none). */
  prompt: string;
  /** Path of a video (at most one of video and image). */
  video?: string;
  /** Path of a still image (at most one of video and image). */
  image?: string;
  /** The audio prompt, if any. */
  audio?: AudioPromptSource;
  /** Where the conditioning window starts in the media, in seconds. */
  secondsStart: number;
  /** Length of the generated audio in seconds. */
  secondsTotal: number;
  /**
   * Inputs given by conditioner id, passed through as they are (the values of number conditioners; the
   * input of a modality the pipeline has no field for).
   */
  byId: Readonly<Record<string, unknown>>;
}

/** A field of ConditionerMedia, as a conditioner's `reads` names it. */
export type MediaField = keyof ConditionerMedia;

/**
 * A model outside the checkpoint that a conditioner runs, by kind: loadModel loads each kind a conditioner
 * declares (`externalModels`) once — the Synchformer from the model directory, a text encoder from the cache —
 * and either attaches it to the conditioner (`attachExternal`) or keeps it on the host (`externalModel`).
 */
export type ExternalModelKind = 'synchformer' | 'text-encoder';

/** A loaded external model as it is attached: the module, and the tokenizer of a text encoder. */
export interface ExternalModel {
  readonly module: Module;
  readonly tokenizer?: TextTokenizer | null;
}

/** The parts of the loaded model outside the conditioner tree that preparing an input may use. */
export interface ConditionerHost {
  /** The model's output sample rate (Hz); audio prompts are brought to it. */
  readonly sampleRate: number;
  /** Frames per second video is sampled at for conditioning. */
  readonly videoFps: number;
  /** The loaded external model of `kind` (null: none loaded, e.g. the Synchformer weights are absent). */
  externalModel(kind: ExternalModelKind): Module | null;
}

/** How media are brought to the conditioning window. */
export interface MediaOptions {
  /** Where the window starts in the media, in seconds. */
  seekTime: number;
  /** Reproduce the reference demo's preprocessing bugs (quirks 13–15). */
  referenceQuirks: boolean;
  signal?: AbortSignal;
}

/** What `prepareInput` gets besides the media. */
export interface PrepareOptions extends MediaOptions {
  /** The conditioner's id in the model config. */
  id: string;
  /** Number of batch items to prepare. */
  batchSize: number;
  /** The loaded model's parts outside the conditioner tree. */
  host: ConditionerHost;
}

/** What `condition` gets besides its input. */
export interface ConditionContext {
  /** Source of random draws (stream `mask` for the mel conditioner's masking, `vae` for VAE encodes). */
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
  /** The external models it runs (none when absent); see ExternalModelKind. */
  readonly externalModels?: readonly ExternalModelKind[];
  /**
   * Takes a declared external model that it holds itself (it takes ownership of the module); kinds it
   * reads from the host instead are never attached.
   */
  attachExternal?(kind: ExternalModelKind, model: ExternalModel): void;
  /** Frees the tensors of an input from `prepareInput`. */
  disposeInput(input: I): void;
  /**
   * What identifies the output of batch size 1 for these media, so that batch items with equal keys can
   * share it; null when it cannot be shared (e.g. it draws random numbers).
   */
  reuseKey(media: ConditionerMedia, opts: Omit<PrepareOptions, 'batchSize'>): string | null;
}
