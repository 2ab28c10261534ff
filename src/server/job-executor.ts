// One job on the thread that holds the model (the generation worker): keeps one model loaded (switching models
// disposes the previous one), runs generate() with the job's parameters and files, renders a spectrogram
// preview of the denoised estimate every `previewEvery` steps, and writes the results. The abort signal is
// checked after every stage; what a stage wrote is removed when the abort lands during it (saveResult).
import * as tf from '@tensorflow/tfjs';
import type { AudioXModel } from '../models/load.ts';
import { loadModel } from '../pipeline/load.ts';
import { readWav } from '../io/wav.ts';
import { GenerateError, generate, resolveParams, type ModelLimits } from '../pipeline/generate.ts';
import { generateLongform, isLongform, overlapProblem, type LongformOptions } from '../pipeline/longform.ts';
import { muxVideoWithAudio } from '../io/mux.ts';
import path from 'node:path';
import type { GenerateOptions, Progress } from '../pipeline/types.ts';
import type { JobFiles, JobResult } from './jobs.ts';
import type { JobParams } from './params.ts';
import { outputSuffixes, removeOutputs, saveResult, writePictures } from './outputs.ts';
import { encodePng, renderSpectrogram } from './render.ts';
import { reserveOutputs } from './files.ts';

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

/** A job's long-form options (the window loop does its own inpainting: no init audio, one item). */
export function toLongformOptions(p: JobParams, files: JobFiles, output: string, signal?: AbortSignal): LongformOptions {
  const { secondsTotal, initAudio: _i, initNoiseLevel: _n, inpaint: _p, batchSize: _b, fullLength: _f, onProgress: _o, audio, ...rest } = toGenerateOptions(p, files, signal);
  return {
    ...rest,
    audio: typeof audio === 'string' ? audio : undefined,
    secondsTotal: p.fullVideo ? undefined : secondsTotal,
    fullVideo: p.fullVideo,
    windowOverlap: p.windowOverlap,
    output,
  };
}

/** What can be checked of a long-form request before it is queued (generateLongform checks the rest). */
export function checkLongformRequest(limits: ModelLimits, p: JobParams, files: JobFiles): void {
  const bad = (m: string): never => {
    throw new GenerateError(m);
  };
  if (p.fullVideo && !files.video) bad('"fullVideo" needs a video upload');
  if (files.initAudio || p.inpaintStart !== undefined) bad('long-form generation does its own inpainting: no init audio or inpainting with it');
  if (p.batchSize !== 1) bad('long-form generation makes one output: use a batch size of 1');
  const tooLong = overlapProblem(limits, p.windowOverlap);
  if (tooLong) bad(tooLong);
  if (limits.objective === 'rectified_flow') bad(`model "${limits.name}": long-form generation needs inpainting, which its rectified-flow sampler does not support`);
  resolveParams(limits, { ...toGenerateOptions(p, files), secondsTotal: limits.maxSeconds, initAudio: undefined, inpaint: undefined, initNoiseLevel: undefined });
}

/** Replaces the private upload paths in `text` by "(uploaded <field>)". */
export function hideUploadPathsIn(text: string, files: JobFiles): string {
  let out = text;
  for (const [field, file] of Object.entries(files)) if (file) out = out.split(file).join(`(uploaded ${field})`);
  return out;
}

/** The pipeline's resolved parameters with the private upload paths replaced by "(uploaded <field>)". */
function hideUploadPaths(params: Record<string, unknown>, files: JobFiles): Record<string, unknown> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? hideUploadPathsIn(v, files) : v]));
}

/**
 * Decodes the first batch item of `latents` [B, C, T] to audio channels, trimmed to `seconds`. Only the latent
 * frames covering `seconds` (plus a small margin for the decoder's receptive field) are decoded.
 */
export async function decodePreview(model: AudioXModel, latents: tf.Tensor, seconds: number): Promise<Float32Array[]> {
  const pre = model.wrapper.pretransform;
  const n = Math.round(seconds * model.sampleRate);
  const T = Math.min(latents.shape[2]!, Math.ceil(n / pre.downsamplingRatio) + 4);
  const audio = tf.tidy(() => pre.decode(latents.slice([0, 0, 0], [1, -1, T]) as tf.Tensor3D));
  try {
    const [, C, N] = audio.shape;
    // Read asynchronously: on a GPU backend a synchronous read stalls the worker's event loop (and with it
    // the cancel check) until the device drains.
    const data = (await audio.data()) as Float32Array;
    return Array.from({ length: C }, (_, c) => data.slice(c * N, c * N + Math.min(n, N)));
  } finally {
    audio.dispose();
  }
}

/** The one loaded model, by the name (or directory) it was requested as. */
export class ModelSlot {
  private model: AudioXModel | null = null;
  private key = '';

  constructor(private readonly load: (name: string) => Promise<AudioXModel> = (name) => loadModel(name)) {}

  get current(): AudioXModel | null {
    return this.model;
  }

