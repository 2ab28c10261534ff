// loadModel: config.json + converted weights → a ready model (wrapper + the parts that live outside
// the checkpoint: the T5 encoder and tokenizer, the Synchformer), with strict key checks and a memory plan.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { activeBackend, initBackend } from '../backend/index.ts';
import { SafetensorsFile, type TensorSource } from '../io/safetensors.ts';
import type { Module, Parameter } from '../nn/module.ts';
import { loadStateDictStreamed, offloadToHost, releaseStreamed, type HostDType } from '../nn/streaming.ts';
import { DEFAULT_T5_MODEL_NAME, modelDir, MODELS, textEncoderModel } from '../hub/models.ts';
import { readConfig, type AudioXConfig } from './config.ts';
import { CLIPWithSyncWithEmptyFeatureConditioner } from './conditioners/video/clip.ts';
import { T5_MODEL_DIMS, T5Conditioner, loadT5Pretrained } from './conditioners/text/t5.ts';
import { withConditionerWeights, type ConditionerWeights } from './conditioner-weights.ts';
import { DEMO_DIR, demoWeight, initDemoWeights } from './demo.ts';
import { chooseMemoryPlan, describePlan, type MemoryPlan, type WeightMode } from './memory.ts';
import { Synchformer } from './synchformer/synchformer.ts';
import { T5EncoderModel, type T5Config } from './t5.ts';
import { TextTokenizer } from './tokenizer.ts';
import { ConditionedDiffusionModelWrapper, createModelFromConfig } from './wrapper.ts';

/** The released checkpoints `audiox download` fetches (HKUSTAudio on the Hugging Face hub). */
export const RELEASED_MODELS = ['AudioX', 'AudioX-MAF', 'AudioX-MAF-MMDiT'] as const;

/** A summary of a loaded model (`AudioXModel.info()`, `audiox inspect`, GET /api/info). */
export interface ModelInfo {
  /** The released name, the directory's base name, or 'demo'. */
  name: string;
  /** The model directory (absolute). */
  dir: string;
  /** Whether it is the built-in untrained demo model. */
  demo: boolean;
  /** The diffusion network: 'dit', 'mmdit', with ' + MAF' when it has the MAF gate. */
  variant: string;
  /** Number of parameters and buffers in the module tree (elements, not bytes). */
  parameters: number;
  /** Bytes the weights take on the backend. */
  bytes: number;
  /** Output samples per second (Hz). */
  sampleRate: number;
  /** Samples per generation window (sample_size). */
  sampleSize: number;
  /** The conditioners from the config, in order. */
  conditioners: { id: string; type: string }[];
  /** Whether the Synchformer video encoder is loaded. */
  synchformer: boolean;
}

/** A loaded model: the checkpoint's module tree plus the parts the reference keeps outside it. */
export class AudioXModel {
  /**
   * Built by {@link loadModel}; construct one directly only around a wrapper you have built and loaded.
   * @param name The model's name.
   * @param dir Its directory.
   * @param config Its parsed config.json.
   * @param wrapper The module tree (state-dict paths of the checkpoint).
   * @param synchformer The video encoder, when a conditioner needs it.
   * @param demo Whether it is the untrained demo model.
   */
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly config: AudioXConfig,
    readonly wrapper: ConditionedDiffusionModelWrapper,
    readonly synchformer: Synchformer | null,
    readonly demo: boolean,
    /** How the weights are held (README "Memory"); null for models built without a plan. */
    readonly memoryPlan: MemoryPlan | null = null,
  ) {}

  /** Output samples per second (Hz; 44100 for the released models). */
  get sampleRate(): number {
    return this.config.sample_rate;
  }
  /** Samples per generation window. */
  get sampleSize(): number {
    return this.config.sample_size;
  }
  /** Frames per second video conditioning is sampled at (config video_fps, default 5). */
  get videoFps(): number {
    return this.config.video_fps ?? 5;
  }
  /** One latent frame: the shortest output (downsampling_ratio / sample_rate). */
  get minSeconds(): number {
    return this.wrapper.pretransform.downsamplingRatio / this.sampleRate;
  }
  /** Seconds of audio one generation produces before trimming (sample_size / sample_rate). */
  get maxSeconds(): number {
    return this.sampleSize / this.sampleRate;
  }

  /** A summary: name, variant, sizes, conditioners (computed without touching the weights). */
  info(): ModelInfo {
    const manifest = this.wrapper.parameterManifest();
    let n = 0;
    for (const s of Object.values(manifest)) n += s.reduce((a, b) => a * b, 1);
    const d = this.config.model.diffusion;
    return {
      name: this.name,
      dir: this.dir,
      demo: this.demo,
      variant: `${d.type}${d.gate ? ' + MAF' : ''}`,
      parameters: n,
      bytes: this.wrapper.parameterBytes(),
      sampleRate: this.sampleRate,
      sampleSize: this.sampleSize,
      conditioners: this.config.model.conditioning.configs.map((c) => ({ id: c.id, type: c.type })),
      synchformer: this.synchformer !== null,
    };
  }

  /** Frees every tensor of the model (also host copies of streamed weights); the model is unusable afterwards. */
  dispose(): void {
    this.wrapper.dispose();
    releaseStreamed(this.wrapper);
    this.synchformer?.dispose();
    if (this.synchformer) releaseStreamed(this.synchformer);
  }
}

