// loadModel: config.json + converted weights → a ready model (wrapper + the parts that live outside
// the checkpoint: the T5 encoder and tokenizer, the Synchformer), with strict key checks and a memory plan.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { SafetensorsFile, type TensorSource } from '../io/safetensors.ts';
import type { Module, Parameter } from '../nn/module.ts';
import type { MemoryBudget, RuntimeInfo } from '../nn/runtime.ts';
import { TO_HOST } from '../nn/kernels.ts';
import { loadStateDictStreamed, offloadToHost, releaseStreamed, type HostDType } from '../nn/streaming.ts';
import { modelDir, MODELS } from '../hub/models.ts';
import type { AudioXConfig } from './config.ts';
import type { ExternalModelKind } from './conditioners/conditioner.ts';
import { loadT5Pretrained } from './conditioners/text/t5.ts';
import { withConditionerWeights, type ConditionerWeights } from './conditioner-weights.ts';
import { demoWeight, initDemoWeights } from './demo.ts';
import { chooseMemoryPlan, describePlan, type MemoryPlan, type WeightMode } from './memory.ts';
import { Synchformer } from './synchformer/synchformer.ts';
import { T5EncoderModel, type T5Config } from './t5.ts';
import { cachedGenerationModels } from './cache.ts';
import { RELEASED_MODELS, inspectModel, touchLastUsed } from './source.ts';
import { TextTokenizer } from './tokenizer.ts';
import { AudioAutoencoder } from './vae/pretransform.ts';
import { ConditionedDiffusionModelWrapper, createModelFromConfig } from './wrapper.ts';

