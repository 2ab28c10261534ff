// inspectModel: the one place that turns a model reference (demo, a released name, a model cached under
// <home>/models — custom ones included — or a directory) into its files and config, without reading a weight.
// loadModel, the CLI's preflight, the batch runner and the server all resolve models through it.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_T5_MODEL_NAME, audioxHome, modelDir, textEncoderModel } from '../hub/models.ts';
import { readConfig, type AudioXConfig } from './config.ts';
import { T5_MODEL_DIMS } from './conditioners/text/t5.ts';
import { DEMO_DIR } from './demo.ts';

/** The released checkpoints `audiox download` fetches (HKUSTAudio on the Hugging Face hub). */
export const RELEASED_MODELS = ['AudioX', 'AudioX-MAF', 'AudioX-MAF-MMDiT'] as const;

/** No such model (neither 'demo', a released or cached name, nor a directory), or a file of its directory is missing; the message says what to run. */
export class ModelNotFoundError extends Error {}

/** Written by `prepareCustomModel` into a custom model's cache directory. */
export const CUSTOM_SOURCE_FILE = 'audiox-source.json';

export type ModelKind = 'demo' | 'released' | 'custom' | 'directory';

function isReleased(name: string): boolean {
  return (RELEASED_MODELS as readonly string[]).includes(name);
}

/** A cached model directory under <home>/models (released or custom), if `name` is one. */
function cachedDir(name: string): string | null {
  if (!name || /[/\\]/.test(name) || name.startsWith('.')) return null;
  const dir = path.join(audioxHome(), 'models', name);
  return fs.existsSync(path.join(dir, 'config.json')) ? dir : null;
}

/** Where a model name or path lives: 'demo', a released name (cache dir), a cached custom model, or a directory. */
export function resolveModelDir(nameOrDir: string): { name: string; dir: string; demo: boolean; kind: ModelKind } {
  if (nameOrDir === 'demo') return { name: 'demo', dir: DEMO_DIR, demo: true, kind: 'demo' };
  const released = RELEASED_MODELS.find((m) => m.toLowerCase() === nameOrDir.toLowerCase());
  if (released) return { name: released, dir: modelDir(released), demo: false, kind: 'released' };
  const cached = cachedDir(nameOrDir);
  if (cached && fs.existsSync(path.join(cached, CUSTOM_SOURCE_FILE))) return { name: nameOrDir, dir: cached, demo: false, kind: 'custom' };
  if (fs.existsSync(nameOrDir) && fs.statSync(nameOrDir).isDirectory()) {
    return { name: path.basename(path.resolve(nameOrDir)), dir: path.resolve(nameOrDir), demo: false, kind: 'directory' };
  }
  throw new ModelNotFoundError(
    `unknown model "${nameOrDir}": use one of ${['demo', ...RELEASED_MODELS].join(', ')}, a model listed by \`audiox models\`, ` +
      'a directory with config.json and model.safetensors, or --model-config <config.json> --ckpt-path <checkpoint>',
  );
}

/** A text conditioner and the encoder snapshot it loads (chosen by its `t5_model_name`). */
export interface TextEncoderUse {
  /** The conditioner's id (e.g. text_prompt). */
  id: string;
  /** `t5_model_name` as the config gives it (the reference's default t5-base when absent). */
  t5ModelName: string;
  /** The downloadable encoder (`audiox download <name>`), or the t5Dir override's folder name. */
  name: string;
  dir: string;
}

/**
 * The text encoder each T5 conditioner of `config` loads. An unsupported `t5_model_name` is refused
 * with the supported list, unless `t5Dir` says where the encoder is.
 */
export function textEncoders(config: AudioXConfig, t5Dir?: string): TextEncoderUse[] {
  const out: TextEncoderUse[] = [];
  config.model.conditioning.configs.forEach((e, i) => {
    if (e.type !== 't5') return;
    const raw = (e.config as { t5_model_name?: unknown }).t5_model_name;
    const t5ModelName = typeof raw === 'string' ? raw : DEFAULT_T5_MODEL_NAME;
    if (t5Dir) {
      out.push({ id: e.id, t5ModelName, name: path.basename(path.resolve(t5Dir)), dir: path.resolve(t5Dir) });
      return;
    }
    let name: string;
    try {
      name = textEncoderModel(t5ModelName, `model.conditioning.configs[${i}] ("${e.id}"): t5_model_name`);
    } catch (err) {
      const known = Object.hasOwn(T5_MODEL_DIMS, t5ModelName)
        ? ' (the reference accepts it, but its hub checkpoint is sharded or too large for this loader)'
        : '';
      throw new ModelNotFoundError(`${(err as Error).message}${known}. Set t5_model_name in config.json to one of them.`);
    }
    out.push({ id: e.id, t5ModelName, name, dir: modelDir(name) });
  });
  return out;
}