/** No such model (neither 'demo', a released name, nor a directory), or a file of its directory is missing; the message says what to run. */
export class ModelNotFoundError extends Error {}

/** Where a model name or path lives: 'demo', a released name (cache dir), or a directory. */
export function resolveModelDir(nameOrDir: string): { name: string; dir: string; demo: boolean } {
  if (nameOrDir === 'demo') return { name: 'demo', dir: DEMO_DIR, demo: true };
  const released = RELEASED_MODELS.find((m) => m.toLowerCase() === nameOrDir.toLowerCase());
  if (released) return { name: released, dir: modelDir(released), demo: false };
  if (fs.existsSync(nameOrDir) && fs.statSync(nameOrDir).isDirectory()) {
    return { name: path.basename(path.resolve(nameOrDir)), dir: path.resolve(nameOrDir), demo: false };
  }
  throw new ModelNotFoundError(
    `unknown model "${nameOrDir}": use one of ${['demo', ...RELEASED_MODELS].join(', ')} or a directory with config.json and model.safetensors`,
  );
}

function requireFile(dir: string, file: string, name: string, hint: string): string {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) throw new ModelNotFoundError(`model "${name}": ${p} is missing. ${hint}`);
  return p;
}

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /**
   * Directory of the text encoder's snapshot, for every text conditioner (default: the download cache's
   * copy of the encoder each conditioner's `t5_model_name` names).
   */
  t5Dir?: string;
  /** Backend to initialise first (see initBackend; default: the best available). */
  backend?: string;
  /**
   * Keep the big modules' weights in host memory and upload them per forward (true), keep
   * everything resident (false), or decide from the memory plan ('auto', the default;
   * env AUDIOX_STREAM_WEIGHTS=1|0 overrides 'auto').
   */
  streamWeights?: boolean | 'auto';
  /** Precision of the streamed host copies (default 'keep'; env AUDIOX_STREAM_FP16=1 → 'float16'). */
  hostDType?: HostDType;
  /** Backend bytes to plan against instead of the active backend's budget. */
  memoryBudget?: number;
}

function weightMode(opt: boolean | 'auto' | undefined): WeightMode | 'auto' {
  if (opt === true) return 'streamed';
  if (opt === false) return 'resident';
  const env = process.env.AUDIOX_STREAM_WEIGHTS;
  if (env === '1' || env === 'true') return 'streamed';
  if (env === '0' || env === 'false') return 'resident';
  return 'auto';
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

/** Each distinct text encoder snapshot, checked to be present (config, tokenizer, weights). */
function requireTextEncoders(uses: TextEncoderUse[], t5DirGiven: boolean): Map<string, TextEncoderUse> {
  const dirs = new Map<string, TextEncoderUse>();
  for (const u of uses) {
    if (dirs.has(u.dir)) continue;
    const fix = t5DirGiven ? `Put the encoder's snapshot in ${u.dir}.` : `Run \`audiox download ${u.name}\` first.`;
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) requireFile(u.dir, f, u.name, fix);
    dirs.set(u.dir, u);
  }
  return dirs;
}

