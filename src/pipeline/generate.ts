// generate(): the one path every generation runs through (CLI, web UI, parity): conditioning →
// (MAF) → the shared sampler → VAE decode → trim → peak normalisation (docs/REFERENCE.md §7.1, §7.9).
import * as tf from '@tensorflow/tfjs';
import { fitToWindow, readAudio } from '../io/audio.ts';
import { peakNormalize } from '../io/wav.ts';
import type { ConditionerOutputs } from '../models/conditioning.ts';
import { ConditionerInputError, type ConditionerMedia, type PrepareOptions } from '../models/conditioners/conditioner.ts';
import type { DiffusionCond } from '../models/diffusion-types.ts';
import type { AudioXModel } from '../models/load.ts';
import { InjectedNoise, SeededNoise, type NoiseSource } from '../nn/noise.ts';
import { DEFAULT_SAMPLERS, DIFFUSION_OBJECTIVES, samplerProblem, type DiffusionObjective, type SamplerName } from '../sampling/registry.ts';
import { sampleK, sampleKSigmas, sampleRf, sampleRfTimesteps, type SampleProgress } from '../sampling/sample.ts';
import { cutPaste, buildMask, resolveMaskArgs, type MaskArgs } from './inpaint.ts';
import { CONDITIONING_SECONDS, checkMediaInputs, stereoTensor } from './media.ts';
import { minSeconds, type AudioXConfig } from '../models/config.ts';
import { PARAMS, PARAM_DEFAULTS, numberProblem, stringProblem } from './params-schema.ts';
import type { GenerateOptions, GenerateResult } from './types.ts';

/** The single-valued defaults of the parameter schema (the original AudioX demo's, docs/REFERENCE.md §7.8). */
export const GENERATE_DEFAULTS = {
  steps: PARAM_DEFAULTS.steps,
  cfgScale: PARAM_DEFAULTS.cfgScale,
  cfgRescale: PARAM_DEFAULTS.cfgRescale,
  sigmaMin: PARAM_DEFAULTS.sigmaMin,
  sigmaMax: PARAM_DEFAULTS.sigmaMax,
  rho: PARAM_DEFAULTS.rho,
  secondsStart: PARAM_DEFAULTS.secondsStart,
  secondsTotal: PARAM_DEFAULTS.secondsTotal,
  batchSize: PARAM_DEFAULTS.batchSize,
  initNoiseLevel: PARAM_DEFAULTS.initNoiseLevel,
};

export { SAMPLER_NAMES } from '../sampling/registry.ts';

/** A generation option that is invalid for this model (out of range, wrong sampler, unusable media); the message names the option. */
export class GenerateError extends Error {}

function check(cond: boolean, msg: string): void {
  if (!cond) throw new GenerateError(msg);
}

/** The schema's range of a numeric parameter (message: "<label> must be …, got …"). */
function checkRange(name: 'secondsStart' | 'secondsTotal' | 'steps' | 'cfgScale' | 'cfgRescale' | 'sigmaMin' | 'sigmaMax' | 'rho' | 'seed' | 'initNoiseLevel' | 'batchSize', v: number): void {
  const spec = PARAMS[name];
  const problem = numberProblem(spec, v);
  if (problem) throw new GenerateError(`${spec.label} ${problem}`);
}

function checkLength(name: 'prompt' | 'negativePrompt', s: string | null): void {
  const problem = s === null ? null : stringProblem(PARAMS[name], s);
  if (problem) throw new GenerateError(`${PARAMS[name].label} ${problem}`);
}

export interface ResolvedParams {
  prompt: string;
  negativePrompt: string | null;
  video: string | null;
  image: string | null;
  audio: string | null;
  secondsStart: number;
  secondsTotal: number;
  steps: number;
  cfgScale: number;
  cfgRescale: number;
  sampler: SamplerName;
  sigmaMin: number;
  sigmaMax: number;
  rho: number;
  seed: number;
  initAudio: string | null;
  initNoiseLevel: number | null;
  /** The reference's inpainting arguments, in percent of the generation window. */
  inpaint: MaskArgs | null;
  fullLength: boolean;
  batchSize: number;
  referenceQuirks: boolean;
  model: string;
}

