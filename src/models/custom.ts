// A user's own model (`--model-config config.json --ckpt-path model.ckpt`, as the reference demo takes it) made
// into a cached model directory: the config is validated and the checkpoint's keys checked against the model it
// describes before any weight is read; a .ckpt/.pth is converted to safetensors once, and again only when the
// checkpoint changes (size, mtime or its first MiB). The directory is built under a temp name and renamed into
// place, so a failure or Ctrl-C leaves nothing half-written in the cache.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { downloadModel, type DownloadEvent } from '../hub/download.ts';
import { MODEL_NAMES, audioxHome } from '../hub/models.ts';
import { SafetensorsFile, writeSafetensors, type TensorSource } from '../io/safetensors.ts';
import { ConvertError, convertCheckpoint, openTorchCheckpoint } from '../../weights-converter/convert.ts';
import { ConfigError, readConfig, type AudioXConfig } from './config.ts';
import { buildConditioner } from './conditioners/registry.ts';
import { CUSTOM_SOURCE_FILE, needsSynchformer, synchformerFileOf, textEncoders } from './source.ts';
import { planCheckpointKeys, type KeyPlan } from './training-keys.ts';
import { createModelFromConfig } from './wrapper.ts';

/** What prepareCustomModel takes: the config and checkpoint paths (the CLI's --model-config and --ckpt-path). */
export interface CustomModelOptions {
  /** The model's config.json (stable-audio-tools' model config). */
  config: string;
  /** The checkpoint: .ckpt/.pth (PyTorch zip, converted) or .safetensors. */
  checkpoint: string;
  /** true: the EMA weights (required), false: the online weights, undefined: EMA when present. */
  ema?: boolean;
  /** Conversion progress, one call per tensor written. */
  onProgress?: (p: { index: number; total: number }) => void;
  /** Called once conversion starts (not on a cache hit), e.g. to show a progress bar. */
  onConvertStart?: (tensors: number) => void;
  /**
   * Download the text encoders the config names that the cache lacks (default true), as `audiox download` does
   * for a released model; false when the caller brings its own encoder (LoadModelOptions.t5Dir).
   */
  downloadTextEncoders?: boolean;
  /** Download progress of those text encoders (see DownloadOptions.onEvent). */
  onDownload?: (encoder: string, e: DownloadEvent) => void;
}

/** A custom model ready in the cache. */
export interface PreparedCustomModel {
  /** The cached model's name (`--model <name>`, `audiox models rm <name>`). */
  name: string;
  /** Its cache directory. */
  dir: string;
  /** false: the cached conversion was used as it is. */
  converted: boolean;
  /** Which weights were taken and what was left out (see planCheckpointKeys). */
  notes: string[];
  /** Text encoders and the Synchformer downloaded now (none when the cache had them). */
  downloaded: string[];
}

/** What audiox-source.json records: where a custom model came from and the checkpoint's identity. */
export interface CustomSourceStamp {
  checkpoint: string;
  config: string;
  size: number;
  mtimeMs: number;
  /** sha256 of the checkpoint's first MiB. */
  head: string;
  /** sha256 of the config file. */
  configHash: string;
  /** The --ema / --no-ema choice ('auto' when neither). */
  emaChoice: 'auto' | 'ema' | 'online';
  notes: string[];
  convertedAt: string;
}

/** A custom model's files are unreadable, do not match, or a part it needs cannot be fetched; nothing was cached. */
export class CustomModelError extends Error {}

const HEAD_BYTES = 1 << 20;

function sha256(b: Uint8Array | string): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