/**
 * What loadModel loads besides the checkpoint (built, not loaded: shapes only), for the memory
 * plan, with the parts streamed in streamed mode: T5's encoder stack, the Synchformer's extractor.
 */
function extraModels(t5Dirs: Iterable<string>, syncFile: string | null): { module: Module; streamable: Module[] }[] {
  const out: { module: Module; streamable: Module[] }[] = [];
  for (const dir of t5Dirs) {
    const t5 = T5EncoderModel.fromConfig(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as T5Config);
    out.push({ module: t5, streamable: [t5.encoder] });
  }
  if (syncFile && fs.existsSync(syncFile)) {
    const s = new Synchformer();
    out.push({ module: s, streamable: [s.vfeat_extractor] });
  }
  return out;
}

/** The demo weights as a tensor source (for loading the demo model through the streaming loader). */
class DemoSource implements TensorSource {
  private readonly params: Map<string, Parameter>;
  constructor(m: Module) {
    this.params = new Map(m.namedTensors());
  }
  keys(): string[] {
    return [...this.params.keys()];
  }
  has(key: string): boolean {
    return this.params.has(key);
  }
  shape(key: string): number[] {
    return this.params.get(key)!.shape;
  }
  read(key: string): tf.Tensor {
    return demoWeight(key, this.params.get(key)!);
  }
}

/**
 * Loads a model: 'demo' (built-in, untrained), a released name (from the download cache) or a model directory
 * (config.json + model.safetensors, and the VAE / text encoder / Synchformer weights its conditioners need).
 * Initialises the backend first. Weights are checked strictly and planned against the backend's memory.
 * @throws ModelNotFoundError for an unknown name or a missing file (the message says what to download or convert).
 * @throws ConfigError for an invalid config.json; StateDictError for weights that do not fit;
 *   MissingWeightsError for a conditioner's missing weights; MemoryPlanError when the model does not fit the budget.
 */
