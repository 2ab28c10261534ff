// The one list of samplers: name → implementation, the diffusion objective it is for, a description and
// whether the reference runs it. The CLI help, the HTTP API's validation, the web page's <select> and the
// SamplerName type are all derived from it.
import type * as tf from '@tensorflow/tfjs';
import type { DenoiseFn, VelocityFn } from './denoiser.ts';
import { dpmFastOrders, sampleDpmAdaptive, sampleDpmFast } from './dpm-solver.ts';
import type { Sampler, SamplerOptions } from './loop.ts';
import {
  sampleDiscreteEuler,
  sampleDpm2,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleDpmpp2sAncestral,
  sampleDpmpp3mSde,
  sampleEuler,
  sampleEulerAncestral,
  sampleHeun,
  sampleLms,
} from './samplers.ts';

/** A model config's `diffusion_objective`: v-prediction (sampled through the VDenoiser) or rectified flow. */
export type DiffusionObjective = 'v' | 'rectified_flow';

/** Every diffusion objective, v first. */
export const DIFFUSION_OBJECTIVES: readonly DiffusionObjective[] = ['v', 'rectified_flow'];

/** What `sample_k` hands a sampler: the σ schedule, and the arguments it was built from. */
export interface KSchedule {
  /** Polyexponential schedule σ_0 > … > σ_{N−1}, then 0 (what the schedule-walking samplers follow). */
  sigmas: number[];
  /** sample_k's sigma_min / sigma_max / steps as given (DPM-Solver works from these, not from `sigmas`). */
  sigmaMin: number;
  /** sample_k's sigma_max as given. */
  sigmaMax: number;
  /** sample_k's steps as given. */
  steps: number;
}

/** Runs a v-objective sampler from x (noise at σ_max) down the schedule; resolves to the denoised latents (owned by the caller). */
export type KSamplerRun = (denoise: DenoiseFn, x: tf.Tensor, schedule: KSchedule, opts: SamplerOptions) => Promise<tf.Tensor>;
/** Runs a rectified-flow sampler from x (noise at t = ts[0]) through the times `ts`; resolves to the latents (owned by the caller). */
export type RfSamplerRun = (velocity: VelocityFn, x: tf.Tensor, ts: number[], opts: Omit<SamplerOptions, 'noiseSampler'>) => Promise<tf.Tensor>;

interface EntryBase {
  /** One line for help texts and the web page. */
  description: string;
  /**
   * The reference runs it: `sample_k` dispatches the name (v), or it is `sample_rf`'s only sampler
   * (rectified flow). false: ours (the reference's `sample_k` returns None for it and crashes later).
   */
  inReference: boolean;
  /** Draws fresh noise every step (needs a noise sampler; the stream `sde`). */
  stochastic: boolean;
  /** Progress reports (steps) a run of `steps` makes; null: not known in advance. */
  progressSteps: (steps: number) => number | null;
}

/** A registry entry of a v-objective (k-diffusion) sampler. */
export interface KSamplerEntry extends EntryBase {
  /** Samples v-objective models. */
  objective: 'v';
  /** The implementation. */
  run: KSamplerRun;
}

/** A registry entry of a rectified-flow sampler. */
export interface RfSamplerEntry extends EntryBase {
  /** Samples rectified-flow models. */
  objective: 'rectified_flow';
  /** The implementation. */
  run: RfSamplerRun;
}

/** A registry entry of either objective. */
export type SamplerEntry = KSamplerEntry | RfSamplerEntry;

type Flags = Pick<EntryBase, 'inReference' | 'stochastic'>;

/** One report per step of the schedule. */
const perStep = (steps: number): number => steps;

function onSchedule(sampler: Sampler, description: string, flags: Flags): KSamplerEntry {
  return { objective: 'v', description, ...flags, progressSteps: perStep, run: (denoise, x, s, opts) => sampler(denoise, x, s.sigmas, opts) };
}

const REF: Flags = { inReference: true, stochastic: false };
const REF_SDE: Flags = { inReference: true, stochastic: true };
const OURS: Flags = { inReference: false, stochastic: false };

