// `audiox generate`: every input is validated before the model is loaded, outputs are written atomically,
// and a failure or Ctrl-C leaves no output behind.
import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import fs from 'node:fs';
import path from 'node:path';
import { createRuntime } from '../../backend/runtime.ts';
import { checkOutputFile } from '../../io/ffmpeg.ts';
import { probeMedia } from '../../io/ffmpeg.ts';
import { muxVideoWithAudio } from '../../io/mux.ts';
import { writeWav } from '../../io/wav.ts';
import type { AudioXConfig } from '../../models/config.ts';
import type { AudioXModel } from '../../models/load.ts';
import { loadModel } from '../../pipeline/load.ts';
import { addModelOptions, modelFromCli, type ModelCliOptions } from '../custom-model.ts';
import { inspectModel } from '../../models/source.ts';
import { configLimits, generate, resolveParams, type ModelLimits } from '../../pipeline/generate.ts';
import { generateLongform, isLongform, resolveLongform, type LongformOptions, type LongformProgress } from '../../pipeline/longform.ts';
import { checkMediaInputs } from '../../pipeline/media.ts';
import type { GenerateOptions, InpaintOptions, Progress, SamplerName, WindowPosition } from '../../pipeline/types.ts';
import { PARAMS, type ParamName } from '../../pipeline/params-schema.ts';
import { addParamOption, type ParamOptionOverrides } from '../param-options.ts';

export { int, num } from '../param-options.ts';

/** The --inpaint-* flags as commander parses them (positions stay strings: seconds or "x%"). */
export interface InpaintCliOptions {
  inpaintStart?: string;
  inpaintEnd?: string;
  inpaintSoftness?: string;
  inpaintMarination?: number;
  inpaintCropFrom?: string;
  inpaintPasteFrom?: string;
  inpaintPasteTo?: string;
}

/** Options shared by `generate` and `inspect` (as commander parses them). */
export interface GenerationCliOptions extends InpaintCliOptions, Omit<ModelCliOptions, 'model'> {
  /** After modelFromCli: the model's name (commander leaves it undefined when --model-config is used). */
  model: string;
  prompt?: string;
  negativePrompt?: string;
  video?: string;
  image?: string;
  audio?: string;
  secondsStart: number;
  /** undefined: 10 s, or less when the model is shorter. */
  seconds?: number;
  steps: number;
  cfg: number;
  cfgRescale: number;
  /** undefined: the model objective's default. */
  sampler?: string;
  sigmaMin: number;
  sigmaMax: number;
  seed: number;
  initAudio?: string;
  initNoiseLevel?: number;
  batch: number;
  referenceQuirks?: boolean;
  fullLength?: boolean;
  /** Long-form (`generate` only): the whole video, and the seconds windows share. */
  fullVideo?: boolean;
  windowOverlap?: number;
}

export interface GenerateCliOptions extends GenerationCliOptions {
  output: string;
  progress: boolean;
}

/** The CLI flag of each media input, for error messages. */
export const MEDIA_FLAGS = { video: '--video', image: '--image', audio: '--audio', initAudio: '--init-audio' };

/**
 * Adds the generation options to a command (`generate` and `inspect` share them): the media inputs here, every
 * other one from the parameter schema. `defaults.steps`: the command's own default step count.
 */
export function addGenerationOptions(cmd: Command, defaults: { steps: number }): Command {
  const param = (name: ParamName, o?: ParamOptionOverrides) => addParamOption(cmd, name, o);
  addModelOptions(cmd);
  param('prompt');
  param('negativePrompt');
  cmd
    .option('--video <file>', 'conditioning video (also re-muxed with the result)')
    .option('--image <file>', 'conditioning still image')
    .option('--audio <file>', 'audio prompt');
  param('secondsStart', { default: true });
  param('secondsTotal');
  param('fullVideo');
  param('windowOverlap');
  param('steps', { default: defaults.steps });
  param('cfgScale', { default: true });
  param('cfgRescale', { default: true });
  param('sampler');
  param('sigmaMin', { default: true });
  param('sigmaMax', { default: true });
  param('seed', { default: true });
  cmd.option('--init-audio <file>', 'audio to vary (variation) or to inpaint');
  for (const name of ['initNoiseLevel', 'inpaintStart', 'inpaintEnd'] as const) param(name);
  // One flag for both soft edges (inpaintSoftnessL and inpaintSoftnessR).
  param('inpaintSoftnessL', { help: 'inpainting: widths of the left and right soft edges (seconds or %; one value: both; default: 0)' });
  for (const name of ['inpaintMarination', 'inpaintCropFrom', 'inpaintPasteFrom', 'inpaintPasteTo', 'fullLength'] as const) param(name);
  param('batchSize', { default: true });
  return param('referenceQuirks');
}

