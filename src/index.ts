// Public API of audiox-ts: load a model, generate, inspect, convert and download weights, pick a backend.
// Every export is documented where it is defined; this file only says what is public.

// ---- backends ----
/** Backend selection (`initBackend`), the active backend (`activeBackend`) and what is available (`probeBackends`). */
export { initBackend, activeBackend, probeBackends, type BackendInfo, type BackendName } from './backend/index.ts';
/**
 * `createRuntime(options)` starts a backend and describes it for the models (budget, kernels, weight policy);
 * pass it as `loadModel(name, { runtime })`. Without one, loadModel creates a default runtime.
 */
export { createRuntime, type Runtime, type RuntimeOptions } from './backend/runtime.ts';
export type { RuntimeInfo, MemoryBudget, WeightStorePolicy } from './nn/runtime.ts';

// ---- models ----
/**
 * `loadModel(name | dir | { config, checkpoint }, options)` loads a released model (`audiox download` leaves it in
 * the cache), a model the cache holds (`audiox models`), a model directory, your own config + checkpoint (converted
 * into the cache on first use), or the built-in untrained `demo` model; `AudioXModel` is the result (`.wrapper` is the module tree,
 * named by the reference's state-dict paths).
 */
export { localModels, AudioXModel, RELEASED_MODELS, type CustomModelRef, type LoadModelOptions, type ModelInfo } from './models/load.ts';
export { loadModel } from './pipeline/load.ts';
/** A config + training checkpoint made into a cached model (what `loadModel({ config, checkpoint })` does first). */
export { prepareCustomModel, CustomModelError, type CustomModelOptions, type PreparedCustomModel } from './models/custom.ts';
/** What the model cache holds (`audiox models`), and removing an entry (`audiox models rm`). */
export { listCachedModels, removeCachedModel, type CachedModel, type CachedKind } from './models/cache.ts';
/** Model configs: read and validate the original `config.json`. */
export { readConfig, validateConfig, type AudioXConfig } from './models/config.ts';
/** Config-driven construction without weights (e.g. for a parameter manifest). */
export { createModelFromConfig, ConditionedDiffusionModelWrapper } from './models/wrapper.ts';

// ---- generation ----
/**
 * `generate(model, options)` runs one generation (conditioning → sampler → VAE decode); `resolveParams` fills in
 * defaults; the option names are those of the CLI flags and the HTTP API.
 */
export { generate, resolveParams, GENERATE_DEFAULTS, SAMPLER_NAMES } from './pipeline/generate.ts';
export type { GenerateOptions, GenerateResult, Progress, SamplerName, ConditionerOutput } from './pipeline/types.ts';
/**
 * `generateLongform(model, options)`: audio longer than the model's window, window by window (each continues the
 * previous one through the inpainting mask, seams cross-faded) into a WAV written progressively.
 */
export { generateLongform, planWindows, type LongformOptions, type LongformResult, type LongformProgress, type WindowPlan } from './pipeline/longform.ts';

// ---- conditioners ----
/** Adding a conditioner type from outside the package: its factory builds a `Conditioner` (see docs/ARCHITECTURE.md). */
export { registerConditioner, unregisterConditioner, conditionerTypes, type ConditionerFactory } from './models/conditioners/registry.ts';
export { type Conditioner, type ConditionerMedia, type ConditionerHost, type PrepareOptions, type ConditionContext, type MediaField } from './models/conditioners/conditioner.ts';

// ---- modules, weights, capture ----
/** `Module` (state-dict names, strict loading, `capture` of any submodule's output by its path) and `Parameter`. */
export { Module, Parameter, type Captures } from './nn/module.ts';
/** safetensors: a lazy reader and a streaming writer. */
export { SafetensorsFile, writeSafetensors, saveTensors, type TensorSource } from './io/safetensors.ts';
/** Noise sources for the samplers: seeded, or injected (e.g. a reference's recorded draws). */
export { SeededNoise, InjectedNoise, type NoiseSource, type NoiseStream } from './nn/noise.ts';
/** The k-diffusion and rectified-flow sampling drivers (samplers as small functions over a denoiser). */
export { sampleK, sampleRf } from './sampling/sample.ts';
/** 16-bit PCM WAV output, as the reference's demo writes it. */
export { writeWav, readWavHeader } from './io/wav.ts';
/** PyTorch checkpoints (.ckpt / .pth) → safetensors, without Python. */
export { convertCheckpoint } from '../weights-converter/index.ts';
/** The model cache and the Hugging Face hub download. */
export { downloadModel, audioxHome, modelDir } from './hub/index.ts';
/** The parity harness over reference fixtures (more in `audiox-ts/parity`). */
export { runHarness } from './parity/harness.ts';

// ---- errors (all `instanceof Error`; catch the specific ones) ----
/** No such model: neither a released name in the cache, nor a directory, nor `demo`. */
export { ModelNotFoundError } from './models/load.ts';
/** A generation option is invalid for this model (the message names the option). */
export { GenerateError } from './pipeline/generate.ts';
/** Inpainting/continuation options that do not fit the window. */
export { InpaintError } from './pipeline/inpaint.ts';
/** Weights do not match the model: missing, unexpected or mis-shaped keys, all listed. */
export { StateDictError } from './nn/module.ts';
/** An invalid or unsupported `config.json` (the message names the key). */
export { ConfigError } from './models/config.ts';
/** The planned memory exceeds the backend's budget (refused before anything is allocated). */
export { MemoryPlanError } from './models/memory.ts';
/** A weights file that a conditioner needs (VAE, T5, Synchformer) is missing. */
export { MissingWeightsError } from './models/conditioner-weights.ts';
/** A malformed or truncated safetensors file. */
export { SafetensorsError } from './io/safetensors.ts';
/** Media that cannot be read, or ffmpeg missing. */
export { MediaError } from './io/ffmpeg.ts';
/** A failed download or a hub answer that cannot be used. */
export { HubError } from './hub/download.ts';
/** A config that names a text encoder we do not implement. */
export { UnsupportedTextEncoderError } from './hub/models.ts';
/** A checkpoint that cannot be converted (the message says which tensor or record). */
export { ConvertError } from '../weights-converter/index.ts';
/** Media a conditioner cannot use (the message names the option). */
export { ConditionerInputError } from './models/conditioners/conditioner.ts';