export { RELEASED_MODELS, ModelNotFoundError, resolveModelDir, textEncoders, type TextEncoderUse } from './source.ts';

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
    /** The runtime it was loaded on (backend, budget, kernels); null for models built without one. */
    readonly runtime: RuntimeInfo | null = null,
  ) {}

  /** Output samples per second (Hz; 44100 for the released models). */
  get sampleRate(): number {
    return this.config.sample_rate;
  }
  /** The external models conditioners read from their host: the Synchformer (text encoders sit in their conditioners). */
  externalModel(kind: ExternalModelKind): Module | null {
    return kind === 'synchformer' ? this.synchformer : null;
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

/** Options of `loadModel`: where the text encoder is, the backend or runtime, the weight mode and the memory budget. */
export interface LoadModelOptions {
  /**
   * Directory of the text encoder's snapshot, for every text conditioner (default: the download cache's
   * copy of the encoder each conditioner's `t5_model_name` names).
   */
  t5Dir?: string;
  /**
   * The runtime to load on (src/backend/runtime.ts `createRuntime`). The library entry (`loadModel` of the
   * package, src/pipeline/load.ts) creates one from `backend` and `memoryBudget` when it is absent.
   */
  runtime?: RuntimeInfo;
  /** Backend to start when no `runtime` is given (see initBackend). */
  backend?: string;
  /**
   * Keep the big modules' weights in host memory and upload them per forward (true), keep
   * everything resident (false), keep the transformer blocks' weight operands in host memory where the
   * backend's kernels read them in place with no upload ('host': wasm with the native addon), or decide
   * from the memory plan ('auto': resident, else host where available, else streamed); default: the
   * runtime's weight policy (env AUDIOX_STREAM_WEIGHTS=1|0|host, read when the runtime is created, else 'auto').
   */
  streamWeights?: boolean | 'auto' | 'host';
  /** Precision of the streamed host copies (default: the runtime's, from env AUDIOX_STREAM_FP16=1 → 'float16', else 'keep'). */
  hostDType?: HostDType;
  /** Backend bytes to plan against instead of the runtime's budget. */
  memoryBudget?: number;
}

function weightMode(opt: boolean | 'auto' | 'host' | undefined, runtime: RuntimeInfo): WeightMode | 'auto' {
  if (opt === true) return 'streamed';
  if (opt === false) return 'resident';
  if (opt === 'host') return 'host';
  return runtime.weights.mode;
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

/** A custom model given by its config and checkpoint (the demo's `--model-config` / `--ckpt-path`). */
export interface CustomModelRef {
  /** Path of its config.json. */
  config: string;
  /** Path of its checkpoint (.ckpt, .pth or .safetensors). */
  checkpoint: string;
  /** Take the EMA weights of a training checkpoint (default: when it has them). */
  ema?: boolean;
}

/**
 * Loads a model on `opts.runtime` (the backend already started: models never start one): `demo`, a released name,
 * a model cached under AUDIOX_HOME/models (custom conversions included), a model directory, or a config +
 * checkpoint (`CustomModelRef`, converted into the cache first when needed; the text encoder and Synchformer it
 * needs are downloaded once unless `opts.t5Dir` gives the encoder). Library callers use the package's
 * `loadModel` (src/pipeline/load.ts), which creates a default runtime when none is given.
 */
export async function loadModel(nameOrDir: string | CustomModelRef, opts: LoadModelOptions & { runtime: RuntimeInfo }): Promise<AudioXModel> {
  const { runtime } = opts;
  let ref: string;
  if (typeof nameOrDir === 'string') ref = nameOrDir;
  else {
    const { prepareCustomModel } = await import('./custom.ts');
    const { config, checkpoint, ema } = nameOrDir;
    ref = (await prepareCustomModel({ config, checkpoint, ema, downloadTextEncoders: !opts.t5Dir })).name;
  }
  const src = inspectModel(ref, { t5Dir: opts.t5Dir });
  const { name, dir, demo, config } = src;
  const mainFile = src.weightsFile;
  const t5Uses = src.textEncoders;
  touchLastUsed(dir);
  const wrapper = createModelFromConfig(config);
  let synchformer: Synchformer | null = null;
  let file: SafetensorsFile | null = null;
  let weights: ConditionerWeights | null = null;
  try {
    // What the conditioners declare they run besides the checkpoint.
    const needs = new Set([...wrapper.conditioner.conditioners.entries.values()].flatMap((c) => c.externalModels ?? []));
    const needsSync = needs.has('synchformer');
    const t5Dirs = new Map(t5Uses.map((u) => [u.dir, u]));
    const syncFile = needsSync && !demo ? src.synchformerFile : null;
    file = mainFile ? SafetensorsFile.open(mainFile) : null;
    if (file) {
      const fix = (RELEASED_MODELS as readonly string[]).includes(name)
        ? `Run \`audiox download ${name}\` (it fetches VAE.ckpt and converts it to VAE.safetensors).`
        : `Convert the autoencoder's checkpoint into the model directory: \`audiox convert VAE.ckpt ${path.join(dir, 'VAE.safetensors')}\` ` +
          '(or point the entry\'s pretransform_ckpt_path at it).';
      weights = withConditionerWeights(wrapper, file, { name, dir, mainFile: mainFile!, fix });
    }
    if (opts.memoryBudget !== undefined && !(opts.memoryBudget > 0)) {
      throw new Error(`loadModel: memoryBudget must be a positive number of bytes, got ${opts.memoryBudget}`);
    }
    const budget = opts.memoryBudget === undefined ? runtime.budget : { ...runtime.budget, bytes: opts.memoryBudget };
    const hostDType = opts.hostDType ?? runtime.weights.hostDType;
    const plan = chooseMemoryPlan(wrapper, name, {
      budget,
      extra: demo ? [] : extraModels(t5Dirs.keys(), syncFile),
      source: weights?.source ?? file ?? undefined,
      hostDType,
      mode: weightMode(opts.streamWeights, runtime),
      hostTensors: runtime.kernels.includes(TO_HOST),
    });
    if (process.env.AUDIOX_VERBOSE) console.error(`memory plan for "${name}":\n${describePlan(plan)}`);
    // Tensor by tensor; aborts (disposing what was loaded) before the backend passes its budget.
    const load = (source: TensorSource) => loadStateDictStreamed(wrapper, source, plan.units, { hostDType, maxBackendBytes: budget.bytes, hostUnits: plan.hostUnits });
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
        if (plan.mode !== 'resident') offloadToHost([encoder.encoder], hostDType);
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
          if (plan.mode !== 'resident') offloadToHost([synchformer.vfeat_extractor], hostDType);
        }
      }
    }
    useBudget(wrapper, synchformer, budget);
    return new AudioXModel(name, dir, config, wrapper, synchformer, demo, plan, runtime);
  } catch (e) {
    weights?.close();
    file?.close();
    wrapper.dispose();
    releaseStreamed(wrapper);
    synchformer?.dispose();
    throw e;
  }
}

/** Hands the budget down to the modules that plan their own working memory (VAE encode/decode, Synchformer). */
function useBudget(w: ConditionedDiffusionModelWrapper, synchformer: Synchformer | null, budget: MemoryBudget): void {
  for (const [, m] of w.namedModules()) if (m instanceof AudioAutoencoder) m.budget = budget;
  if (synchformer) synchformer.budget = budget;
}

/** Attaches one text encoder to the conditioners that declare one (those with an id in `ids`, or all). */
function attachT5(w: ConditionedDiffusionModelWrapper, encoder: T5EncoderModel, tokenizer: TextTokenizer, ids?: ReadonlySet<string>): void {
  for (const [id, c] of w.conditioner.conditioners.entries) {
    if (!c.externalModels?.includes('text-encoder') || (ids && !ids.has(id))) continue;
    if (!c.attachExternal) throw new Error(`conditioner "${id}" declares a text encoder but cannot take one (no attachExternal)`);
    c.attachExternal('text-encoder', { module: encoder, tokenizer });
  }
}

/** Names of models whose files are present locally (for pickers): the demo, the released ones, custom conversions. */
export function localModels(): string[] {
  return ['demo', ...cachedGenerationModels()];
}

export { MODELS };
