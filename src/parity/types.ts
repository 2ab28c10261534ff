import type * as tf from '@tensorflow/tfjs';
import type { SafetensorsFile, TensorSource } from '../io/safetensors.ts';

/** One fixture file: tensors `params/…`, `inputs/…`, `outputs/…`, `intermediates/…` plus metadata. */
export interface Fixture {
  /** Absolute path of the .safetensors file. */
  path: string;
  /** Path relative to the fixture root, with the .safetensors suffix. */
  rel: string;
  /** The open file (closed by the harness after the run). */
  file: SafetensorsFile;
  /** The `component` metadata: which runner runs it (e.g. `dit`, `vae_decode`). */
  component: string;
  /** The `case` metadata (default: the file's base name). */
  case: string;
  /** Parsed `config` metadata (AudioX config key names), `{}` when absent. */
  config: Record<string, unknown>;
  /** Parsed `args` metadata, `{}` when absent. */
  args: Record<string, unknown>;
  /** The `reference` metadata: where in the reference the outputs come from ('' when absent). */
  reference: string;
  /** The `notes` metadata ('' when absent). */
  notes: string;
  /** Absolute tolerance (metadata `atol`, default 1e-5). */
  atol: number;
  /** Relative tolerance (metadata `rtol`, default 1e-4). */
  rtol: number;
  /** Every metadata entry as stored. */
  metadata: Record<string, string>;
  /** The module's weights: a view of `params/…` with the prefix removed. */
  params: TensorSource;
  /** Whether the file holds a tensor of this full name (e.g. `inputs/mask`). */
  has(name: string): boolean;
  /** Reads a tensor by full name (e.g. `inputs/x`); float dtypes become float32, integers int32. */
  tensor(name: string): tf.Tensor;
  /** Names under a group (e.g. `inputs`), without the group prefix. */
  names(group: 'params' | 'inputs' | 'outputs' | 'intermediates'): string[];
}

/** Computed outputs keyed like the fixture's `outputs/<name>` (without the prefix). */
export interface ComputedOutputs {
  /** The tensors, owned by the harness once returned (it disposes them). */
  outputs: Record<string, tf.Tensor>;
}

/** A runner that checks on its own (e.g. exact byte comparison) instead of returning tensors. */
export interface SelfCheckedResult {
  /** Whether the check passed. */
  pass: boolean;
  /** What failed (or a note). */
  message?: string;
  /** Largest absolute difference found. */
  maxAbs: number;
  /** Largest relative difference found. */
  maxRel: number;
}

/** What a runner returns: outputs for the harness to compare, or its own verdict. */
export type RunnerResult = ComputedOutputs | SelfCheckedResult;

/** Runs the fixtures of one component through the code users run. */
export interface Runner {
  /** The fixture `component` it runs. */
  component: string;
  /** Computes the fixture's outputs from its params and inputs (or checks them itself); may throw. */
  run(fx: Fixture): Promise<RunnerResult>;
}

/** One fixture's verdict (what `audiox parity --json` prints). */
export interface FixtureResult {
  /** The fixture's path relative to the fixture root. */
  path: string;
  /** Its component ('?' when the file could not be opened). */
  component: string;
  /** Its case ('?' when the file could not be opened). */
  case: string;
  /** Whether every output is within tolerance. */
  status: 'pass' | 'fail';
  /** Largest absolute difference over the outputs; null when nothing was compared. */
  max_abs: number | null;
  /** Largest relative difference (|a − e| / max(|e|, atol)); null when nothing was compared. */
  max_rel: number | null;
  /** Why it failed ('' on a pass). */
  message: string;
}
