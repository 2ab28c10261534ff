// The production job runner: keeps one model loaded (switching models disposes the previous one; jobs run one
// at a time, so nothing else holds it), runs generate() with the job's parameters and files, renders a
// spectrogram preview of the denoised estimate every `previewEvery` steps, and writes the results.
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readConfig } from '../models/config.ts';
import { loadModel, resolveModelDir, type AudioXModel } from '../models/load.ts';
import { GenerateError, configLimits, generate, resolveParams, type ModelLimits } from '../pipeline/generate.ts';
import type { DiffusionObjective } from '../sampling/registry.ts';
import type { GenerateOptions, Progress } from '../pipeline/types.ts';
import type { JobContext, JobFiles, JobResult, RunJob } from './jobs.ts';
import { BadRequestError, type JobParams } from './params.ts';
import { saveResult } from './outputs.ts';
import { encodePng, renderSpectrogram } from './render.ts';

export interface PipelineRunnerOptions {
  outputDir: string;
  /** Loader (default loadModel); injectable for tests. */
  load?: (name: string) => Promise<AudioXModel>;
}

export interface PipelineRunner {
  runJob: RunJob;
  /** Checks a request against the model's limits before it is queued (BadRequestError → HTTP 400). */
  validate(model: string, params: JobParams, files: JobFiles): void;
  /** The model's diffusion objective from its config.json (undefined when the config cannot be read). */
  objectiveOf(model: string): DiffusionObjective | undefined;
  /** Loads `name` now (e.g. at start-up) so the first job does not wait for it. */
  preload(name: string): Promise<void>;
  /** The loaded model, if any (tests inspect it). */
  readonly current: AudioXModel | null;
  dispose(): void;
}

/** Maps a job's validated parameters and uploads onto generate()'s options. */
export function toGenerateOptions(p: JobParams, files: JobFiles, signal?: AbortSignal): GenerateOptions {
  return {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt === '' ? undefined : p.negativePrompt,
    video: files.video,
    image: files.image,
    audio: files.audio,
    secondsStart: p.secondsStart,
    secondsTotal: p.secondsTotal,
    steps: p.steps,
    cfgScale: p.cfgScale,
    cfgRescale: p.cfgRescale,
    sampler: p.sampler,
    sigmaMin: p.sigmaMin,
    sigmaMax: p.sigmaMax,
    seed: p.seed,
    initAudio: files.initAudio,
    initNoiseLevel: files.initAudio && p.inpaintStart === undefined ? p.initNoiseLevel : undefined,
    inpaint:
      p.inpaintStart === undefined || p.inpaintEnd === undefined
        ? undefined
        : {
            maskStart: p.inpaintStart,
            maskEnd: p.inpaintEnd,
            softnessL: p.inpaintSoftnessL,
            softnessR: p.inpaintSoftnessR,
            marination: p.inpaintMarination,
            cropFrom: p.inpaintCropFrom,
            pasteFrom: p.inpaintPasteFrom,
            pasteTo: p.inpaintPasteTo,
          },
    fullLength: p.fullLength,
    batchSize: p.batchSize,
    signal,
  };
}

/** The pipeline's resolved parameters with the private upload paths replaced by "(uploaded <field>)". */
function hideUploadPaths(params: Record<string, unknown>, ctx: JobContext): Record<string, unknown> {
  const byPath = new Map(Object.entries(ctx.files).map(([field, file]) => [file, `(uploaded ${field})`]));
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? (byPath.get(v) ?? v) : v]));
}

/**
 * Decodes the first batch item of `latents` [B, C, T] to audio channels, trimmed to `seconds`. Only the latent
 * frames covering `seconds` (plus a small margin for the decoder's receptive field) are decoded.
 */
export function decodePreview(model: AudioXModel, latents: tf.Tensor, seconds: number): Float32Array[] {
  const pre = model.wrapper.pretransform;
  const n = Math.round(seconds * model.sampleRate);
  const T = Math.min(latents.shape[2]!, Math.ceil(n / pre.downsamplingRatio) + 4);
  const audio = tf.tidy(() => pre.decode(latents.slice([0, 0, 0], [1, -1, T]) as tf.Tensor3D));
  try {
    const [, C, N] = audio.shape;
    const data = audio.dataSync() as Float32Array;
    return Array.from({ length: C }, (_, c) => data.slice(c * N, c * N + Math.min(n, N)));
  } finally {
    audio.dispose();
  }
}

export function createPipelineRunner(opts: PipelineRunnerOptions): PipelineRunner {
  const load = opts.load ?? ((name: string) => loadModel(name));
  let current: AudioXModel | null = null;
  const limits = new Map<string, ModelLimits>();

  /** The model's length limit and objective from its config.json (no weights loaded). */
  function limitsOf(name: string): ModelLimits {
    let l = limits.get(name);
    if (!l) {
      const { name: resolved, dir } = resolveModelDir(name);
      l = configLimits(resolved, readConfig(path.join(dir, 'config.json')));
      limits.set(name, l);
    }
    return l;
  }

  let currentKey = '';

  /** The model for `name` (as requested: a name or a directory), loading it if another one is loaded. */
  async function use(name: string): Promise<AudioXModel> {
    if (current && currentKey === name) return current;
    current?.dispose();
    current = null;
    current = await load(name);
    currentKey = name;
    return current;
  }

  /** Spectrogram PNG of the current denoised estimate (first batch item, decoded by the VAE). */
  function preview(ctx: JobContext, model: AudioXModel, p: Progress): void {
    const audio = decodePreview(model, p.denoised, ctx.params.secondsTotal);
    ctx.preview(encodePng(renderSpectrogram(audio, model.sampleRate, { width: 600, height: 160 })));
  }

  const runJob: RunJob = async (ctx): Promise<JobResult> => {
    ctx.progress({ stage: 'loading model' });
    const model = await use(ctx.model);
    ctx.signal.throwIfAborted();
    ctx.progress({ stage: 'conditioning', step: 0, steps: ctx.params.steps });
    const every = ctx.params.previewEvery;
    const res = await generate(model, {
      ...toGenerateOptions(ctx.params, ctx.files, ctx.signal),
      onProgress: (p) => {
        const done = p.step + 1;
        const last = p.steps === null ? p.fraction >= 1 : done === p.steps;
        ctx.progress({ stage: last ? 'decoding' : 'sampling', step: done, steps: p.steps, fraction: p.fraction });
        if (every > 0 && done % every === 0 && !last) preview(ctx, model, p);
      },
    });
    ctx.signal.throwIfAborted();
    ctx.progress({ stage: 'writing' });
    const items = await saveResult(opts.outputDir, res.audio, res.sampleRate, {
      video: ctx.files.video,
      secondsStart: ctx.params.secondsStart,
      signal: ctx.signal,
    });
    return { items, seed: res.seed, sampleRate: res.sampleRate, params: hideUploadPaths(res.params, ctx), timings: res.timings };
  };

  return {
    runJob,
    validate(model, params, files) {
      try {
        resolveParams(limitsOf(model), toGenerateOptions(params, files));
      } catch (e) {
        if (e instanceof GenerateError) throw new BadRequestError(e.message);
        throw new BadRequestError(`Model "${model}" is not usable: ${(e as Error).message}`);
      }
    },
    objectiveOf(model) {
      try {
        return limitsOf(model).objective;
      } catch {
        return undefined;
      }
    },
    async preload(name) {
      await use(name);
    },
    get current() {
      return current;
    },
    dispose() {
      current?.dispose();
      current = null;
    },
  };
}