function requireFile(dir: string, file: string, name: string, hint: string): string {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) throw new ModelNotFoundError(`model "${name}": ${p} is missing. ${hint}`);
  return p;
}

/** What a model reference resolves to, before any weight is read. */
export interface ModelSource {
  name: string;
  dir: string;
  demo: boolean;
  kind: ModelKind;
  config: AudioXConfig;
  /** The main weights (null for the demo model, whose weights are synthesised). */
  weightsFile: string | null;
  /**
   * The Synchformer weights a sync-feature video conditioner loads: the model's own copy, else (for custom
   * models) the one a released model's download or `audiox download synchformer` left in the cache. It may not
   * exist: the features are then zeros.
   */
  synchformerFile: string;
  /** Distinct text encoder snapshots, one entry per conditioner that uses one. */
  textEncoders: TextEncoderUse[];
  /** What fixes missing model files (for messages). */
  hint: string;
}

export interface InspectModelOptions {
  /** One text encoder snapshot for every T5 conditioner (LoadModelOptions.t5Dir). */
  t5Dir?: string;
  /** Check that the weights and text encoder files are present (default true); the config is always read. */
  requireFiles?: boolean;
}

/** The config's video conditioners that load the Synchformer (sync features). */
export function needsSynchformer(config: AudioXConfig): boolean {
  return config.model.conditioning.configs.some((e) => e.type === 'clip-with-sync-w-empty-feat');
}

/** The Synchformer file a model uses (see ModelSource.synchformerFile). */
export function synchformerFileOf(dir: string, kind: ModelKind): string {
  const own = path.join(dir, 'synchformer.safetensors');
  if (kind !== 'custom' || fs.existsSync(own)) return own;
  const shared = ['AudioX-MAF', 'AudioX-MAF-MMDiT', 'synchformer'].map((m) => path.join(modelDir(m), 'synchformer.safetensors'));
  return shared.find((f) => fs.existsSync(f)) ?? own;
}

/**
 * Resolves a model reference and checks its files: unknown names, a missing config or weights, an unsupported
 * or absent text encoder fail here with the command that fixes it (`audiox download …`).
 */
export function inspectModel(nameOrDir: string, opts: InspectModelOptions = {}): ModelSource {
  const { name, dir, demo, kind } = resolveModelDir(nameOrDir);
  const hint =
    isReleased(name)
      ? `Run \`audiox download ${name}\` first.`
      : kind === 'custom'
        ? 'The cached copy is incomplete: run again with --model-config and --ckpt-path to rebuild it.'
        : 'Convert the checkpoint with `audiox convert model.ckpt model.safetensors`, or pass --model-config and --ckpt-path.';
  const requireFiles = opts.requireFiles ?? true;
  const config = readConfig(requireFile(dir, 'config.json', name, hint));
  const weightsFile = demo ? null : path.join(dir, 'model.safetensors');
  if (weightsFile && requireFiles) requireFile(dir, 'model.safetensors', name, hint);
  // Before building: an unsupported t5_model_name is refused with the list of supported encoders.
  const t5 = demo ? [] : textEncoders(config, opts.t5Dir);
  if (requireFiles) {
    const seen = new Set<string>();
    for (const u of t5) {
      if (seen.has(u.dir)) continue;
      seen.add(u.dir);
      const fix = opts.t5Dir ? `Put the encoder's snapshot in ${u.dir}.` : `Run \`audiox download ${u.name}\` first.`;
      for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) requireFile(u.dir, f, u.name, fix);
    }
  }
  return { name, dir, demo, kind, config, weightsFile, synchformerFile: synchformerFileOf(dir, kind), textEncoders: t5, hint };
}

/** Records that a cached model was just loaded (`audiox models` shows it); best effort. */
export function touchLastUsed(dir: string): void {
  if (!dir.startsWith(path.join(audioxHome(), 'models') + path.sep)) return;
  try {
    fs.writeFileSync(path.join(dir, '.last-used'), `${new Date().toISOString()}\n`);
  } catch {
    // a read-only cache is fine
  }
}