/** What parameter resolution needs to know about the model (an AudioXModel, or its config before loading). */
export interface ModelLimits {
  name: string;
  /** sample_size / sample_rate. */
  maxSeconds: number;
  /** One latent frame (downsampling_ratio / sample_rate); default 0. */
  minSeconds?: number;
  /** The config's diffusion_objective (default "v"): which samplers apply, and the default one. */
  objective?: DiffusionObjective;
}

/** A model's limits from its config.json (no weights needed). */
export function configLimits(name: string, config: AudioXConfig): ModelLimits {
  const objective = config.model.diffusion.diffusion_objective ?? 'v';
  check(DIFFUSION_OBJECTIVES.includes(objective), `model "${name}": diffusion_objective "${objective}" is not supported (use "v" or "rectified_flow")`);
  return { name, maxSeconds: config.sample_size / config.sample_rate, minSeconds: minSeconds(config), objective };
}

/**
 * Fills in defaults and validates every parameter (throws GenerateError); needs no weights.
 * `windowSeconds`: the generation window, when init audio lengthens it (inpainting positions given in
 * seconds are relative to it); unknown for an init audio file not yet read (then checked in generate()).
 */
export function resolveParams(model: ModelLimits, o: GenerateOptions, windowSeconds?: number): ResolvedParams {
  const d = GENERATE_DEFAULTS;
  const seed = o.seed === undefined || o.seed === -1 ? Math.floor(Math.random() * 0xffffffff) : o.seed;
  const p: ResolvedParams = {
    prompt: o.prompt ?? '',
    negativePrompt: o.negativePrompt ?? null,
    video: o.video ?? null,
    image: o.image ?? null,
    audio: typeof o.audio === 'string' ? o.audio : null,
    secondsStart: o.secondsStart ?? d.secondsStart,
    secondsTotal: o.secondsTotal ?? Math.min(d.secondsTotal, model.maxSeconds),
    steps: o.steps ?? d.steps,
    cfgScale: o.cfgScale ?? d.cfgScale,
    cfgRescale: o.cfgRescale ?? d.cfgRescale,
    sampler: o.sampler ?? DEFAULT_SAMPLERS[model.objective ?? 'v'],
    sigmaMin: o.sigmaMin ?? d.sigmaMin,
    sigmaMax: o.sigmaMax ?? d.sigmaMax,
    rho: o.rho ?? d.rho,
    seed,
    initAudio: typeof o.initAudio === 'string' ? o.initAudio : null,
    initNoiseLevel: o.initAudio && !o.inpaint ? (o.initNoiseLevel ?? d.initNoiseLevel) : null,
    inpaint: null,
    fullLength: o.fullLength ?? false,
    batchSize: o.batchSize ?? d.batchSize,
    referenceQuirks: o.referenceQuirks ?? false,
    model: model.name,
  };
  checkLength('prompt', p.prompt);
  checkLength('negativePrompt', p.negativePrompt);
  checkRange('steps', p.steps);
  checkRange('cfgScale', p.cfgScale);
  checkRange('cfgRescale', p.cfgRescale);
  const samplerError = samplerProblem(p.sampler, model.objective ?? 'v', `model "${model.name}"`);
  check(samplerError === null, samplerError!);
  checkRange('sigmaMin', p.sigmaMin);
  checkRange('sigmaMax', p.sigmaMax);
  check(p.sigmaMax > p.sigmaMin, `need 0 < sigma-min < sigma-max, got ${p.sigmaMin} and ${p.sigmaMax}`);
  checkRange('rho', p.rho);
  checkRange('secondsTotal', p.secondsTotal);
  check(
    p.secondsTotal <= model.maxSeconds + 1e-9,
    `seconds must be in (0, ${model.maxSeconds.toFixed(2)}] for this model (sample_size / sample_rate), got ${p.secondsTotal}`,
  );
  const minSeconds = model.minSeconds ?? 0;
  check(
    p.secondsTotal >= minSeconds - 1e-12,
    `seconds must be at least one latent frame (${minSeconds.toFixed(4)} s for this model), got ${p.secondsTotal}`,
  );
  checkRange('secondsStart', p.secondsStart);
  checkRange('batchSize', p.batchSize);
  checkRange('seed', o.seed ?? -1);
  if (p.initNoiseLevel !== null) checkRange('initNoiseLevel', p.initNoiseLevel);
  check(!(o.video && o.image), 'give either a video or an image, not both');
  check(!o.inpaint || o.initAudio !== undefined || o.initLatents !== undefined, 'inpainting needs init audio (the audio to regenerate part of)');
  check(o.initLatents === undefined || o.initAudio === undefined, 'give init audio or init latents, not both');
  check(o.initLatents === undefined || o.inpaint !== undefined, 'init latents are for inpainting: give the inpaint range too');
  check(o.initNoiseLevel === undefined || o.initAudio !== undefined, 'an init noise level needs init audio to vary');
  check(
    o.initNoiseLevel === undefined || !o.inpaint,
    'an init noise level applies to variations only: inpainting starts from sigma-max, like the reference',
  );
  if (o.inpaint) {
    // Init audio longer than the window lengthens it: positions in seconds are checked against the
    // real window in generate(), once the audio has been read (here only percentages are).
    const inSeconds = Object.values(o.inpaint).some((v) => typeof v === 'string' && !v.trim().endsWith('%'));
    if (windowSeconds !== undefined || !inSeconds) {
      const win = windowSeconds ?? model.maxSeconds;
      try {
        p.inpaint = resolveMaskArgs(o.inpaint, win);
      } catch (e) {
        throw new GenerateError((e as Error).message);
      }
    }
  }
  return p;
}

