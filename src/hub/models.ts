// Downloadable models, where they live on the Hugging Face hub and in the local cache.
import os from 'node:os';
import path from 'node:path';

export type ModelName = 'AudioX' | 'AudioX-MAF' | 'AudioX-MAF-MMDiT' | 't5-base';

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
    files: ['config.json', 'model.ckpt', 'synchformer_state_dict.pth'],
    convert: AUDIOX_CONVERT,
  },
  't5-base': {
    name: 't5-base',
    repo: 'google-t5/t5-base',
    files: ['config.json', 'tokenizer.json', 'model.safetensors'],
    convert: {},
  },
};

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
