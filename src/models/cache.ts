// What the model cache (<home>/models) holds: released models, text encoders and custom conversions, with what
// `audiox models` shows (variant, parameter count, size on disk, stored dtypes, last used), and removal.
import fs from 'node:fs';
import path from 'node:path';
import { TEXT_ENCODERS, audioxHome } from '../hub/models.ts';
import { SafetensorsFile } from '../io/safetensors.ts';
import { readConfig } from './config.ts';
import { CUSTOM_SOURCE_FILE, RELEASED_MODELS } from './source.ts';

/** What a cache entry is: a released model, your conversion, a text encoder, the Synchformer, or something else. */
export type CachedKind = 'released' | 'custom' | 'text-encoder' | 'synchformer' | 'other';

/** One entry of the model cache, as `audiox models` lists it. */
export interface CachedModel {
  /** Its name in the cache (`--model <name>`, `audiox models rm <name>`). */
  name: string;
  /** Its directory, `<home>/models/<name>`. */
  dir: string;
  /** What the entry is (`audiox models` KIND column). */
  kind: CachedKind;
  /** e.g. "dit + MAF", "mmdit", "text encoder", "synchformer"; "?" when the config cannot be read. */
  variant: string;
  /** Elements of every tensor in the weights file (model.safetensors; null: none). */
  parameters: number | null;
  /** Bytes of every file in the directory. */
  bytes: number;
  /** The weights' stored dtypes, e.g. "F32" or "F16, F32" (null: no weights file). */
  dtype: string | null;
  /** When loadModel last loaded it (null: never, or before this was recorded). */
  lastUsed: Date | null;
  /** For custom models: the checkpoint it was converted from. */
  source?: string;
}

function modelsRoot(): string {
  return path.join(audioxHome(), 'models');
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

function kindOf(name: string, dir: string): CachedKind {
  if (name === 'synchformer') return 'synchformer';
  if ((RELEASED_MODELS as readonly string[]).includes(name)) return 'released';
  if (Object.values(TEXT_ENCODERS).includes(name as (typeof TEXT_ENCODERS)[string])) return 'text-encoder';
  if (fs.existsSync(path.join(dir, CUSTOM_SOURCE_FILE))) return 'custom';
  return 'other';
}

function weightsSummary(file: string): { parameters: number; dtype: string } | null {
  if (!fs.existsSync(file)) return null;
  try {
    const f = SafetensorsFile.open(file);
    try {
      let n = 0;
      const dtypes = new Set<string>();
      for (const e of f.entries.values()) {
        n += e.shape.reduce((a, b) => a * b, 1);
        dtypes.add(e.dtype);
      }
      return { parameters: n, dtype: [...dtypes].sort().join(', ') };
    } finally {
      f.close();
    }
  } catch {
    return null;
  }
}

function variantOf(kind: CachedKind, dir: string): string {
  if (kind === 'text-encoder') return 'text encoder';
  if (kind === 'synchformer') return 'synchformer';
  try {
    const d = readConfig(path.join(dir, 'config.json')).model.diffusion;
    return `${d.type}${d.gate ? ' + MAF' : ''}`;
  } catch {
    return '?';
  }
}

function lastUsed(dir: string): Date | null {
  try {
    return fs.statSync(path.join(dir, '.last-used')).mtime;
  } catch {
    return null;
  }
}

/** Every model directory in the cache (those with a config.json, and the Synchformer's), by name. */
export function listCachedModels(): CachedModel[] {
  const root = modelsRoot();
  if (!fs.existsSync(root)) return [];
  const out: CachedModel[] = [];
  for (const name of fs.readdirSync(root).sort()) {
    const dir = path.join(root, name);
    if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
    const kind = kindOf(name, dir);
    const weights = path.join(dir, kind === 'synchformer' ? 'synchformer.safetensors' : 'model.safetensors');
    if (!fs.existsSync(path.join(dir, kind === 'synchformer' ? 'synchformer.safetensors' : 'config.json'))) continue;
    const w = weightsSummary(weights);
    let source: string | undefined;
    if (kind === 'custom') {
      try {
        source = (JSON.parse(fs.readFileSync(path.join(dir, CUSTOM_SOURCE_FILE), 'utf8')) as { checkpoint?: string }).checkpoint;
      } catch {
        source = undefined;
      }
    }
    out.push({
      name, dir, kind, variant: variantOf(kind, dir), parameters: w?.parameters ?? null, bytes: dirBytes(dir), dtype: w?.dtype ?? null,
      lastUsed: lastUsed(dir), source,
    });
  }
  return out;
}

/** The generation models (released and custom) whose weights are in the cache, for pickers. */
export function cachedGenerationModels(): string[] {
  const root = modelsRoot();
  const has = (n: string) => fs.existsSync(path.join(root, n, 'model.safetensors'));
  const custom = fs.existsSync(root)
    ? fs.readdirSync(root).sort().filter((n) => !n.startsWith('.') && fs.existsSync(path.join(root, n, CUSTOM_SOURCE_FILE)) && has(n))
    : [];
  return [...RELEASED_MODELS.filter(has), ...custom];
}

/** Removes a cached model's directory; an unknown name gets the list of what is there. */
export function removeCachedModel(name: string): CachedModel {
  const m = listCachedModels().find((x) => x.name === name);
  if (!m) {
    const have = listCachedModels().map((x) => x.name);
    throw new Error(`no cached model "${name}" in ${modelsRoot()}; cached: ${have.length ? have.join(', ') : 'none'}`);
  }
  fs.rmSync(m.dir, { recursive: true, force: true });
  return m;
}