function repeatBatch(t: tf.Tensor, b: number): tf.Tensor {
  if (b === 1) return t;
  const r = tf.concat(Array.from({ length: b }, () => t), 0);
  t.dispose();
  return r;
}

/** What the model's conditioners are offered; each builds its input from what it reads. */
function conditionerMedia(p: ResolvedParams, o: GenerateOptions): ConditionerMedia {
  return {
    prompt: p.prompt,
    video: o.video,
    image: o.image,
    audio: o.audio,
    secondsStart: p.secondsStart,
    secondsTotal: p.secondsTotal,
    byId: { ...o.conditionerInputs, ...o.numberConditioning },
  };
}

/** The conditioners' inputs (skipping `skip`); a bad input given by the caller is a GenerateError. Caller disposes. */
async function prepareInputs(
  model: AudioXModel,
  media: ConditionerMedia,
  opts: Omit<PrepareOptions, 'id'>,
  skip: ReadonlySet<string>,
): Promise<Record<string, unknown>> {
  try {
    return await model.wrapper.conditioner.prepareInputs(media, opts, skip);
  } catch (e) {
    if (e instanceof ConditionerInputError) throw new GenerateError(e.message);
    throw e;
  }
}

/** Init audio as stereo samples at the model rate (a file is read and resampled). */
async function initAudioSamples(model: AudioXModel, src: string | Float32Array[], signal?: AbortSignal): Promise<Float32Array[]> {
  const channels = typeof src === 'string' ? (await readAudio(src, { sampleRate: model.sampleRate, channels: 2, signal })).data : src;
  check(channels.length >= 1 && channels.length <= 2, `init audio must have 1 or 2 channels, got ${channels.length}`);
  check(channels[0].length > 0, 'init audio is empty');
  return channels.length === 1 ? [channels[0], channels[0]] : channels;
}

/**
 * The generation length in samples: the model's window, or — for init audio longer than it — the init
 * audio's length rounded up to whole latent frames (the reference's front-end, min_input_length).
 */
export function generationSamples(sampleSize: number, downsamplingRatio: number, initLength?: number): number {
  if (initLength === undefined || initLength <= sampleSize) return sampleSize;
  return Math.ceil(initLength / downsamplingRatio) * downsamplingRatio;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) {
    const e = new Error('generation cancelled');
    e.name = 'AbortError';
    throw e;
  }
}

/**
 * Generates audio. Every tensor it makes is disposed before it returns (except `latents` when asked),
 * also on errors and cancellation.
 */