/** Every sampler by name: implementation, objective, description, whether the reference runs it, whether it is stochastic. */
export const SAMPLER_REGISTRY = {
  'dpmpp-3m-sde': onSchedule(sampleDpmpp3mSde, 'DPM-Solver++(3M) SDE (the reference front-end default)', REF_SDE),
  'dpmpp-2m-sde': onSchedule(sampleDpmpp2mSde, 'DPM-Solver++(2M) SDE', REF_SDE),
  'k-heun': onSchedule(sampleHeun, 'Heun (2 model calls per step)', REF),
  'k-lms': onSchedule(sampleLms, 'linear multistep, order 4', REF),
  'k-dpm-2': onSchedule(sampleDpm2, 'DPM-Solver-2 inspired (2 model calls per step)', REF),
  'k-dpmpp-2s-ancestral': onSchedule(sampleDpmpp2sAncestral, 'DPM-Solver++(2S) ancestral (2 model calls per step)', REF_SDE),
  'k-dpm-fast': {
    objective: 'v',
    description: 'DPM-Solver-Fast: steps = model calls, σ_max → σ_min in −ln σ (ends at σ_min)',
    ...REF,
    progressSteps: (steps) => dpmFastOrders(steps).length,
    run: (denoise, x, s, opts) => sampleDpmFast(denoise, x, s.sigmaMin, s.sigmaMax, s.steps, opts),
  },
  'k-dpm-adaptive': {
    objective: 'v',
    description: 'DPM-Solver-23 with adaptive step size (rtol = atol = 0.01; ignores steps)',
    ...REF,
    progressSteps: () => null,
    run: (denoise, x, s, opts) => sampleDpmAdaptive(denoise, x, s.sigmaMin, s.sigmaMax, { ...opts, rtol: 0.01, atol: 0.01 }),
  },
  'k-euler': onSchedule(sampleEuler, 'Euler (ours: not dispatched by the reference)', OURS),
  'k-euler-ancestral': onSchedule(sampleEulerAncestral, 'Euler ancestral (ours: not dispatched by the reference)', { inReference: false, stochastic: true }),
  'dpmpp-2m': onSchedule(sampleDpmpp2m, 'DPM-Solver++(2M) (ours: not dispatched by the reference)', OURS),
  'rf-euler': {
    objective: 'rectified_flow',
    description: "Euler in t for rectified-flow models (the reference's sample_rf)",
    ...REF,
    progressSteps: perStep,
    run: sampleDiscreteEuler,
  },
} satisfies Record<string, SamplerEntry>;

/** A sampler's name, as `--sampler`, the HTTP API and `GenerateOptions.sampler` take it (e.g. 'dpmpp-3m-sde', 'rf-euler'). */
export type SamplerName = keyof typeof SAMPLER_REGISTRY;

/** Every sampler name, in the registry's order. */
export const SAMPLER_NAMES = Object.keys(SAMPLER_REGISTRY) as SamplerName[];

/** The sampler used when none is named, per model objective. */
export const DEFAULT_SAMPLERS: Readonly<Record<DiffusionObjective, SamplerName>> = { v: 'dpmpp-3m-sde', rectified_flow: 'rf-euler' };

/** Whether `name` is a registered sampler (of either objective). */
export function isSamplerName(name: string): name is SamplerName {
  return Object.hasOwn(SAMPLER_REGISTRY, name);
}

/** The samplers that can sample a model of `objective`, in the registry's order. */
export function samplersFor(objective: DiffusionObjective): SamplerName[] {
  return SAMPLER_NAMES.filter((n) => SAMPLER_REGISTRY[n].objective === objective);
}

const OBJECTIVE_LABEL: Record<DiffusionObjective, string> = { v: 'v-objective', rectified_flow: 'rectified-flow' };

/**
 * Why `name` cannot sample a model of `objective` (unknown, or made for the other objective), or null
 * when it can. `model` names the model in the message.
 */
export function samplerProblem(name: string, objective: DiffusionObjective, model = 'this model'): string | null {
  const valid = samplersFor(objective).join(', ');
  if (!isSamplerName(name)) return `unknown sampler "${name}"; valid: ${valid} (for ${model}, a ${OBJECTIVE_LABEL[objective]} model)`;
  const entry = SAMPLER_REGISTRY[name];
  if (entry.objective === objective) return null;
  return (
    `sampler "${name}" is for ${OBJECTIVE_LABEL[entry.objective]} models, but ${model} has diffusion_objective "${objective}"; ` +
    `use one of: ${valid}`
  );
}

/** The v-objective (k-diffusion) sampler `name`; throws for unknown names and rectified-flow samplers. */
export function kSampler(name: string): KSamplerEntry {
  const problem = samplerProblem(name, 'v', 'sample_k');
  if (problem) throw new Error(problem);
  return SAMPLER_REGISTRY[name as SamplerName] as KSamplerEntry;
}

/** A sampler as the HTTP API and the web page describe it. */
export interface SamplerDescription {
  /** The sampler's name. */
  name: SamplerName;
  /** The models it samples. */
  objective: DiffusionObjective;
  /** One line for help texts and the web page. */
  description: string;
  /** Whether the reference runs it (false: ours). */
  inReference: boolean;
  /** Whether it draws fresh noise every step (results depend on the seed beyond the initial noise). */
  stochastic: boolean;
}

/** Every sampler described, in the registry's order (GET /api/info). */
export function describeSamplers(): SamplerDescription[] {
  return SAMPLER_NAMES.map((name) => {
    const { objective, description, inReference, stochastic } = SAMPLER_REGISTRY[name];
    return { name, objective, description, inReference, stochastic };
  });
}

/** The `--sampler` help text: the names per objective, the defaults, and which ones the reference lacks. */
export function samplerHelp(): string {
  return DIFFUSION_OBJECTIVES.map((o) => {
    const label = (n: SamplerName) => (n === DEFAULT_SAMPLERS[o] ? `${n} (default)` : n);
    const theirs = samplersFor(o).filter((n) => SAMPLER_REGISTRY[n].inReference).map(label);
    const ours = samplersFor(o).filter((n) => !SAMPLER_REGISTRY[n].inReference).map(label);
    return `${OBJECTIVE_LABEL[o]} models: ${theirs.join(', ')}${ours.length ? `, and ours (not in the reference): ${ours.join(', ')}` : ''}`;
  }).join('; ');
}