const INPAINT_FLAGS = ['inpaintStart', 'inpaintEnd', 'inpaintSoftness', 'inpaintMarination', 'inpaintCropFrom', 'inpaintPasteFrom', 'inpaintPasteTo'] as const;

/** The --inpaint-* flags as generate()'s inpaint option (positions stay strings: a bare number is seconds). */
export function inpaintOptions(o: GenerationCliOptions): InpaintOptions | undefined {
  if (!INPAINT_FLAGS.some((k) => o[k] !== undefined)) return undefined;
  if (o.inpaintStart === undefined || o.inpaintEnd === undefined) {
    throw new InvalidArgumentError('inpainting needs both --inpaint-start and --inpaint-end (and --init-audio)');
  }
  const pos = (v: string | undefined) => (v === undefined ? undefined : (v.trim() as WindowPosition));
  const soft = o.inpaintSoftness?.split(',');
  if (soft && soft.length > 2) throw new InvalidArgumentError(`--inpaint-softness takes one or two values (left[,right]), got "${o.inpaintSoftness}"`);
  return {
    maskStart: pos(o.inpaintStart)!,
    maskEnd: pos(o.inpaintEnd)!,
    softnessL: pos(soft?.[0]),
    softnessR: pos(soft?.[1] ?? soft?.[0]),
    marination: o.inpaintMarination,
    cropFrom: pos(o.inpaintCropFrom),
    pasteFrom: pos(o.inpaintPasteFrom),
    pasteTo: pos(o.inpaintPasteTo),
  };
}

/** The pipeline options the CLI flags stand for. */
export function generateOptions(o: GenerationCliOptions): GenerateOptions {
  return {
    prompt: o.prompt,
    negativePrompt: o.negativePrompt,
    video: o.video,
    image: o.image,
    audio: o.audio,
    secondsStart: o.secondsStart,
    secondsTotal: o.seconds,
    steps: o.steps,
    cfgScale: o.cfg,
    cfgRescale: o.cfgRescale,
    sampler: o.sampler as SamplerName,
    sigmaMin: o.sigmaMin,
    sigmaMax: o.sigmaMax,
    seed: o.seed,
    initAudio: o.initAudio,
    initNoiseLevel: o.initNoiseLevel,
    batchSize: o.batch,
    referenceQuirks: o.referenceQuirks,
    inpaint: inpaintOptions(o),
    fullLength: o.fullLength,
  };
}

export interface ModelPreflight extends ModelLimits {
  dir: string;
  demo: boolean;
  config: AudioXConfig;
}

/**
 * Finds a model's files without loading any weights: unknown names, a missing config or missing weights
 * fail here with the command that fixes it (`audiox download …`).
 */
export function preflightModel(nameOrDir: string): ModelPreflight {
  const src = inspectModel(nameOrDir);
  return { ...configLimits(src.name, src.config), dir: src.dir, demo: src.demo, config: src.config };
}

/** Output paths for a batch: out.wav, or out_0.wav, out_1.wav … */
export function batchPaths(out: string, n: number, ext: string): string[] {
  const base = out.replace(/\.[^./\\]+$/, '');
  return n === 1 ? [`${base}${ext}`] : Array.from({ length: n }, (_, i) => `${base}_${i}${ext}`);
}

