// The pure parts of `npm run bench -- --e2e` (test/bench/e2e-plan.test.ts): its options, the shapes a
// generation of the model config runs at (what the PyTorch side is built with), and the phase table.
import { fmtMs, fmtRatio } from './table.ts';

export interface E2eOptions {
  model: 'AudioX-MAF';
  steps: number;
  seconds: number;
  /** The weight dtype written to the random model directory. */
  dtype: 'F16' | 'F32';
  /** AUDIOX_HOME of the random full-size model directories (reused between runs). */
  home: string;
  /** `--backend a,b`: our side runs once per backend (in its own process), PyTorch once; empty: the default selection. */
  backends: string[];
  markdown: boolean;
}

/** `--e2e [--steps 25] [--seconds 10] [--dtype f16|f32] [--home DIR] [--backend b[,b…]] [--markdown]`; throws on bad values. */
export function parseE2eArgs(argv: readonly string[], defaultHome: string): E2eOptions {
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
    return v;
  };
  const steps = Number(opt('steps') ?? 25);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got ${opt('steps')}`);
  const seconds = Number(opt('seconds') ?? 10);
  if (!(seconds > 0 && seconds <= 10)) throw new Error(`--seconds must be in (0, 10] (one AudioX-MAF window), got ${opt('seconds')}`);
  const dtype = (opt('dtype') ?? 'f16').toLowerCase();
  if (dtype !== 'f16' && dtype !== 'f32') throw new Error(`--dtype must be f16 or f32, got ${dtype}`);
  const model = opt('model') ?? 'AudioX-MAF';
  if (model !== 'AudioX-MAF') throw new Error(`--e2e measures AudioX-MAF video-to-audio only, got --model ${model}`);
  const backends = (opt('backend') ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  if (new Set(backends).size !== backends.length) throw new Error(`--backend lists a backend twice: ${opt('backend')}`);
  return { model, steps, seconds, dtype: dtype === 'f16' ? 'F16' : 'F32', home: opt('home') ?? defaultHome, backends, markdown: argv.includes('--markdown') };
}

/** What the shapes are computed from: the model config's keys that set them. */
export interface E2eConfig {
  sample_rate: number;
  sample_size: number;
  model: {
    conditioning: { configs: { id: string; type: string; config?: Record<string, unknown> }[] };
    diffusion: { cross_attention_cond_ids?: string[] };
  };
}

export interface E2eShapes {
  /** Latent frames of the window (the DiT runs on one more: the prepended timestep token). */
  latents: number;
  /** Cross-attention tokens after the MAF block, all conditioners concatenated. */
  context: number;
  /** Latents the decoder is given for `seconds` of audio (decodeHead: the head plus the receptive radius). */
  decodeLatents: number;
}

const CONDITIONING_SECONDS = 10;

/** Tokens one conditioner contributes to the cross-attention sequence (the released conditioner types). */
export function conditionerTokens(entry: { type: string; config?: Record<string, unknown> }, sampleRate: number): number {
  const c = entry.config ?? {};
  switch (entry.type) {
    case 'clip':
      return 128; // out_features forced to 128 (quirk 25)
    case 'clip-with-sync-w-empty-feat':
      return Number(c.out_features ?? 128);
    case 't5':
      return Number(c.max_length ?? 128); // always padded to max_length (quirk 23)
    case 'mel_spec':
      return 1 + Math.floor((sampleRate * CONDITIONING_SECONDS) / Number(c.hop_length ?? 256));
    default:
      throw new Error(`e2e: no token count for a "${entry.type}" conditioner`);
  }
}

/** The shapes of a `seconds`-long generation; `downsamplingRatio` and `decodeRadius` come from the VAE. */
export function e2eShapes(config: E2eConfig, seconds: number, downsamplingRatio: number, decodeRadius: number): E2eShapes {
  const latents = Math.floor(config.sample_size / downsamplingRatio);
  const ids = config.model.diffusion.cross_attention_cond_ids ?? [];
  const context = ids.reduce((n, id) => {
    const entry = config.model.conditioning.configs.find((e) => e.id === id);
    if (!entry) throw new Error(`e2e: cross-attention id "${id}" has no conditioner in the config`);
    return n + conditionerTokens(entry, config.sample_rate);
  }, 0);
  const samples = Math.round(seconds * config.sample_rate);
  const decodeLatents = Math.min(latents, Math.ceil(samples / downsamplingRatio) + Math.ceil(decodeRadius) + 1);
  return { latents, context, decodeLatents };
}

/** One side's phase times of a generation (ms). */
export interface PhaseTimes {
  loadMs: number;
  conditioningMs: number;
  /** One entry per sampling step. */
  stepMs: number[];
  decodeMs: number;
}

/** Our side as bench/e2e.ts prints it: generate()'s timings, the load, and the time of each step. */
export interface OursE2e extends PhaseTimes {
  samplingMs: number;
  /** generate()'s own total (conditioning + sampling + decode + the rest). */
  totalMs: number;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Total of a side: load + conditioning + sampling + decode (ours: load + generate()'s total). */
export function totalMs(p: PhaseTimes | OursE2e): number {
  if ('totalMs' in p) return p.loadMs + p.totalMs;
  return p.loadMs + p.conditioningMs + sum(p.stepMs) + p.decodeMs;
}

/**
 * Per-step times from generate()'s progress reports: `elapsedMs` since generate() began at each step's end,
 * the first measured from the end of conditioning.
 */
export function stepTimes(elapsedMs: readonly number[], conditioningMs: number): number[] {
  return elapsedMs.map((t, i) => t - (i === 0 ? conditioningMs : elapsedMs[i - 1]));
}

function stepCell(steps: readonly number[]): string {
  if (!steps.length) return '–';
  const mean = sum(steps) / steps.length;
  const lo = Math.min(...steps);
  const hi = Math.max(...steps);
  return steps.length > 1 && hi - lo > 0.05 * mean ? `${fmtMs(mean)} (${fmtMs(lo)}–${fmtMs(hi)})` : fmtMs(mean);
}

/** The phase table: [phase, ours, torch, ratio] rows; a missing side shows its reason. */
export function e2eRows(ours: OursE2e | string, torch: PhaseTimes | string): string[][] {
  return e2eColumns([ours], torch);
}

/**
 * The phase table for our side on several backends (one run each) against one PyTorch run:
 * [phase, ours₁ … oursₙ, torch, ratio₁ … ratioₙ] rows (ratio = ours / torch); a missing side shows its reason.
 */
export function e2eColumns(ours: readonly (OursE2e | string)[], torch: PhaseTimes | string): string[][] {
  const os = ours.map((o) => (typeof o === 'string' ? null : o));
  const t = typeof torch === 'string' ? null : torch;
  const steps = os.find((o) => o)?.stepMs.length ?? t?.stepMs.length ?? 0;
  const mean = (p: PhaseTimes | null) => (p && p.stepMs.length ? sum(p.stepMs) / p.stepMs.length : NaN);
  type Phase = [name: string, of: (p: OursE2e | null) => number, torch: number, cell?: (p: PhaseTimes | null) => string | undefined];
  const steppedCell = (p: PhaseTimes | null) => (p ? stepCell(p.stepMs) : undefined);
  const phases: Phase[] = [
    ['load', (o) => o?.loadMs ?? NaN, t?.loadMs ?? NaN],
    ['conditioning', (o) => o?.conditioningMs ?? NaN, t?.conditioningMs ?? NaN],
    [`sampling (${steps} steps)`, (o) => (o ? o.samplingMs : NaN), t ? sum(t.stepMs) : NaN],
    ['  per step', mean, mean(t), steppedCell],
    ['decode', (o) => o?.decodeMs ?? NaN, t?.decodeMs ?? NaN],
    ['total', (o) => (o ? totalMs(o) : NaN), t ? totalMs(t) : NaN],
  ];
  const rows = phases.map(([name, of, b, cell]) => {
    const values = os.map(of);
    const oursCells = values.map((a, i) => (cell ? cell(os[i]) : undefined) ?? fmtMs(a));
    return [name, ...oursCells, (cell ? cell(t) : undefined) ?? fmtMs(b), ...values.map((a) => fmtRatio(a, b))];
  });
  ours.forEach((o, i) => {
    if (typeof o === 'string') rows[0][1 + i] = o;
  });
  if (!t) rows[0][1 + ours.length] = torch as string;
  return rows;
}
