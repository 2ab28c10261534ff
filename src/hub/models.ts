// Downloadable models, where they live on the Hugging Face hub and in the local cache.
import os from 'node:os';
import path from 'node:path';

/** The text encoders that can be downloaded (cache names; see TEXT_ENCODERS for the config's names). */
export type TextEncoderName = 't5-small' | 't5-base' | 't5-large' | 'flan-t5-small' | 'flan-t5-base' | 'flan-t5-large';

export type ModelName = 'AudioX' | 'AudioX-MAF' | 'AudioX-MAF-MMDiT' | TextEncoderName | 'synchformer';

export interface ModelSpec {
  name: ModelName;
  /** Hub repository, `org/name`. */
  repo: string;
  /** Files fetched, in order (all required). */
  files: string[];
  /** PyTorch files converted after download: source file → safetensors file. */
  convert: Record<string, string>;
}

const AUDIOX_CONVERT = { 'model.ckpt': 'model.safetensors', 'synchformer_state_dict.pth': 'synchformer.safetensors' };
const T5_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];

function textEncoder(name: TextEncoderName, repo: string): ModelSpec {
  return { name, repo, files: T5_FILES, convert: {} };
}

export const MODELS: Record<ModelName, ModelSpec> = {
  AudioX: { name: 'AudioX', repo: 'HKUSTAudio/AudioX', files: ['config.json', 'model.ckpt'], convert: AUDIOX_CONVERT },
  'AudioX-MAF': {
    name: 'AudioX-MAF',
    repo: 'HKUSTAudio/AudioX-MAF',
    files: ['config.json', 'model.ckpt', 'synchformer_state_dict.pth'],
    convert: AUDIOX_CONVERT,
  },
  'AudioX-MAF-MMDiT': {
    name: 'AudioX-MAF-MMDiT',
    repo: 'HKUSTAudio/AudioX-MAF-MMDiT',
    // VAE.ckpt: the audio prompt's autoencoder (the config's pretransform_ckpt_path), see models/conditioner-weights.ts.
    files: ['config.json', 'model.ckpt', 'synchformer_state_dict.pth', 'VAE.ckpt'],
    convert: { ...AUDIOX_CONVERT, 'VAE.ckpt': 'VAE.safetensors' },
  },
  // The Synchformer on its own (the MAF release's copy): what a custom model's sync-feature video conditioner loads.
  synchformer: {
    name: 'synchformer',
    repo: 'HKUSTAudio/AudioX-MAF',
    files: ['synchformer_state_dict.pth'],
    convert: { 'synchformer_state_dict.pth': 'synchformer.safetensors' },
  },
  't5-small': textEncoder('t5-small', 'google-t5/t5-small'),
  't5-base': textEncoder('t5-base', 'google-t5/t5-base'),
  't5-large': textEncoder('t5-large', 'google-t5/t5-large'),
  'flan-t5-small': textEncoder('flan-t5-small', 'google/flan-t5-small'),
  'flan-t5-base': textEncoder('flan-t5-base', 'google/flan-t5-base'),
  'flan-t5-large': textEncoder('flan-t5-large', 'google/flan-t5-large'),
};

/**
 * `t5_model_name` of a text conditioner (the Hugging Face name the reference passes to
 * `from_pretrained`) → the text encoder downloaded for it. The reference also accepts t5-3b, t5-11b and
 * google/flan-t5-{xl,xxl}; their hub checkpoints are sharded or tens of GB, which the downloader and the
 * single-file loader do not handle.
 */
export const TEXT_ENCODERS: Readonly<Record<string, TextEncoderName>> = {
  't5-small': 't5-small',
  't5-base': 't5-base',
  't5-large': 't5-large',
  'google/flan-t5-small': 'flan-t5-small',
  'google/flan-t5-base': 'flan-t5-base',
  'google/flan-t5-large': 'flan-t5-large',
};

/** The reference's default `t5_model_name`. */
export const DEFAULT_T5_MODEL_NAME = 't5-base';

/** A config's `t5_model_name` names a text encoder this package cannot load; the message lists the supported ones. */
export class UnsupportedTextEncoderError extends Error {}

/** The text encoder to download/load for a `t5_model_name`; an unsupported one gets an error naming the supported ones. */
export function textEncoderModel(t5ModelName: string | undefined, where = 't5_model_name'): TextEncoderName {
  const name = t5ModelName ?? DEFAULT_T5_MODEL_NAME;
  if (Object.hasOwn(TEXT_ENCODERS, name)) return TEXT_ENCODERS[name];
  throw new UnsupportedTextEncoderError(
    `${where} ${JSON.stringify(name)} is not supported; supported text encoders: ${Object.keys(TEXT_ENCODERS).join(', ')}`,
  );
}

/**
 * The `t5_model_name`s a raw config.json's text conditioners name (undefined: the default t5-base), with where each is
 * set; for fetching a model's text encoder along with it.
 */
export function textEncoderNamesIn(config: unknown): { name: string | undefined; where: string }[] {
  const configs = (config as { model?: { conditioning?: { configs?: unknown } } } | null)?.model?.conditioning?.configs;
  if (!Array.isArray(configs)) return [];
  const out: { name: string | undefined; where: string }[] = [];
  configs.forEach((e: { type?: unknown; config?: { t5_model_name?: unknown } } | null, i) => {
    if (e?.type !== 't5') return;
    const n = e.config?.t5_model_name;
    out.push({ name: typeof n === 'string' ? n : undefined, where: `model.conditioning.configs[${i}].config.t5_model_name` });
  });
  return out;
}

export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];

export function isModelName(s: string): s is ModelName {
  return Object.hasOwn(MODELS, s);
}

export function modelSpec(name: string): ModelSpec {
  if (!isModelName(name)) {
    throw new Error(`unknown model "${name}"; choose one of ${MODEL_NAMES.join(', ')}`);
  }
  return MODELS[name];
}

/** Root of the local cache: $AUDIOX_HOME, else ~/.cache/audiox. */
export function audioxHome(): string {
  const h = process.env.AUDIOX_HOME;
  return h ? path.resolve(h) : path.join(os.homedir(), '.cache', 'audiox');
}

/** Where a model's files are stored: `<home>/models/<name>`. */
export function modelDir(name: string, home = audioxHome()): string {
  if (!name || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
    throw new Error(`invalid model name "${name}"`);
  }
  return path.join(home, 'models', name);
}

/** $HF_ENDPOINT (no trailing slash), else https://huggingface.co. */
export function hfEndpoint(): string {
  return (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function hfToken(): string | undefined {
  return process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
}

/** `${endpoint}/${repo}/resolve/${revision}/${file}`. */
export function resolveUrl(repo: string, file: string, revision = 'main', endpoint = hfEndpoint()): string {
  const f = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${f}`;
}