/** The long-form options the CLI flags stand for (seconds beyond the model's window, or --full-video). */
export function longformOptions(o: GenerationCliOptions, output: string): LongformOptions {
  const { secondsTotal, initAudio: _i, initNoiseLevel: _n, inpaint: _p, batchSize: _b, fullLength: _f, onProgress: _o, audio, ...rest } = generateOptions(o);
  return { ...rest, audio: typeof audio === 'string' ? audio : undefined, secondsTotal, fullVideo: o.fullVideo, windowOverlap: o.windowOverlap, output };
}

/** Does this command line ask for long-form generation? */
export function wantsLongform(model: ModelLimits, o: GenerationCliOptions): boolean {
  return isLongform(model, { secondsTotal: o.seconds, fullVideo: o.fullVideo });
}

/**
 * Everything that can be checked without the weights: model files, parameters, outputs, media.
 * `longform`: the command can make long-form audio (`generate`); elsewhere --full-video and seconds beyond the
 * window are refused.
 */
export async function preflight(o: GenerationCliOptions, outputs: string[], signal?: AbortSignal, longform = false): Promise<ModelPreflight> {
  const model = preflightModel(o.model);
  if (!longform && (o.fullVideo || o.windowOverlap !== undefined)) {
    throw new InvalidArgumentError('--full-video and --window-overlap are for long-form generation: use `audiox generate`');
  }
  if (longform && o.windowOverlap !== undefined && !wantsLongform(model, o)) {
    throw new InvalidArgumentError(`--window-overlap applies to long-form generation only (--full-video, or --seconds beyond the model's ${model.maxSeconds.toFixed(2)} s)`);
  }
  if (longform && wantsLongform(model, o)) {
    if (o.batch !== 1) throw new InvalidArgumentError('long-form generation makes one output: use --batch 1');
    if (o.initAudio || inpaintOptions(o) || o.initNoiseLevel !== undefined) {
      throw new InvalidArgumentError('--init-audio, --init-noise-level and --inpaint-* apply to one window: long-form generation does its own inpainting');
    }
    try {
      await resolveLongform(model, model.config, longformOptions(o, outputs[0] ?? 'output.wav'), signal);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    await checkOutputsAndMedia(o, outputs, signal);
    return model;
  }
  const opts = generateOptions(o);
  // Init audio longer than the window lengthens it (inpainting positions in seconds are relative to it).
  let windowSeconds: number | undefined;
  if (opts.inpaint && o.initAudio && fs.existsSync(o.initAudio)) {
    const d = (await probeMedia(o.initAudio, { signal }).catch(() => null))?.duration;
    if (d) windowSeconds = Math.max(model.maxSeconds, d);
  }
  resolveParams(model, opts, windowSeconds);
  await checkOutputsAndMedia(o, outputs, signal);
  return model;
}

async function checkOutputsAndMedia(o: GenerationCliOptions, outputs: string[], signal?: AbortSignal): Promise<void> {
  const opts = generateOptions(o);
  for (const out of outputs) checkOutputFile(out);
  const inputs = [o.video, o.image, o.audio, o.initAudio].filter((f): f is string => !!f).map((f) => path.resolve(f));
  for (const out of outputs) {
    if (inputs.includes(path.resolve(out))) throw new Error(`the output ${out} would overwrite an input; choose another -o`);
  }
  await checkMediaInputs(opts, { seekTime: o.secondsStart, signal, labels: MEDIA_FLAGS });
}

/** "step 3/8", or for a sampler that picks its steps as it goes "step 3 (40%)". */
function stepLabel(p: Pick<Progress, 'step' | 'steps' | 'fraction'>): string {
  return p.steps === null ? `step ${p.step + 1} (${Math.round(p.fraction * 100)}%)` : `step ${p.step + 1}/${p.steps}`;
}

function progressReporter(enabled: boolean): { update: (p: Progress) => void; stop: () => void } {
  if (!enabled) return { update: () => {}, stop: () => {} };
  if (process.stderr.isTTY) {
    // Started at the first report: its total (steps, or percent when steps are not known) comes from the sampler.
    let bar: cliProgress.SingleBar | null = null;
    return {
      update: (p) => {
        if (!bar) {
          const unit = p.steps === null ? '% (adaptive steps)' : ' steps';
          bar = new cliProgress.SingleBar(
            { format: `sampling [{bar}] {value}${p.steps === null ? '' : '/{total}'}${unit} | {duration}s | ETA {eta}s`, stream: process.stderr },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.steps ?? 100, 0);
        }
        bar.update(p.steps === null ? Math.round(p.fraction * 100) : p.step + 1);
      },
      stop: () => bar?.stop(),
    };
  }
  // Not a terminal (logs, CI): a line per step, at most about ten in all.
  let shown = -1;
  return {
    update: (p) => {
      const tenth = Math.floor(p.fraction * 10);
      if (tenth !== shown) console.error(`sampling: ${stepLabel(p)}`);
      shown = tenth;
    },
    stop: () => {},
  };
}

/**
 * Runs `body` with the list of files it writes; if it throws, those files go (no partial output: the atomic
 * writers already removed their temp files). The model is disposed either way.
 */
async function producing(model: AudioXModel, body: (written: string[]) => Promise<string[]>): Promise<string[]> {
  const written: string[] = [];
  try {
    return await body(written);
  } catch (e) {
    for (const f of written) fs.rmSync(f, { force: true });
    throw e;
  } finally {
    model.dispose();
  }
}

/** Runs one generation from CLI options and writes the outputs; returns the paths written. */
export async function runGenerate(o: GenerateCliOptions, signal?: AbortSignal): Promise<string[]> {
  const batch = Number.isInteger(o.batch) && o.batch > 0 ? o.batch : 1;
  const wavs = batchPaths(o.output, batch, '.wav');
  const mp4s = o.video ? batchPaths(o.output, batch, '.mp4') : [];
  // -o itself must not be a directory or a device either (it is the stem of the files written).
  checkOutputFile(o.output);
  o = { ...o, model: await modelFromCli(o, { quiet: !o.progress }) };
  const info = await preflight(o, [...wavs, ...mp4s], signal, true);
  if (wantsLongform(info, o)) return runLongform(o, info, wavs[0], mp4s[0], signal);
  const log = (s: string) => o.progress && console.error(s);
  if (info.demo) {
    console.error('note: the demo model has untrained, synthetic weights: it shows the pipeline working, not AudioX quality.');
  }
  log(`loading model ${info.name}…`);
  const runtime = await createRuntime();
  const model = await loadModel(o.model, { runtime });
  return producing(model, async (written) => {
    log(`generating on the ${runtime.backend} backend…`);
    const progress = progressReporter(o.progress);
    const result = await generate(model, { ...generateOptions(o), signal, onProgress: (p) => progress.update(p) }).finally(
      () => progress.stop(),
    );
    const stopIfInterrupted = () => {
      if (signal?.aborted) throw Object.assign(new Error('generation cancelled'), { name: 'AbortError' });
    };
    for (const [i, channels] of result.audio.entries()) {
      stopIfInterrupted();
      await writeWav(wavs[i], channels, result.sampleRate);
      written.push(wavs[i]);
      if (o.video) {
        const duration = channels[0].length / result.sampleRate;
        await muxVideoWithAudio({ video: o.video, audioWav: wavs[i], out: mp4s[i], start: o.secondsStart, duration, signal });
        written.push(mp4s[i]);
      }
    }
    // Ctrl-C while the last file was written still means no output.
    stopIfInterrupted();
    const t = result.timings;
    const p = result.params;
    const seconds = result.audio[0][0].length / result.sampleRate;
    console.log(
      [
        `model: ${model.name}${model.demo ? ' (untrained demo: synthetic weights, noise-like output)' : ''}; backend: ${runtime.backend}`,
        `seed: ${result.seed}; sampler: ${p.sampler}, ${p.steps} steps, cfg ${p.cfgScale}, sigma ${p.sigmaMin}–${p.sigmaMax}; ${seconds.toFixed(2)} s of audio at ${result.sampleRate} Hz`,
        `time: ${(t.totalMs / 1000).toFixed(1)} s (conditioning ${(t.conditioningMs / 1000).toFixed(1)} s, sampling ${(t.samplingMs / 1000).toFixed(1)} s, decode ${(t.decodeMs / 1000).toFixed(1)} s)`,
        ...written.map((f) => `wrote ${f}`),
      ].join('\n'),
    );
    return written;
  });
}

/** Long-form progress: "window 2/4 step 3/8 | run 40% | ETA 1m20s", at most about ten lines per window off a terminal. */
function longformReporter(enabled: boolean): (p: LongformProgress) => void {
  if (!enabled) return () => {};
  const tty = process.stderr.isTTY;
  let shown = '';
  return (p) => {
    const eta = p.etaMs === null ? '?' : `${Math.floor(p.etaMs / 60_000)}m${String(Math.round((p.etaMs % 60_000) / 1000)).padStart(2, '0')}s`;
    const line = `window ${p.window + 1}/${p.windows} ${stepLabel(p)} | run ${Math.round(p.runFraction * 100)}% | ETA ${eta}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K${p.runFraction >= 1 ? '\n' : ''}`);
    else {
      const key = `${p.window}:${Math.floor(p.fraction * 10)}`;
      if (key !== shown) console.error(line);
      shown = key;
    }
  };
}

