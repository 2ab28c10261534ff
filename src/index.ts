// Public API of audiox-ts: load a model, generate, inspect, convert and download weights, pick a backend.
export { initBackend, activeBackend, probeBackends, type BackendInfo, type BackendName } from './backend/index.ts';
export { loadModel, localModels, AudioXModel, RELEASED_MODELS, ModelNotFoundError, type LoadModelOptions, type ModelInfo } from './models/load.ts';
export { generate, resolveParams, GENERATE_DEFAULTS, SAMPLER_NAMES, GenerateError } from './pipeline/generate.ts';
export type { GenerateOptions, GenerateResult, Progress, SamplerName, ConditionerOutput } from './pipeline/types.ts';
export { readConfig, validateConfig, type AudioXConfig } from './models/config.ts';
export { createModelFromConfig, ConditionedDiffusionModelWrapper } from './models/wrapper.ts';
export { registerConditioner, unregisterConditioner, conditionerTypes, type ConditionerFactory } from './models/conditioners/registry.ts';
export { ConditionerInputError, type Conditioner, type ConditionerMedia, type ConditionerHost, type PrepareOptions, type ConditionContext, type MediaField } from './models/conditioners/conditioner.ts';
export { Module, Parameter, StateDictError, type Captures } from './nn/module.ts';
export { SafetensorsFile, writeSafetensors, saveTensors, type TensorSource } from './io/safetensors.ts';
export { SeededNoise, InjectedNoise, type NoiseSource, type NoiseStream } from './sampling/noise.ts';
export { sampleK, sampleRf } from './sampling/sample.ts';
export { writeWav, readWavHeader } from './io/wav.ts';
export { convertCheckpoint } from '../weights-converter/index.ts';
export { downloadModel, audioxHome, modelDir } from './hub/index.ts';
export { runHarness } from './parity/harness.ts';
