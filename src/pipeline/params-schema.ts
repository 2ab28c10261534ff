// The one table of generation parameters: name, type, range, default and help text of each. The CLI's flags
// (generate, inspect, batch, queue), the HTTP API's validation, the web page's form (GET /api/info) and
// resolveParams all read it, and README's parameter table is generated from it (test/params-schema.test.ts).
// Defaults are the original AudioX demo's (its Gradio UI, docs/REFERENCE.md §7.8); the limits are ours, one set for all.
import { DEFAULT_SAMPLERS, SAMPLER_NAMES, samplerHelp, type DiffusionObjective, type SamplerName } from '../sampling/registry.ts';

interface ParamBase {
  /** How messages name it: "cfg scale must be in [0, 100], got 200". */
  label: string;
  /** One line for `--help`, the web page and the README table. */
  help: string;
  /** The command-line flag in commander's syntax, or null where the CLI has none. */
  cli: string | null;
  /** Accepted by POST /api/generate (and so a field of the web page's form). */
  api: boolean;
}

export interface NumberParam extends ParamBase {
  kind: 'int' | 'number';
  min: number;
  max: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
  default: number;
  /** Absent stays absent in a request (the default is what the pipeline then uses). */
  optional?: boolean;
}

/**
 * A position in the generation window. The HTTP API takes a percentage (min…max); the CLI also takes
 * seconds ("2.5" or "2.5s") or "30%". Always optional: absent means the default.
 */
export interface PositionParam extends ParamBase {
  kind: 'position';
  min: number;
  max: number;
  default: number;
  /** The default is only the web form's initial value: inpainting needs the position given. */
  formDefault?: boolean;
}

export interface StringParam extends ParamBase {
  kind: 'string';
  maxLength: number;
  default: string;
}

export interface BooleanParam extends ParamBase {
  kind: 'boolean';
  default: boolean;
}

/** The sampler registry's names; the default depends on the model's diffusion objective. */
export interface SamplerParam extends ParamBase {
  kind: 'sampler';
  choices: readonly SamplerName[];
  default: SamplerName;
  defaults: Readonly<Record<DiffusionObjective, SamplerName>>;
}

/** An integer in [min, max], or −1 (the default): a random one. */
export interface SeedParam extends ParamBase {
  kind: 'seed';
  min: number;
  max: number;
  default: number;
}

export type ParamSpec = NumberParam | PositionParam | StringParam | BooleanParam | SamplerParam | SeedParam;

export const MAX_SEED = 2 ** 32 - 1;

const position = (d: number, cli: string | null, help: string, label: string, formDefault = false): PositionParam => ({
  kind: 'position',
  min: 0,
  max: 100,
  default: d,
  ...(formDefault ? { formDefault } : {}),
  label,
  help,
  cli,
  api: true,
});