export async function generate(model: AudioXModel, o: GenerateOptions = {}): Promise<GenerateResult> {
  const t0 = performance.now();
  let p = resolveParams(configLimits(model.name, model.config), o);
  // Bad media fail here, before any tensor is made.
  await checkMediaInputs({ video: o.video, image: o.image, audio: o.audio, initAudio: o.initAudio }, { seekTime: p.secondsStart, signal: o.signal });
  throwIfAborted(o.signal);
  const w = model.wrapper;
  const ratio = w.pretransform.downsamplingRatio;
  const init = o.initAudio ? await initAudioSamples(model, o.initAudio, o.signal) : null;
  const genSamples = generationSamples(model.sampleSize, ratio, init?.[0].length);
  if (o.inpaint) p = resolveParams(configLimits(model.name, model.config), o, genSamples / model.sampleRate);
  throwIfAborted(o.signal);
  const noise: NoiseSource = o.noise ? new InjectedNoise(o.noise, new SeededNoise(p.seed)) : new SeededNoise(p.seed);
  const media = conditionerMedia(p, o);
  const prep: Omit<PrepareOptions, 'id'> = { batchSize: p.batchSize, host: model, seekTime: p.secondsStart, referenceQuirks: p.referenceQuirks, signal: o.signal };
  const owned: tf.Tensor[] = [];
  let cond: ConditionerOutputs = {};
  let negCond: ConditionerOutputs = {};
  try {
    // 1. Conditioning (the reference draws the initial noise first, then conditions).
    const T = w.latentLength(genSamples);
    const x0 = noise.randn('initial', [p.batchSize, w.ioChannels, T]);
    owned.push(x0);
    const pre = o.conditioningTensors ?? {};
    const known = new Set([...w.conditioner.ids, ...w.crossAttnCondIds, ...w.globalCondIds]);
    for (const id of Object.keys(pre)) check(known.has(id), `conditioningTensors: the model uses no conditioning id "${id}"`);
    const inputs = await prepareInputs(model, media, prep, new Set(Object.keys(pre)));
    throwIfAborted(o.signal);
    try {
      cond = w.condition(inputs, { noise }, pre);
      // Ids the model has no conditioner for (their tensors must be given precomputed).
      for (const [id, c] of Object.entries(pre)) {
        if (!cond[id]) cond[id] = { embedding: c.embedding.clone(), mask: c.mask.clone() };
      }
    } finally {
      w.conditioner.disposeInputs(inputs);
    }
    const ci = w.conditioningInputs(cond);
    for (const t of Object.values(ci)) if (t) owned.push(t);
    const dc: DiffusionCond = { ...ci, cfgScale: p.cfgScale, scalePhi: p.cfgRescale, batchCfg: true, rescaleCfg: true };
    if (p.negativePrompt !== null) {
      // Only the conditioners that read the prompt run again; the others' outputs are reused (no second VAE draw).
      const promptIds = new Set(w.conditioner.ids.filter((id) => w.conditioner.get(id).reads.includes('prompt')));
      const reuse = Object.fromEntries(Object.entries(cond).filter(([id]) => !promptIds.has(id)));
      const others = new Set(w.conditioner.ids.filter((id) => !promptIds.has(id)));
      const negInputs = await prepareInputs(model, { ...media, prompt: p.negativePrompt }, prep, others);
      try {
        negCond = w.condition(negInputs, { noise }, reuse);
      } finally {
        w.conditioner.disposeInputs(negInputs);
      }
      const neg = w.conditioningInputs(negCond);
      for (const t of Object.values(neg)) if (t) owned.push(t);
      dc.negativeCrossAttnCond = neg.crossAttnCond;
      // The mask is applied by the model; pass it only when it lines up with the tokens (quirk 20:
      // the audio-autoencoder conditioner's mask has the wrong axis, which crashes the reference).
      if (neg.crossAttnMask && neg.crossAttnCond && neg.crossAttnMask.shape[1] === neg.crossAttnCond.shape[1]) {
        dc.negativeCrossAttnMask = neg.crossAttnMask;
      }
      dc.negativeGlobalCond = neg.globalCond;
    }
    const tCond = performance.now();

    // 2. Init audio (variation, inpainting): cropped / zero-padded at the end to the window, encoded
    // once and repeated over the batch (one VAE draw, as the reference).
    let initData: tf.Tensor | undefined;
    let mask: tf.Tensor | undefined;
    if (init || o.initLatents) {
      let z: tf.Tensor;
      if (init) {
        const audio = stereoTensor(fitToWindow(init, genSamples));
        try {
          z = w.pretransform.encode(audio as tf.Tensor3D, { noise });
        } finally {
          audio.dispose();
        }
      } else {
        const s = o.initLatents!.shape;
        check(
          s.length === 3 && s[0] === 1 && s[1] === w.ioChannels && s[2] === T,
          `init latents must have the shape [1, ${w.ioChannels}, ${T}] (one window of this model), got [${s.join(', ')}]`,
        );
        z = o.initLatents!.clone();
      }
      if (p.inpaint) {
        const moved = cutPaste(z, p.inpaint);
        z.dispose();
        z = moved;
        mask = tf.tensor1d(buildMask(T, p.inpaint));
        owned.push(mask);
      }
      initData = repeatBatch(z, p.batchSize);
      owned.push(initData);
    }

    // 3. Sampling with the one shared sampler module.
    const onProgress = o.onProgress
      ? (s: SampleProgress) =>
          o.onProgress!({ ...s, elapsedMs: performance.now() - t0 })
      : undefined;
    let latents: tf.Tensor;
    let sigmas: number[];
    if (w.diffusionObjective === 'rectified_flow') {
      const rf = { model: w.model, noise: x0, initData, steps: p.steps, sigmaMax: p.sigmaMax, initNoiseLevel: p.initNoiseLevel ?? undefined, cond: dc, onProgress, signal: o.signal };
      sigmas = sampleRfTimesteps(rf);
      latents = await sampleRf(rf);
    } else {
      const k = {
        model: w.model,
        noise: x0,
        initData,
        mask,
        steps: p.steps,
        samplerType: p.sampler,
        sigmaMin: p.sigmaMin,
        sigmaMax: p.sigmaMax,
        rho: p.rho,
        initNoiseLevel: p.initNoiseLevel ?? undefined,
        cond: dc,
        noiseSource: noise,
        onProgress,
        signal: o.signal,
      };
      sigmas = sampleKSigmas(k);
      latents = await sampleK(k);
      if (o.holdKept && mask && initData) {
        const held = holdKeptFrames(latents, initData, mask);
        latents.dispose();
        latents = held;
      }
    }
    const tSample = performance.now();

    // 4. Decode, trim to the requested length, normalise.
    // The decoder gives ⌊sample_size / 2048⌋·2048 samples, slightly less than sample_size (quirk 26), so a
    // request near sample_size / sample_rate seconds gets everything there is (up to 2047 samples short).
    const L = latents.shape[2]!;
    const wanted = genSamples > model.sampleSize ? init![0].length : Math.round(p.secondsTotal * model.sampleRate);
    const n = p.fullLength ? L * ratio : Math.min(L * ratio, wanted);
    let audioT: tf.Tensor;
    try {
      throwIfAborted(o.signal);
      audioT = w.pretransform.decodeHead(latents as tf.Tensor3D, n);
    } catch (e) {
      latents.dispose();
      throw e;
    }
    if (o.signal?.aborted) {
      audioT.dispose();
      latents.dispose();
      throwIfAborted(o.signal);
    }
    const keepLatents = o.returnLatents ? latents : null;
    if (!keepLatents) latents.dispose();
    const [B, C, N] = audioT.shape;
    const data = (await audioT.data()) as Float32Array;
    audioT.dispose();
    let audio: Float32Array[][] = Array.from({ length: B }, (_, b) =>
      Array.from({ length: C }, (_, c) => data.slice((b * C + c) * N, (b * C + c) * N + n)),
    );
    if (o.normalize !== false) audio = peakNormalizeBatch(audio);
    const tEnd = performance.now();
    return {
      audio,
      sampleRate: model.sampleRate,
      seed: p.seed,
      latents: keepLatents ?? undefined,
      sigmas,
      params: { ...p, conditioningSeconds: CONDITIONING_SECONDS },
      timings: { conditioningMs: tCond - t0, samplingMs: tSample - tCond, decodeMs: tEnd - tSample, totalMs: tEnd - t0 },
    };
  } finally {
    w.disposeCond(cond);
    w.disposeCond(negCond);
    tf.dispose(owned);
  }
}

/** Where the mask keeps the init latents (mask 0), their exact values; elsewhere the sampled ones. */
function holdKeptFrames(latents: tf.Tensor, initData: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const keep = tf.equal(mask, 0).cast('float32');
    return latents.mul(tf.sub(1, keep)).add(initData.mul(keep));
  });
}

/** The reference's peak normalisation over the whole batch: one global max |x| over items and channels. */
export function peakNormalizeBatch(audio: Float32Array[][]): Float32Array[][] {
  const perItem = audio[0]?.length ?? 0;
  const flat = peakNormalize(audio.flat());
  return audio.map((_, b) => flat.slice(b * perItem, (b + 1) * perItem));
}