export async function loadModel(nameOrDir: string, opts: LoadModelOptions = {}): Promise<AudioXModel> {
  await initBackend(opts.backend);
  const { name, dir, demo } = resolveModelDir(nameOrDir);
  const download = RELEASED_MODELS.includes(name as (typeof RELEASED_MODELS)[number])
    ? `Run \`audiox download ${name}\` first.`
    : 'Convert the checkpoint with `audiox convert model.ckpt model.safetensors`.';
  const config = readConfig(requireFile(dir, 'config.json', name, download));
  const mainFile = demo ? null : requireFile(dir, 'model.safetensors', name, download);
  // Before building: an unsupported t5_model_name is refused with the list of supported encoders.
  const t5Uses = demo ? [] : textEncoders(config, opts.t5Dir);
  const wrapper = createModelFromConfig(config);
  let synchformer: Synchformer | null = null;
  let file: SafetensorsFile | null = null;
  let weights: ConditionerWeights | null = null;
  try {
    const needsSync = [...wrapper.conditioner.conditioners.entries.values()].some(
      (c) => c instanceof CLIPWithSyncWithEmptyFeatureConditioner,
    );
    const t5Dirs = requireTextEncoders(t5Uses, !!opts.t5Dir);
    const syncFile = needsSync && !demo ? path.join(dir, 'synchformer.safetensors') : null;
    file = mainFile ? SafetensorsFile.open(mainFile) : null;
    if (file) {
      const fix = RELEASED_MODELS.includes(name as (typeof RELEASED_MODELS)[number])
        ? `Run \`audiox download ${name}\` (it fetches VAE.ckpt and converts it to VAE.safetensors).`
        : `Convert the autoencoder's checkpoint into the model directory: \`audiox convert VAE.ckpt ${path.join(dir, 'VAE.safetensors')}\` ` +
          '(or point the entry\'s pretransform_ckpt_path at it).';
      weights = withConditionerWeights(wrapper, file, { name, dir, mainFile: mainFile!, fix });
    }
    const backend = activeBackend();
    const budget = opts.memoryBudget ?? backend.memoryBudget;
    const hostDType = opts.hostDType ?? (process.env.AUDIOX_STREAM_FP16 === '1' ? 'float16' : 'keep');
    const plan = chooseMemoryPlan(wrapper, name, {
      backend: backend.name,
      budget,
      extra: demo ? [] : extraModels(t5Dirs.keys(), syncFile),
      source: weights?.source ?? file ?? undefined,
      hostDType,
      mode: weightMode(opts.streamWeights),
    });
    if (process.env.AUDIOX_VERBOSE) console.error(`memory plan for "${name}":\n${describePlan(plan)}`);
    // Tensor by tensor; aborts (disposing what was loaded) before the backend passes its budget.
    const load = (source: TensorSource) => loadStateDictStreamed(wrapper, source, plan.units, { hostDType, maxBackendBytes: budget });
    if (demo) {
      if (plan.units.length) load(new DemoSource(wrapper));
      else initDemoWeights(wrapper);
      const extra = config.audiox_ts ?? {};
      const tokenizer = TextTokenizer.fromFile(path.join(dir, extra.tokenizer ?? 'tokenizer.json'));
      const t5 = T5EncoderModel.fromConfig(extra.t5 as unknown as T5Config);
      initDemoWeights(t5);
      attachT5(wrapper, t5, tokenizer);
      if (needsSync) {
        const s = (extra.synchformer ?? {}) as { embed_dim?: number; depth?: number; num_heads?: number; mlp_ratio?: number };
        synchformer = Synchformer.fromVitOverrides({ EMBED_DIM: s.embed_dim, DEPTH: s.depth, NUM_HEADS: s.num_heads, MLP_RATIO: s.mlp_ratio });
        initDemoWeights(synchformer);
      }
    } else {
      load(weights!.source);
      weights!.close();
      file!.close();
      for (const dirOfT5 of t5Dirs.keys()) {
        const ids = new Set(t5Uses.filter((u) => u.dir === dirOfT5).map((u) => u.id));
        const { encoder, tokenizer } = loadT5Pretrained(dirOfT5);
        try {
          attachT5(wrapper, encoder, tokenizer, ids);
        } catch (e) {
          encoder.dispose();
          throw new Error(`text encoder ${dirOfT5}: ${(e as Error).message}`);
        }
        if (plan.mode === 'streamed') offloadToHost([encoder.encoder], hostDType);
      }
      if (syncFile) {
        // Like the reference UI: without the Synchformer weights the sync features are zeros.
        if (fs.existsSync(syncFile)) {
          synchformer = new Synchformer();
          const sf = SafetensorsFile.open(syncFile);
          try {
            synchformer.load(sf);
          } finally {
            sf.close();
          }
          if (plan.mode === 'streamed') offloadToHost([synchformer.vfeat_extractor], hostDType);
        }
      }
    }
    return new AudioXModel(name, dir, config, wrapper, synchformer, demo, plan);
  } catch (e) {
    weights?.close();
    file?.close();
    wrapper.dispose();
    releaseStreamed(wrapper);
    synchformer?.dispose();
    throw e;
  }
}

/** Attaches one encoder to the T5 conditioners (those with an id in `ids`, or all). */
function attachT5(w: ConditionedDiffusionModelWrapper, encoder: T5EncoderModel, tokenizer: TextTokenizer, ids?: ReadonlySet<string>): void {
  for (const [id, c] of w.conditioner.conditioners.entries) if (c instanceof T5Conditioner && (!ids || ids.has(id))) c.attach(encoder, tokenizer);
}

/** Names of models whose files are present locally (for pickers). */
export function localModels(): string[] {
  const out = ['demo'];
  for (const m of RELEASED_MODELS) {
    if (fs.existsSync(path.join(modelDir(m), 'model.safetensors'))) out.push(m);
  }
  return out;
}

export { MODELS };