/** `generate` beyond the model's window: window by window into one WAV, then the video re-muxed with all of it. */
async function runLongform(o: GenerateCliOptions, info: ModelPreflight, wav: string, mp4: string | undefined, signal?: AbortSignal): Promise<string[]> {
  const log = (s: string) => o.progress && console.error(s);
  if (info.demo) console.error('note: the demo model has untrained, synthetic weights: it shows the pipeline working, not AudioX quality.');
  log(`loading model ${info.name}…`);
  const runtime = await createRuntime();
  const model = await loadModel(o.model, { runtime });
  return producing(model, async (written) => {
    log(`generating long-form audio on the ${runtime.backend} backend…`);
    const result = await generateLongform(model, { ...longformOptions(o, wav), signal, onProgress: longformReporter(o.progress) });
    written.push(wav);
    if (o.video && mp4) {
      await muxVideoWithAudio({ video: o.video, audioWav: wav, out: mp4, start: o.secondsStart, duration: result.seconds, signal });
      written.push(mp4);
    }
    if (signal?.aborted) throw Object.assign(new Error('generation cancelled'), { name: 'AbortError' });
    const n = result.plan.windows.length;
    const perWindow = result.timings.windowMs.reduce((a, b) => a + b, 0) / n;
    console.log(
      [
        `model: ${model.name}${model.demo ? ' (untrained demo: synthetic weights, noise-like output)' : ''}; backend: ${runtime.backend}`,
        `seed: ${result.seed}; ${o.steps} steps; ${result.seconds.toFixed(2)} s of audio at ${result.sampleRate} Hz from ${n} windows of ${(result.plan.windowSamples / result.sampleRate).toFixed(2)} s (overlap ${((result.plan.overlapFrames * result.plan.windowSamples) / (model.wrapper.latentLength(model.sampleSize) * result.sampleRate)).toFixed(2)} s)`,
        `time: ${(result.timings.totalMs / 1000).toFixed(1)} s (${(perWindow / 1000).toFixed(1)} s per window)`,
        ...written.map((f) => `wrote ${f}`),
      ].join('\n'),
    );
    return written;
  });
}

/** Runs `fn` with a signal that Ctrl-C aborts (exit code 130 after a clean stop). */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    console.error('\ninterrupted: stopping after the current step…');
    process.exitCode = 130;
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    return await fn(ac.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export function register(program: Command): void {
  const cmd = program.command('generate').description('generate audio from text, video, an image and/or an audio prompt');
  addGenerationOptions(cmd, { steps: PARAMS.steps.default })
    .option('-o, --output <file.wav>', 'output WAV (with --video also an mp4 of the same name)', 'output.wav')
    .option('--no-progress', 'no progress output')
    .action(async (opts: GenerateCliOptions) => {
      await withInterrupt((signal) => runGenerate(opts, signal));
    });
}