export const PARAMS = {
  prompt: { kind: 'string', maxLength: 2000, default: '', label: 'prompt', cli: '-p, --prompt <text>', api: true, help: 'text prompt' },
  negativePrompt: {
    kind: 'string',
    maxLength: 2000,
    default: '',
    label: 'negative prompt',
    cli: '--negative-prompt <text>',
    api: true,
    help: 'negative text prompt (what to steer away from)',
  },
  secondsStart: {
    kind: 'number',
    min: 0,
    max: 100_000,
    default: 0,
    label: 'seconds start',
    cli: '--seconds-start <s>',
    api: true,
    help: 'start of the 10 s conditioning window in the media',
  },
  secondsTotal: {
    kind: 'number',
    min: 0,
    exclusiveMin: true,
    max: 600,
    default: 10,
    label: 'seconds',
    cli: '--seconds <s>',
    api: true,
    help: 'length of the generated audio; beyond the model length (sample_size / sample_rate) it is made window by window (long-form)',
  },
  fullVideo: {
    kind: 'boolean',
    default: false,
    label: 'full video',
    cli: '--full-video',
    api: true,
    help: 'long-form: a soundtrack for the whole video from seconds start (instead of seconds)',
  },
  windowOverlap: {
    kind: 'number',
    min: 0.1,
    max: 5,
    default: 2,
    label: 'window overlap',
    cli: '--window-overlap <s>',
    api: true,
    help: 'long-form: seconds each window shares with the previous one (held to it, then cross-faded)',
  },
  steps: { kind: 'int', min: 1, max: 1000, default: 100, label: 'steps', cli: '--steps <n>', api: true, help: 'sampling steps' },
  cfgScale: { kind: 'number', min: 0, max: 100, default: 7, label: 'cfg scale', cli: '--cfg <x>', api: true, help: 'classifier-free guidance scale' },
  cfgRescale: { kind: 'number', min: 0, max: 1, default: 0, label: 'cfg rescale', cli: '--cfg-rescale <x>', api: true, help: 'CFG rescale (scale_phi)' },
  sampler: {
    kind: 'sampler',
    choices: SAMPLER_NAMES,
    default: DEFAULT_SAMPLERS.v,
    defaults: DEFAULT_SAMPLERS,
    label: 'sampler',
    cli: '--sampler <name>',
    api: true,
    help: `sampler for ${samplerHelp()}`,
  },
  sigmaMin: {
    kind: 'number',
    min: 0,
    exclusiveMin: true,
    max: 10_000,
    default: 0.03,
    label: 'sigma-min',
    cli: '--sigma-min <x>',
    api: true,
    help: 'smallest noise level',
  },
  sigmaMax: {
    kind: 'number',
    min: 0,
    exclusiveMin: true,
    max: 10_000,
    default: 500,
    label: 'sigma-max',
    cli: '--sigma-max <x>',
    api: true,
    help: 'largest noise level',
  },
  rho: {
    kind: 'number',
    min: 0,
    exclusiveMin: true,
    max: 100,
    default: 1,
    label: 'rho',
    cli: null,
    api: false,
    help: 'shape of the polyexponential σ schedule (library only; the demo always uses 1)',
  },
  seed: { kind: 'seed', min: 0, max: MAX_SEED, default: -1, label: 'seed', cli: '--seed <n>', api: true, help: 'random seed (-1: random)' },
  initNoiseLevel: {
    kind: 'number',
    min: 0,
    exclusiveMin: true,
    max: 10_000,
    default: 0.1,
    label: 'init noise level',
    cli: '--init-noise-level <x>',
    api: true,
    help: 'variations: the σ the init audio is noised to (replaces sigma-max)',
  },
  batchSize: { kind: 'int', min: 1, max: 16, default: 1, label: 'batch size', cli: '--batch <n>', api: true, help: 'number of outputs' },
  fullLength: {
    kind: 'boolean',
    default: false,
    label: 'full length',
    cli: '--full-length',
    api: true,
    help: "keep the whole decoded window and normalise over it, as the reference's demo does (default: trim to the seconds asked for)",
  },
  referenceQuirks: {
    kind: 'boolean',
    default: false,
    label: 'reference quirks',
    cli: '--reference-quirks',
    api: false,
    help: "reproduce the reference demo's preprocessing bugs exactly (see README)",
  },
  previewEvery: {
    kind: 'int',
    min: 0,
    max: 1000,
    default: 0,
    label: 'preview every',
    cli: null,
    api: true,
    help: 'web page: a spectrogram of the denoised estimate every k steps (0: never)',
  },
  inpaintStart: position(50, '--inpaint-start <pos>', 'inpainting: start of the range of the init audio to regenerate', 'inpaint start', true),
  inpaintEnd: position(100, '--inpaint-end <pos>', 'inpainting: end of the range to regenerate', 'inpaint end', true),
  inpaintSoftnessL: position(0, '--inpaint-softness <left[,right]>', 'inpainting: width of the left soft edge', 'inpaint softness left'),
  inpaintSoftnessR: position(0, null, 'inpainting: width of the right soft edge (CLI: the second value of --inpaint-softness)', 'inpaint softness right'),
  inpaintMarination: {
    kind: 'number',
    min: 0,
    max: 1,
    exclusiveMax: true,
    default: 0,
    optional: true,
    label: 'marination',
    cli: '--inpaint-marination <x>',
    api: true,
    help: 'inpainting: releases the kept audio earlier in the schedule',
  },
  inpaintCropFrom: position(0, '--inpaint-crop-from <pos>', 'inpainting: take the init audio from here…', 'crop-from'),
  inpaintPasteFrom: position(0, '--inpaint-paste-from <pos>', '…and place it from here…', 'paste-from'),
  inpaintPasteTo: position(100, '--inpaint-paste-to <pos>', '…to here; outside, nothing is kept (outpainting)', 'paste-to'),
} satisfies Record<string, ParamSpec>;

