// Request parameters of POST /api/generate: each field's type, range and default come from the parameter
// schema (src/pipeline/params-schema.ts), which also builds the page's form (GET /api/info).
import { randomInt } from 'node:crypto';
import {
  API_PARAM_NAMES,
  MAX_SEED,
  PARAMS,
  numberProblem,
  stringProblem,
  validText,
  type NumberParam,
  type ParamSpec,
  type PositionParam,
} from '../pipeline/params-schema.ts';
import { DEFAULT_SAMPLERS, SAMPLER_NAMES, isSamplerName, type DiffusionObjective, type SamplerName } from '../sampling/registry.ts';

export { MAX_SEED };

export interface JobParams {
  prompt: string;
  negativePrompt: string;
  secondsStart: number;
  secondsTotal: number;
  steps: number;
  cfgScale: number;
  cfgRescale: number;
  sampler: SamplerName;
  sigmaMin: number;
  sigmaMax: number;
  /** Resolved seed (a request's −1 / "random" is replaced by a random uint32 at submit time). */
  seed: number;
  initNoiseLevel: number;
  batchSize: number;
  /** Preview the denoised estimate every k steps (0: never). */
  previewEvery: number;
  /**
   * Inpainting (with an init audio upload), the reference's sliders in percent of the window: the range
   * inpaintStart…inpaintEnd is regenerated. Absent start and end: no inpainting.
   */
  inpaintStart?: number;
  inpaintEnd?: number;
  inpaintSoftnessL?: number;
  inpaintSoftnessR?: number;
  inpaintMarination?: number;
  inpaintCropFrom?: number;
  inpaintPasteFrom?: number;
  inpaintPasteTo?: number;
  /** Keep the whole decoded window (the reference's output length) instead of trimming to secondsTotal. */
  fullLength: boolean;
  /** Long-form (secondsTotal beyond the model's window, or the whole video): see src/pipeline/longform.ts. */
  fullVideo: boolean;
  windowOverlap: number;
}

/** The schema entries of the request fields (served to the page by GET /api/info). */
export const PARAM_FIELDS: Readonly<Record<string, ParamSpec>> = Object.fromEntries(API_PARAM_NAMES.map((n) => [n, PARAMS[n]]));

/** Form checkboxes send "on"; JSON sends booleans. */
function parseBoolean(name: string, raw: unknown): boolean {
  if (raw === true || raw === 'true' || raw === 'on' || raw === '1' || raw === 1) return true;
  if (raw === false || raw === 'false' || raw === 'off' || raw === '0' || raw === 0) return false;
  throw new BadRequestError(`"${name}" must be true or false, got ${JSON.stringify(raw)}.`);
}

/** A request the client got wrong (→ HTTP 400). */
export class BadRequestError extends Error {
  readonly statusCode = 400;
  constructor(message: string) {
    super(message);
    this.name = 'BadRequestError';
  }
}

function parseNumber(name: string, raw: unknown, f: NumberParam | PositionParam): number {
  const v = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(v)) throw new BadRequestError(`"${name}" must be a number, got ${JSON.stringify(raw)}.`);
  const problem = numberProblem(f, v);
  if (problem) throw new BadRequestError(`"${name}" ${problem}.`);
  return v;
}

/** Seed: absent, "", "random" or −1 → a random uint32; otherwise an integer in [0, 2^32 − 1]. */
export function parseSeed(raw: unknown): number {
  if (raw === undefined || raw === null || raw === '' || raw === 'random' || raw === -1 || raw === '-1') {
    return randomInt(0, MAX_SEED);
  }
  const v = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw.trim()) : NaN;
  if (!Number.isInteger(v) || v < 0 || v > MAX_SEED) {
    throw new BadRequestError(`"seed" must be ${validText(PARAMS.seed)} or "random", got ${JSON.stringify(raw)}.`);
  }
  return v;
}

/**
 * Validates request fields (strings from a form or JSON values), fills in defaults and resolves the seed.
 * `objective` (the chosen model's, when known) picks the default sampler; whether a given sampler suits
 * the model is the pipeline's check (resolveParams).
 */
export function parseJobParams(body: Record<string, unknown>, objective: DiffusionObjective = 'v'): JobParams {
  const known = new Set([...API_PARAM_NAMES, 'model']);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new BadRequestError(`Unknown parameter(s): ${unknown.join(', ')}.`);
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(PARAM_FIELDS)) {
    const raw = body[name];
    const absent = raw === undefined || raw === null || raw === '';
    if (f.kind === 'seed') continue; // resolved below
    if (f.kind === 'string') {
      const s = absent ? f.default : raw;
      if (typeof s !== 'string') throw new BadRequestError(`"${name}" must be a string.`);
      const problem = stringProblem(f, s);
      if (problem) throw new BadRequestError(`"${name}" ${problem}.`);
      out[name] = s;
    } else if (f.kind === 'sampler') {
      const s = absent ? DEFAULT_SAMPLERS[objective] : raw;
      if (typeof s !== 'string' || !isSamplerName(s)) {
        throw new BadRequestError(`"sampler" must be one of ${SAMPLER_NAMES.join(', ')}, got ${JSON.stringify(raw)}.`);
      }
      out[name] = s;
    } else if (f.kind === 'boolean') {
      out[name] = absent ? f.default : parseBoolean(name, raw);
    } else {
      const optional = f.kind === 'position' || f.optional === true;
      out[name] = absent ? (optional ? undefined : f.default) : parseNumber(name, raw, f);
    }
  }
  const p = out as unknown as JobParams;
  if (p.sigmaMax <= p.sigmaMin) {
    throw new BadRequestError(`"sigmaMax" (${p.sigmaMax}) must be greater than "sigmaMin" (${p.sigmaMin}).`);
  }
  const inpaintKeys = Object.keys(PARAM_FIELDS).filter((k) => k.startsWith('inpaint')) as (keyof JobParams)[];
  if (inpaintKeys.some((k) => p[k] !== undefined) && (p.inpaintStart === undefined || p.inpaintEnd === undefined)) {
    throw new BadRequestError('Inpainting needs both "inpaintStart" and "inpaintEnd" (percent of the window) and an "initAudio" upload.');
  }
  p.seed = parseSeed(body.seed);
  return p;
}

export interface TaskExample {
  task: 'T2A' | 'T2M' | 'V2A' | 'V2M' | 'TV2A' | 'TV2M';
  title: string;
  prompt: string;
  /** Uses the server's sample video (GET /api/examples/video). */
  video: boolean;
  seed: number;
}

/** The task table of the reference README (one example per task; seeds fixed so a click is repeatable). */
export const EXAMPLES: readonly TaskExample[] = [
  { task: 'T2A', title: 'Text-to-Audio', prompt: 'Typing on a keyboard', video: false, seed: 1225575558 },
  { task: 'T2M', title: 'Text-to-Music', prompt: 'A music with piano and violin', video: false, seed: 1561898939 },
  { task: 'V2A', title: 'Video-to-Audio', prompt: 'Generate general audio for the video', video: true, seed: 3737819478 },
  { task: 'V2M', title: 'Video-to-Music', prompt: 'Generate music for the video', video: true, seed: 3498087420 },
  { task: 'TV2A', title: 'Text+Video-to-Audio', prompt: 'Ocean waves crashing with people laughing', video: true, seed: 1900718499 },
  { task: 'TV2M', title: 'Text+Video-to-Music', prompt: 'Generate music with piano instrument', video: true, seed: 3753837734 },
];
