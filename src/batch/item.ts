// One manifest row, resolved: every generation parameter filled in (row, then command-line defaults, then
// the generator's defaults), media paths absolute, the seed fixed. Plain JSON, so it can travel in a queue job.
import { createHash } from 'node:crypto';
import type { GenerationCliOptions, InpaintCliOptions } from '../cli/commands/generate.ts';
import { PARAMS } from '../pipeline/params-schema.ts';

export interface ItemOptions extends InpaintCliOptions {
  prompt?: string;
  negativePrompt?: string;
  video?: string;
  image?: string;
  audio?: string;
  initAudio?: string;
  initNoiseLevel?: number;
  secondsStart: number;
  /** undefined: 10 s, or the model's length when shorter. */
  secondsTotal?: number;
  steps: number;
  cfgScale: number;
  cfgRescale: number;
  sampler: string;
  sigmaMin: number;
  sigmaMax: number;
  seed: number;
  fullLength?: boolean;
  referenceQuirks?: boolean;
}

export type FieldKind = 'text' | 'file' | 'number' | 'integer' | 'boolean' | 'position';

/** The fields a manifest row may have besides `id` (named like generate()'s options), by type. */
export const ITEM_FIELDS: Record<keyof ItemOptions, FieldKind> = {
  prompt: 'text',
  negativePrompt: 'text',
  video: 'file',
  image: 'file',
  audio: 'file',
  initAudio: 'file',
  initNoiseLevel: 'number',
  secondsStart: 'number',
  secondsTotal: 'number',
  steps: 'integer',
  cfgScale: 'number',
  cfgRescale: 'number',
  sampler: 'text',
  sigmaMin: 'number',
  sigmaMax: 'number',
  seed: 'integer',
  fullLength: 'boolean',
  referenceQuirks: 'boolean',
  inpaintStart: 'position',
  inpaintEnd: 'position',
  inpaintSoftness: 'position',
  inpaintMarination: 'number',
  inpaintCropFrom: 'position',
  inpaintPasteFrom: 'position',
  inpaintPasteTo: 'position',
};

export interface BatchItem {
  id: string;
  /** Where the item is in its manifest (line number), for messages. */
  row: number;
  options: ItemOptions;
}

/** Generation defaults a batch gives on the command line (a row's own fields win). */
export type ItemDefaults = Partial<Omit<ItemOptions, 'prompt' | 'video' | 'image' | 'audio' | 'initAudio' | 'seed'>>;

/** The schema's defaults (those of `audiox generate`), for fields neither the row nor the command line sets. */
export const ITEM_DEFAULTS = {
  secondsStart: PARAMS.secondsStart.default,
  steps: PARAMS.steps.default,
  cfgScale: PARAMS.cfgScale.default,
  cfgRescale: PARAMS.cfgRescale.default,
  sampler: PARAMS.sampler.defaults.v as string, // every released model is v-objective
  sigmaMin: PARAMS.sigmaMin.default,
  sigmaMax: PARAMS.sigmaMax.default,
};

/**
 * The seed of an item without one: a hash of (base seed, id), so the same manifest and --seed give the
 * same audio on every run and machine, and different ids get unrelated seeds.
 */
export function deriveSeed(base: number, id: string): number {
  return createHash('sha256').update(`audiox-seed\0${base}\0${id}`).digest().readUInt32BE(0);
}

/** The item as `audiox generate`'s options, so the CLI's checks and option mapping apply unchanged. */
export function toCliOptions(item: BatchItem, model: string): GenerationCliOptions {
  const o = item.options;
  return {
    model,
    prompt: o.prompt,
    negativePrompt: o.negativePrompt,
    video: o.video,
    image: o.image,
    audio: o.audio,
    secondsStart: o.secondsStart,
    seconds: o.secondsTotal,
    steps: o.steps,
    cfg: o.cfgScale,
    cfgRescale: o.cfgRescale,
    sampler: o.sampler,
    sigmaMin: o.sigmaMin,
    sigmaMax: o.sigmaMax,
    seed: o.seed,
    initAudio: o.initAudio,
    initNoiseLevel: o.initNoiseLevel,
    batch: 1,
    referenceQuirks: o.referenceQuirks,
    inpaintStart: o.inpaintStart,
    inpaintEnd: o.inpaintEnd,
    inpaintSoftness: o.inpaintSoftness,
    inpaintMarination: o.inpaintMarination,
    inpaintCropFrom: o.inpaintCropFrom,
    inpaintPasteFrom: o.inpaintPasteFrom,
    inpaintPasteTo: o.inpaintPasteTo,
    fullLength: o.fullLength,
  };
}

/** Manifest fields that `audiox generate` spells differently. */
const FLAG_FIELDS: Record<string, string> = { seconds: 'secondsTotal', cfg: 'cfgScale' };

/** The CLI's messages name flags (--init-audio, --seconds); a manifest names fields (initAudio, secondsTotal). */
export function flagsAsFields(message: string): string {
  return message.replace(/--([a-z]+(?:-[a-z]+)*)/g, (flag, name: string) => {
    const field = FLAG_FIELDS[name] ?? name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    return field in ITEM_FIELDS ? field : flag;
  });
}