export type ParamName = keyof typeof PARAMS;

export const PARAM_NAMES = Object.keys(PARAMS) as ParamName[];

/** The parameters POST /api/generate accepts (and the web form shows). */
export const API_PARAM_NAMES = PARAM_NAMES.filter((n) => PARAMS[n].api);

export function paramSpec(name: ParamName): ParamSpec {
  return PARAMS[name];
}

/** "[0, 100]", "(0, 10000]", "[0, 1)". */
export function rangeText(p: { min: number; max: number; exclusiveMin?: boolean; exclusiveMax?: boolean }): string {
  return `${p.exclusiveMin ? '(' : '['}${p.min}, ${p.max}${p.exclusiveMax ? ')' : ']'}`;
}

/** What a valid value is, as messages say it: "an integer in [1, 1000]", "in (0, 10000]". */
export function validText(p: NumberParam | PositionParam | SeedParam): string {
  if (p.kind === 'seed') return `an integer in ${rangeText(p)} or -1 (random)`;
  return p.kind === 'int' ? `an integer in ${rangeText(p)}` : `in ${rangeText(p)}`;
}

/** Why the number `v` is not valid for `p` ("must be an integer in [1, 1000], got 0"), or null when it is. */
export function numberProblem(p: NumberParam | PositionParam | SeedParam, v: number): string | null {
  const isInt = p.kind === 'int' || p.kind === 'seed';
  if (p.kind === 'seed' && v === -1) return null;
  const ok =
    Number.isFinite(v) &&
    (!isInt || Number.isInteger(v)) &&
    ('exclusiveMin' in p && p.exclusiveMin ? v > p.min : v >= p.min) &&
    ('exclusiveMax' in p && p.exclusiveMax ? v < p.max : v <= p.max);
  return ok ? null : `must be ${validText(p)}, got ${v}`;
}

/** Why the string `s` is not valid for `p`, or null. */
export function stringProblem(p: StringParam, s: string): string | null {
  return s.length > p.maxLength ? `must be at most ${p.maxLength} characters long, got ${s.length}` : null;
}

/** The default of every parameter that has a single one (the sampler's is per objective: PARAMS.sampler.defaults). */
export type ParamDefaults = { [K in ParamName]: (typeof PARAMS)[K]['default'] };

export const PARAM_DEFAULTS = Object.fromEntries(PARAM_NAMES.map((n) => [n, PARAMS[n].default])) as ParamDefaults;

/** The default as help texts and the README show it ("50%" for positions). */
export function defaultText(p: ParamSpec): string {
  if (p.kind === 'position') return p.formDefault ? `${p.default}% (form; required to inpaint)` : `${p.default}%`;
  if (p.kind === 'string') return p.default === '' ? '(empty)' : JSON.stringify(p.default);
  if (p.kind === 'sampler') return Object.entries(p.defaults).map(([o, s]) => `${s} (${o})`).join(', ');
  if (p.kind === 'seed') return `${p.default} (random)`;
  return String(p.default);
}

/** The range as the README shows it. */
function allowedText(p: ParamSpec): string {
  switch (p.kind) {
    case 'string':
      return `≤ ${p.maxLength} characters`;
    case 'boolean':
      return 'true / false';
    case 'sampler':
      return 'a sampler of the model’s objective (see `--sampler`)';
    case 'position':
      return `${rangeText(p)} % (CLI: also seconds)`;
    default:
      return validText(p);
  }
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** README's parameter table (between the `params-table` markers; test/params-schema.test.ts keeps it current). */
export function paramsMarkdownTable(): string {
  const rows = PARAM_NAMES.map((n) => {
    const p: ParamSpec = PARAMS[n];
    const flag = p.cli ? `\`${p.cli.replace(/^-\w, /, '')}\`` : '—';
    return `| \`${n}\` | ${flag} | ${p.api ? 'yes' : '—'} | ${cell(allowedText(p))} | ${cell(defaultText(p))} | ${cell(p.help)} |`;
  });
  return ['| parameter (library, HTTP API) | CLI flag | HTTP API | allowed | default | meaning |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