  async use(name: string): Promise<AudioXModel> {
    if (this.model && this.key === name) return this.model;
    this.dispose();
    this.model = await this.load(name);
    this.key = name;
    return this.model;
  }

  dispose(): void {
    this.model?.dispose();
    this.model = null;
    this.key = '';
  }
}

export interface JobSpec {
  model: string;
  params: JobParams;
  files: JobFiles;
  outputDir: string;
}

export interface JobHooks {
  progress(p: { stage?: string; step?: number; steps?: number | null; fraction?: number }): void;
  /** A PNG of the current denoised estimate. */
  preview(png: Uint8Array): void;
  /** Reserves output names for these suffixes (see outputSuffixes); default: in this thread. */
  reserve?(suffixes: string[]): Promise<string[]>;
}

/** Runs one job to its result; throws the abort reason when `signal` aborts (nothing is left written then). */
export async function executeJob(slot: ModelSlot, job: JobSpec, signal: AbortSignal, hooks: JobHooks): Promise<JobResult> {
  try {
    return await stages(slot, job, signal, hooks);
  } catch (e) {
    signal.throwIfAborted();
    // Messages of the pipeline and of ffmpeg may quote the private upload paths.
    if (e instanceof Error) e.message = hideUploadPathsIn(e.message, job.files);
    throw e;
  }
}

async function stages(slot: ModelSlot, job: JobSpec, signal: AbortSignal, hooks: JobHooks): Promise<JobResult> {
  signal.throwIfAborted();
  hooks.progress({ stage: 'loading model' });
  const model = await slot.use(job.model);
  signal.throwIfAborted();
  if (isLongform({ name: model.name, maxSeconds: model.maxSeconds }, job.params)) return longformStages(model, job, signal, hooks);
  hooks.progress({ stage: 'conditioning', step: 0, steps: job.params.steps });
  const every = job.params.previewEvery;
  const preview = async (p: Progress): Promise<void> => {
    const audio = await decodePreview(model, p.denoised, job.params.secondsTotal);
    hooks.preview(encodePng(renderSpectrogram(audio, model.sampleRate, { width: 600, height: 160 })));
  };
  const res = await generate(model, {
    ...toGenerateOptions(job.params, job.files, signal),
    onProgress: (p) => {
      const done = p.step + 1;
      const last = p.steps === null ? p.fraction >= 1 : done === p.steps;
      hooks.progress({ stage: last ? 'decoding' : 'sampling', step: done, steps: p.steps, fraction: p.fraction });
      if (every > 0 && done % every === 0 && !last) return preview(p);
    },
  });
  signal.throwIfAborted();
  hooks.progress({ stage: 'writing' });
  const names = hooks.reserve ? await hooks.reserve(outputSuffixes(res.audio.length, job.files.video !== undefined)) : undefined;
  const items = await saveResult(job.outputDir, res.audio, res.sampleRate, {
    video: job.files.video,
    secondsStart: job.params.secondsStart,
    signal,
    names,
  });
  return { items, seed: res.seed, sampleRate: res.sampleRate, params: hideUploadPaths(res.params, job.files), timings: res.timings };
}

/** A long-form job: window by window into the reserved WAV, then its pictures and the video re-muxed whole. */
async function longformStages(model: AudioXModel, job: JobSpec, signal: AbortSignal, hooks: JobHooks): Promise<JobResult> {
  const video = job.files.video !== undefined;
  const suffixes = outputSuffixes(1, video);
  const names = hooks.reserve ? await hooks.reserve(suffixes) : reserveOutputs(job.outputDir, suffixes);
  const [wav, spectrogram, waveform, mp4] = names;
  const at = (n: string): string => path.join(job.outputDir, n);
  try {
    const res = await generateLongform(model, {
      ...toLongformOptions(job.params, job.files, at(wav), signal),
      onProgress: (p) => {
        const done = p.step + 1;
        const last = p.window === p.windows - 1 && p.steps !== null && done === p.steps;
        hooks.progress({ stage: `${last ? 'decoding' : 'sampling'} window ${p.window + 1}/${p.windows}`, step: done, steps: p.steps, fraction: p.runFraction });
      },
    });
    signal.throwIfAborted();
    hooks.progress({ stage: 'writing' });
    const channels = readWav(at(wav)).data;
    await writePictures(at(spectrogram), at(waveform), channels, model.sampleRate, () => signal.throwIfAborted());
    const item: JobResult['items'][number] = { audio: wav, spectrogram, waveform };
    if (video && mp4) {
      await muxVideoWithAudio({ video: job.files.video!, audioWav: at(wav), out: at(mp4), start: job.params.secondsStart, duration: res.seconds, signal });
      signal.throwIfAborted();
      item.video = mp4;
    }
    const params = { ...job.params, seconds: res.seconds, windows: res.plan.windows.length, seeds: res.seeds };
    return { items: [item], seed: res.seed, sampleRate: res.sampleRate, params: hideUploadPaths(params, job.files), timings: { totalMs: res.timings.totalMs } };
  } catch (e) {
    removeOutputs(job.outputDir, names);
    throw e;
  }
}

