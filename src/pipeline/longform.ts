// Long-form audio by windowed continuation (issue #19): windows of the model's length that overlap; window k
// is conditioned on its own span of the media and holds its first latent frames to window k−1's through the
// inpainting mask (the reference's mechanism), then the seam is cross-faded. Audio goes to a progressive WAV
// writer as it becomes final, so memory stays at about one window. The seams are the model's continuation,
// not trained long-form generation.
import * as tf from '@tensorflow/tfjs';
import { probeMedia } from '../io/ffmpeg.ts';
import { ProgressiveWavWriter } from '../io/wav-stream.ts';
import type { WavBitDepth } from '../io/wav.ts';
import type { AudioXModel } from '../models/load.ts';
import { GenerateError, configLimits, generate, resolveParams, type ModelLimits } from './generate.ts';
import { PARAMS, numberProblem } from './params-schema.ts';
import type { GenerateOptions, Progress } from './types.ts';
import { minSeconds, type AudioXConfig } from '../models/config.ts';

/** Default length of the cross-fade at each seam, seconds (at most the overlap). */
export const DEFAULT_CROSSFADE_SECONDS = 0.25;

export interface WindowPlanInput {
  /** Length of the whole output, samples. */
  totalSamples: number;
  /** Latent frames of one window (the model's sample_size / downsampling ratio, rounded down). */
  windowFrames: number;
  /** Samples per latent frame (the VAE's downsampling ratio). */
  ratio: number;
  /** Latent frames that window k shares with window k−1 (held to k−1's). */
  overlapFrames: number;
  /** Cross-fade at each seam, samples (at most the overlap). */
  crossfadeSamples: number;
}

export interface PlannedWindow {
  index: number;
  /** Where the window starts in the output, latent frames and samples (startFrame · ratio). */
  startFrame: number;
  startSample: number;
  /** Leading latent frames held to the previous window's (0 for the first). */
  heldFrames: number;
  /** The cross-fade with the previous window, absolute samples [fadeStart, fadeStart + fadeLength); null for the first. */
  fadeStart: number | null;
  /** Output that is final once this window is done: samples [writeFrom, writeTo). */
  writeFrom: number;
  writeTo: number;
}

/** The windows of a long-form run and the numbers they were planned with (see {@link planWindows}). */
export interface WindowPlan {
  /** The windows in order. */
  windows: PlannedWindow[];
  /** Samples per channel of the whole output. */
  totalSamples: number;
  /** Decoded samples of one window (windowFrames · ratio). */
  windowSamples: number;
  /** Latent frames from one window's start to the next's (window − overlap). */
  strideFrames: number;
  /** Latent frames each window shares with the previous one (held to it). */
  overlapFrames: number;
  /** Samples of each seam's linear cross-fade. */
  crossfadeSamples: number;
}

/**
 * The windows of a long-form run (pure). Window k starts at k·(windowFrames − overlapFrames) frames; the seam
 * between k−1 and k is cross-faded around the middle of their overlap; the last window reaches the end.
 */
export function planWindows(i: WindowPlanInput): WindowPlan {
  const { totalSamples, windowFrames: T, ratio, overlapFrames: O, crossfadeSamples: F } = i;
  const bad = (m: string): never => {
    throw new GenerateError(`long-form plan: ${m}`);
  };
  if (!Number.isInteger(totalSamples) || totalSamples <= 0) bad(`the length must be a positive number of samples, got ${totalSamples}`);
  if (!Number.isInteger(T) || T < 2 || !Number.isInteger(ratio) || ratio < 1) bad(`bad window (${T} frames of ${ratio} samples)`);
  if (!Number.isInteger(O) || O < 1 || O > T / 2) {
    bad(`the overlap must be 1 … ${Math.floor(T / 2)} latent frames (at most half a window), got ${O}`);
  }
  if (!Number.isInteger(F) || F < 0 || F > O * ratio) bad(`the cross-fade must be 0 … ${O * ratio} samples (the overlap), got ${F}`);
  const W = T * ratio;
  const stride = T - O;
  const n = totalSamples <= W ? 1 : 1 + Math.ceil((totalSamples - W) / (stride * ratio));
  const fadeStartOf = (k: number) => k * stride * ratio + Math.floor((O * ratio) / 2) - Math.floor(F / 2);
  const windows: PlannedWindow[] = [];
  for (let k = 0; k < n; k++) {
    const startFrame = k * stride;
    const fadeStart = k === 0 ? null : fadeStartOf(k);
    windows.push({
      index: k,
      startFrame,
      startSample: startFrame * ratio,
      heldFrames: k === 0 ? 0 : O,
      fadeStart,
      writeFrom: fadeStart ?? 0,
      writeTo: k === n - 1 ? totalSamples : fadeStartOf(k + 1),
    });
  }
  return { windows, totalSamples, windowSamples: W, strideFrames: stride, overlapFrames: O, crossfadeSamples: F };
}