function headHash(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const n = fs.readSync(fd, buf, 0, HEAD_BYTES, 0);
    return sha256(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

function stat(file: string, flag: string): fs.Stats {
  try {
    const s = fs.statSync(file);
    if (!s.isFile()) throw new CustomModelError(`${flag} ${file} is not a file`);
    return s;
  } catch (e) {
    if (e instanceof CustomModelError) throw e;
    throw new CustomModelError(`${flag} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Reads and checks a custom config without any weight: the schema (model type, required sections) and that every
 * conditioner and the model itself can be built; an error names the key. Returns the config.
 */
export function validateCustomConfig(file: string): AudioXConfig {
  const config = readConfig(file);
  const { configs, cond_dim: condDim } = config.model.conditioning;
  configs.forEach((entry, i) => {
    try {
      buildConditioner(entry, condDim).dispose();
    } catch (e) {
      throw new ConfigError(`${file}: model.conditioning.configs[${i}].type (conditioner "${entry.id}"): ${(e as Error).message}`);
    }
  });
  try {
    createModelFromConfig(config).dispose();
  } catch (e) {
    throw new ConfigError(`${file}: ${(e as Error).message}`);
  }
  textEncoders(config);
  return config;
}

/** Shapes only: for checking a checkpoint's keys against the model without reading a tensor. */
class ShapeSource implements TensorSource {
  constructor(private readonly shapes: ReadonlyMap<string, readonly number[]>) {}
  keys(): string[] {
    return [...this.shapes.keys()];
  }
  has(key: string): boolean {
    return this.shapes.has(key);
  }
  shape(key: string): number[] {
    return [...this.shapes.get(key)!];
  }
  read(key: string): tf.Tensor {
    throw new Error(`ShapeSource holds no data (${key})`);
  }
}

/** The checkpoint's keys as planned, checked against the model: missing, unexpected and mis-shaped keys are named. */
function checkAgainstModel(config: AudioXConfig, shapes: ReadonlyMap<string, readonly number[]>, plan: KeyPlan, ckpt: string): void {
  const renamed = new Map<string, readonly number[]>();
  for (const [from, to] of plan.map) renamed.set(to, shapes.get(from)!);
  // Conditioners whose autoencoder comes from its own file (pretransform_ckpt_path) need not be in the checkpoint.
  const separate = config.model.conditioning.configs
    .filter((e) => typeof (e.config as { pretransform_ckpt_path?: unknown }).pretransform_ckpt_path === 'string')
    .map((e) => `conditioner.conditioners.${e.id}.`);
  const model = createModelFromConfig(config);
  try {
    const r = model.checkStateDict(new ShapeSource(renamed), { strict: false });
    const missing = r.missing.filter((k) => !separate.some((p) => k.startsWith(p)));
    const problems: string[] = [];
    const show = (title: string, items: string[]) => {
      if (items.length) problems.push(`${title} (${items.length}): ${items.slice(0, 10).join(', ')}${items.length > 10 ? ', …' : ''}`);
    };
    show('missing from the checkpoint', missing);
    show('in the checkpoint but not in the model', r.unexpected);
    show('shape mismatches', r.mismatched.map((m) => `${m.key} (config: [${m.expected}], checkpoint: [${m.found}])`));
    if (problems.length) {
      throw new CustomModelError(
        `${ckpt} does not match the model its config describes:\n  ${problems.join('\n  ')}\n` +
          'Is this the config the checkpoint was trained with? Nothing was written to the cache.',
      );
    }
  } finally {
    model.dispose();
  }
}

function modelsRoot(): string {
  return path.join(audioxHome(), 'models');
}

/** The stamp of a cached custom model directory (null when it is not one or the stamp is unreadable). */
export function readSourceStamp(dir: string): CustomSourceStamp | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, CUSTOM_SOURCE_FILE), 'utf8')) as CustomSourceStamp;
  } catch {
    return null;
  }
}

/** The cached model converted from this checkpoint path, if any. */
function findCached(checkpoint: string): { name: string; stamp: CustomSourceStamp } | null {
  const root = modelsRoot();
  if (!fs.existsSync(root)) return null;
  for (const name of fs.readdirSync(root)) {
    if (name.startsWith('.')) continue;
    const stamp = readSourceStamp(path.join(root, name));
    if (stamp?.checkpoint === checkpoint) return { name, stamp };
  }
  return null;
}

/** A free cache name from the checkpoint's file name (its folder's for a generic model.ckpt). */
function newName(checkpoint: string): string {
  const stem = path.basename(checkpoint).replace(/\.(ckpt|pth|pt|safetensors)$/i, '');
  const base = (/^(model|last|checkpoint|final)$/i.test(stem) ? `${path.basename(path.dirname(checkpoint))}-${stem}` : stem)
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '') || 'custom';
  // Never a downloadable model's name (its download would land in the conversion), nor demo.
  const reserved = new Set(['demo', ...MODEL_NAMES].map((n) => n.toLowerCase()));
  const taken = (n: string) => fs.existsSync(path.join(modelsRoot(), n)) || reserved.has(n.toLowerCase());
  let name = base;
  for (let i = 2; taken(name); i++) name = `${base}-${i}`;
  return name;
}

function sameSource(a: CustomSourceStamp, b: Omit<CustomSourceStamp, 'notes' | 'convertedAt'>): boolean {
  return (
    a.size === b.size && a.mtimeMs === b.mtimeMs && a.head === b.head && a.configHash === b.configHash &&
    a.emaChoice === b.emaChoice && a.config === b.config
  );
}

/** Keys and shapes of a checkpoint (the index only: no tensor data is read). */
async function checkpointShapes(file: string): Promise<Map<string, readonly number[]>> {
  if (/\.safetensors$/i.test(file)) {
    const f = SafetensorsFile.open(file);
    try {
      return new Map(f.keys().map((k) => [k, f.shape(k)]));
    } finally {
      f.close();
    }
  }
  const ckpt = await openTorchCheckpoint(file);
  try {
    return new Map([...ckpt.tensors].map(([k, t]) => [k, t.shape]));
  } finally {
    ckpt.close();
  }
}

async function writeWeights(input: string, output: string, plan: KeyPlan, onProgress?: CustomModelOptions['onProgress']): Promise<void> {
  if (!/\.safetensors$/i.test(input)) {
    await convertCheckpoint(input, output, { mapKeys: () => plan.map, onProgress });
    return;
  }
  const f = SafetensorsFile.open(input);
  try {
    const total = plan.map.size;
    let index = 0;
    const entries = [...plan.map].map(([from, to]) => {
      const e = f.entry(from);
      return { name: to, dtype: e.dtype, shape: e.shape, bytes: () => {
        const b = f.readBytes(from);
        onProgress?.({ index: ++index, total });
        return b;
      } };
    });
    await writeSafetensors(output, entries);
  } finally {
    f.close();
  }
}

const ENCODER_FILES = ['model.safetensors', 'config.json', 'tokenizer.json'];

/**
 * Downloads each text encoder `config` names that is not complete in the cache (shared with the released models:
 * `<home>/models/<encoder>`). Returns the names downloaded.
 */
export async function resolveTextEncoders(config: AudioXConfig, onDownload?: CustomModelOptions['onDownload']): Promise<string[]> {
  const missing = [...new Set(textEncoders(config).filter((u) => ENCODER_FILES.some((f) => !fs.existsSync(path.join(u.dir, f)))).map((u) => u.name))];
  for (const name of missing) {
    try {
      await downloadModel(name, { onEvent: onDownload && ((e) => onDownload(name, e)) });
    } catch (e) {
      throw new CustomModelError(
        `the config's text encoder "${name}" is not in the cache and downloading it failed: ${(e as Error).message}. ` +
          `Run \`audiox download ${name}\` when the hub is reachable, or pass a local encoder snapshot (t5Dir).`,
      );
    }
  }
  return missing;
}

/**
 * Downloads the Synchformer (`audiox download synchformer`) when the config has a sync-feature video conditioner
 * and the cache has no copy (neither the model's own nor a released model's). Returns the names downloaded.
 */
export async function resolveSynchformer(config: AudioXConfig, dir: string, onDownload?: CustomModelOptions['onDownload']): Promise<string[]> {
  if (!needsSynchformer(config) || fs.existsSync(synchformerFileOf(dir, 'custom'))) return [];
  try {
    await downloadModel('synchformer', { onEvent: onDownload && ((e) => onDownload('synchformer', e)) });
  } catch (e) {
    throw new CustomModelError(
      `the config's video conditioner needs the Synchformer, which is not in the cache, and downloading it failed: ${(e as Error).message}. ` +
        'Run `audiox download synchformer` when the hub is reachable.',
    );
  }
  return ['synchformer'];
}

/**
 * Validates a custom model and returns its cached directory, converting the checkpoint first when the cache has
 * no up-to-date copy. Errors name the config key or checkpoint keys at fault; the cache is left as it was.
 */
export async function prepareCustomModel(o: CustomModelOptions): Promise<PreparedCustomModel> {
  const configFile = path.resolve(o.config);
  const checkpoint = path.resolve(o.checkpoint);
  stat(configFile, '--model-config');
  const st = stat(checkpoint, '--ckpt-path');
  const config = validateCustomConfig(configFile);
  const configText = fs.readFileSync(configFile);
  const identity = {
    checkpoint,
    config: configFile,
    size: st.size,
    mtimeMs: st.mtimeMs,
    head: headHash(checkpoint),
    configHash: sha256(configText),
    emaChoice: o.ema === undefined ? ('auto' as const) : o.ema ? ('ema' as const) : ('online' as const),
  };
  const cached = findCached(checkpoint);
  const encoders = async (dir: string) => [
    ...(o.downloadTextEncoders === false ? [] : await resolveTextEncoders(config, o.onDownload)),
    ...(await resolveSynchformer(config, dir, o.onDownload)),
  ];
  if (cached && sameSource(cached.stamp, identity) && fs.existsSync(path.join(modelsRoot(), cached.name, 'model.safetensors'))) {
    const downloaded = await encoders(path.join(modelsRoot(), cached.name));
    return { name: cached.name, dir: path.join(modelsRoot(), cached.name), converted: false, notes: cached.stamp.notes, downloaded };
  }
  let shapes: Map<string, readonly number[]>;
  try {
    shapes = await checkpointShapes(checkpoint);
  } catch (e) {
    throw new CustomModelError(`--ckpt-path: ${(e as Error).message}`);
  }
  const plan = planCheckpointKeys([...shapes.keys()], o.ema);
  checkAgainstModel(config, shapes, plan, checkpoint);
  const name = cached?.name ?? newName(checkpoint);
  const dir = path.join(modelsRoot(), name);
  // Before anything is written for the model itself: a missing encoder that cannot be fetched fails here.
  const downloaded = await encoders(dir);
  fs.mkdirSync(modelsRoot(), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(modelsRoot(), `.tmp-${name}-`));
  // Ctrl-C exits from its handler: the 'exit' hook still removes the unfinished directory.
  const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    fs.writeFileSync(path.join(tmp, 'config.json'), configText);
    o.onConvertStart?.(plan.map.size);
    try {
      await writeWeights(checkpoint, path.join(tmp, 'model.safetensors'), plan, o.onProgress);
    } catch (e) {
      if (e instanceof ConvertError) throw new CustomModelError(`--ckpt-path: ${e.message}`);
      throw e;
    }
    const stamp: CustomSourceStamp = { ...identity, notes: plan.notes, convertedAt: new Date().toISOString() };
    fs.writeFileSync(path.join(tmp, CUSTOM_SOURCE_FILE), `${JSON.stringify(stamp, null, 2)}\n`);
    // Swap in: the old copy (an edited checkpoint's) goes only once the new one is complete.
    const old = fs.existsSync(dir) ? `${tmp}-old` : null;
    if (old) fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    cleanup();
    throw e;
  } finally {
    process.off('exit', cleanup);
  }
  return { name, dir, converted: true, notes: plan.notes, downloaded };
}