/** Window k's seed: the run's seed for the first, a 32-bit mix of (seed, k) for the others. */
export function windowSeed(seed: number, k: number): number {
  if (k === 0) return seed >>> 0;
  let h = (seed ^ Math.imul(k, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** What `generateLongform`'s `onProgress` receives after each sampling step of each window. */
export interface LongformProgress extends Omit<Progress, 'denoised'> {
  /** 0-based index of the window being generated. */
  window: number;
  /** Number of windows in the run. */
  windows: number;
  /** Fraction of the whole run, 0 … 1. */
  runFraction: number;
  /** Estimated time left for the whole run (null before the first step). */
  etaMs: number | null;
}

/** Window k as generated, before the cross-fade (for tools and tests; valid only during the callback). */
export interface WindowResult {
  window: PlannedWindow;
  windows: number;
  seed: number;
  /** Where its media were read from (seconds in the media). */
  secondsStart: number;
  /** Decoded audio [channel][windowSamples], not normalised. */
  audio: Float32Array[];
  /** Its latents [1, C, T]. */
  latents: tf.Tensor;
  ms: number;
}

/** The options of one generation that apply to every window, and the long-form ones. */
export interface LongformOptions
  extends Omit<GenerateOptions, 'secondsTotal' | 'initAudio' | 'initLatents' | 'holdKept' | 'inpaint' | 'initNoiseLevel' | 'batchSize' | 'onProgress' | 'returnLatents' | 'noise' | 'fullLength' | 'audio'> {
  /** The WAV to write (replaced atomically when the run completes). */
  output: string;
  /** Length of the whole output, seconds (or `fullVideo`). */
  secondsTotal?: number;
  /** The rest of the video from secondsStart. */
  fullVideo?: boolean;
  /** Seconds window k shares with window k−1 (default: the schema's). */
  windowOverlap?: number;
  /** Length of each seam's linear cross-fade, seconds (within the overlap). */
  crossfadeSeconds?: number;
  /** Audio prompt of the first window (a path or stereo samples); later windows get the previous window's audio. */
  audio?: string | Float32Array[];
  /** Sample format of the WAV written. */
  bitDepth?: WavBitDepth;
  /** Called after each sampling step of each window. */
  onProgress?: (p: LongformProgress) => void;
  /** Called with each window's result before its seam is cross-faded (tools, tests). */
  onWindow?: (w: WindowResult) => void;
}

/** What a long-form run wrote. */
export interface LongformResult {
  /** The WAV written. */
  output: string;
  /** Its sample rate, Hz. */
  sampleRate: number;
  /** Samples per channel written. */
  samples: number;
  /** Its length, seconds. */
  seconds: number;
  /** The run's seed (window 0's). */
  seed: number;
  /** Each window's seed, in order. */
  seeds: number[];
  /** The windows it was made of. */
  plan: WindowPlan;
  /** Peak |x| before normalisation. */
  peak: number;
  /** Milliseconds of the whole run and of each window. */
  timings: { totalMs: number; windowMs: number[] };
}

export interface ResolvedLongform {
  secondsTotal: number;
  windowOverlap: number;
  crossfadeSeconds: number;
  seed: number;
}

/** The longest overlap: half a window, in whole latent frames (seconds). */
export function maxWindowOverlap(model: ModelLimits): number {
  const frame = model.minSeconds ?? 2048 / 44100;
  return Math.floor(Math.floor(model.maxSeconds / frame + 1e-9) / 2) * frame;
}

/** Why this overlap does not fit the model's window (null when it does). */
export function overlapProblem(model: ModelLimits, overlap: number): string | null {
  const frame = model.minSeconds ?? 2048 / 44100;
  const max = maxWindowOverlap(model);
  return Math.round(overlap / frame) * frame > max + 1e-9
    ? `window overlap must be at most half the model's window (${max.toFixed(2)} s), got ${overlap}`
    : null;
}

/** Does this request need windows? (more seconds than the model's window, or the whole video). */
export function isLongform(model: ModelLimits, o: { secondsTotal?: number; fullVideo?: boolean }): boolean {
  return o.fullVideo === true || (o.secondsTotal !== undefined && o.secondsTotal > model.maxSeconds + 1e-9);
}

function schemaCheck(name: 'windowOverlap' | 'secondsTotal', v: number): void {
  const spec = PARAMS[name];
  const problem = numberProblem(spec, v);
  if (problem) throw new GenerateError(`${spec.label} ${problem}`);
}

/**
 * Validates a long-form request without weights (throws GenerateError); reads the video's duration for
 * `fullVideo`. The per-window parameters are checked as generate() will see them.
 */
export async function resolveLongform(model: ModelLimits, config: AudioXConfig, o: Omit<LongformOptions, 'output'>, signal?: AbortSignal): Promise<ResolvedLongform> {
  if (model.objective === 'rectified_flow') {
    throw new GenerateError(`model "${model.name}": long-form generation continues windows by inpainting, which its rectified-flow sampler does not support`);
  }
  const unsupported = o as GenerateOptions;
  if (unsupported.initAudio !== undefined || unsupported.inpaint !== undefined) {
    throw new GenerateError('long-form generation uses inpainting itself: init audio and inpainting options apply to one window only (use at most the model length)');
  }
  if (unsupported.batchSize !== undefined && unsupported.batchSize !== 1) throw new GenerateError('long-form generation makes one output: use a batch size of 1');
  let total = o.secondsTotal;
  if (o.fullVideo) {
    if (!o.video) throw new GenerateError('full video needs a video');
    if (o.secondsTotal !== undefined) throw new GenerateError('give either seconds or full video, not both');
    const d = (await probeMedia(o.video, { signal })).duration;
    if (d === null) throw new GenerateError(`cannot tell how long "${o.video}" is (ffmpeg reports no duration): give --seconds instead`);
    total = d - (o.secondsStart ?? 0);
    if (!(total > 0)) throw new GenerateError(`seconds start (${o.secondsStart}) is at or past the end of the video (${d.toFixed(2)} s)`);
    total = Math.min(total, PARAMS.secondsTotal.max);
  }
  if (total === undefined) throw new GenerateError('long-form generation needs seconds (or full video)');
  schemaCheck('secondsTotal', total);
  const overlap = o.windowOverlap ?? PARAMS.windowOverlap.default;
  schemaCheck('windowOverlap', overlap);
  const tooLong = overlapProblem({ ...model, minSeconds: minSeconds(config) }, overlap);
  if (tooLong) throw new GenerateError(tooLong);
  const frame = minSeconds(config);
  const crossfade = Math.min(o.crossfadeSeconds ?? DEFAULT_CROSSFADE_SECONDS, overlap);
  if (!(crossfade >= 0)) throw new GenerateError(`the cross-fade must be ≥ 0 seconds, got ${o.crossfadeSeconds}`);
  if (overlap < frame) throw new GenerateError(`window overlap must be at least one latent frame (${frame.toFixed(4)} s)`);
  // Everything else as the windows' generate() calls will check it.
  const { onProgress: _p, onWindow: _w, ...one } = o;
  const p = resolveParams(model, { ...one, audio: undefined, secondsTotal: model.maxSeconds, batchSize: 1 });
  return { secondsTotal: total, windowOverlap: overlap, crossfadeSeconds: crossfade, seed: p.seed };
}

function abortError(): Error {
  return Object.assign(new Error('generation cancelled'), { name: 'AbortError' });
}

/**
 * Generates `secondsTotal` seconds (more than the model's window) window by window into `output`.
 * Every tensor is disposed before it returns; on an error or cancellation nothing is left at `output`.
 */
export async function generateLongform(model: AudioXModel, o: LongformOptions): Promise<LongformResult> {
  const t0 = performance.now();
  const limits = configLimits(model.name, model.config);
  const r = await resolveLongform(limits, model.config, o, o.signal);
  const w = model.wrapper;
  const ratio = w.pretransform.downsamplingRatio;
  const sr = model.sampleRate;
  const T = w.latentLength(model.sampleSize);
  const plan = planWindows({
    totalSamples: Math.round(r.secondsTotal * sr),
    windowFrames: T,
    ratio,
    overlapFrames: Math.max(1, Math.round((r.windowOverlap * sr) / ratio)),
    crossfadeSamples: Math.round(r.crossfadeSeconds * sr),
  });
  const N = plan.windows.length;
  const writer = ProgressiveWavWriter.open(o.output, { sampleRate: sr, channels: 2, bitDepth: o.bitDepth });
  const seeds = plan.windows.map((_, k) => windowSeed(r.seed, k));
  const windowMs: number[] = [];
  const { output: _out, fullVideo: _fv, windowOverlap: _wo, crossfadeSeconds: _cf, bitDepth: _bd, onWindow, onProgress, ...shared } = o;
  let held: tf.Tensor | null = null;
  let tail: Float32Array[] | null = null;
  let prevAudio: Float32Array[] | null = null;
  try {
    for (const win of plan.windows) {
      if (o.signal?.aborted) throw abortError();
      const k = win.index;
      const tw = performance.now();
      const secondsStart = (o.secondsStart ?? 0) + win.startSample / sr;
      const continuation: Partial<GenerateOptions> = held
        ? // floor((O + ½) / T · T) = O: the first O frames are kept, the rest regenerated.
          { initLatents: held, holdKept: true, inpaint: { maskStart: (100 * (win.heldFrames + 0.5)) / T, maskEnd: 100 } }
        : {};
      const res = await generate(model, {
        ...shared,
        ...continuation,
        audio: k === 0 ? o.audio : o.audio !== undefined ? prevAudio! : undefined,
        seed: seeds[k],
        secondsStart,
        secondsTotal: limits.maxSeconds,
        fullLength: true,
        normalize: false,
        batchSize: 1,
        returnLatents: true,
        onProgress:
          onProgress &&
          ((p) => {
            const runFraction = Math.min(1, (k + p.fraction) / N);
            const elapsedMs = performance.now() - t0;
            const { denoised: _d, ...rest } = p;
            onProgress({ ...rest, elapsedMs, window: k, windows: N, runFraction, etaMs: runFraction > 0 ? (elapsedMs * (1 - runFraction)) / runFraction : null });
          }),
      });
      held?.dispose();
      held = null;
      const latents = res.latents!;
      const audio = res.audio[0];
      try {
        onWindow?.({ window: win, windows: N, seed: seeds[k], secondsStart, audio, latents, ms: performance.now() - tw });
        if (k < N - 1) held = holdTail(latents, plan.overlapFrames);
      } finally {
        latents.dispose();
      }
      const piece = assemble(win, audio, tail, plan.crossfadeSamples);
      writer.append(piece);
      const keepFrom = win.writeTo - win.startSample;
      tail = audio.map((c) => c.slice(keepFrom));
      prevAudio = o.audio !== undefined ? audio : null;
      windowMs.push(performance.now() - tw);
    }
    if (o.signal?.aborted) throw abortError();
    const done = await writer.finish({ normalize: o.normalize !== false });
    const totalMs = performance.now() - t0;
    return { output: o.output, sampleRate: sr, samples: done.frames, seconds: done.frames / sr, seed: r.seed, seeds, plan, peak: done.peak, timings: { totalMs, windowMs } };
  } catch (e) {
    writer.abort();
    throw e;
  } finally {
    held?.dispose();
  }
}

/** The last `n` latent frames of [1, C, T] at the start of a zero window [1, C, T] (the next window's init). */
function holdTail(latents: tf.Tensor, n: number): tf.Tensor {
  const tfm = latents as tf.Tensor3D;
  const [B, C, T] = tfm.shape;
  return tf.tidy(() => tfm.slice([0, 0, T - n], [B, C, n]).pad([
    [0, 0],
    [0, 0],
    [0, T - n],
  ]));
}

/** Window k's final output [writeFrom, writeTo): the cross-fade with the previous window's tail, then its own audio. */
export function assemble(win: PlannedWindow, audio: readonly Float32Array[], tail: readonly Float32Array[] | null, fade: number): Float32Array[] {
  const n = win.writeTo - win.writeFrom;
  return audio.map((x, c) => {
    const out = new Float32Array(n);
    const off = win.writeFrom - win.startSample;
    out.set(x.subarray(off, off + n));
    if (tail && win.fadeStart !== null) {
      // tail[c] starts at fadeStart (= writeFrom); linear gains: the two sides are the same audio up to the model's drift.
      for (let i = 0; i < fade; i++) {
        const g = (i + 0.5) / fade;
        out[i] = tail[c][i] * (1 - g) + out[i] * g;
      }
    }
    return out;
  });
}
