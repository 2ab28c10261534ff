import type * as tf from '@tensorflow/tfjs';
import type { SafetensorsFile, TensorSource } from '../io/safetensors.ts';

/** One fixture file: tensors `params/…`, `inputs/…`, `outputs/…`, `intermediates/…` plus metadata. */
export interface Fixture {
  /** Absolute path of the .safetensors file. */
  path: string;
  /** Path relative to the fixture root, with the .safetensors suffix. */
  rel: string;
  file: SafetensorsFile;
  component: string;
  case: string;
  /** Parsed `config` metadata (AudioX config key names), `{}` when absent. */
  config: Record<string, unknown>;
  /** Parsed `args` metadata, `{}` when absent. */
  args: Record<string, unknown>;
  reference: string;
  notes: string;
  atol: number;
  rtol: number;
  metadata: Record<string, string>;
  /** The module's weights: a view of `params/…` with the prefix removed. */
  params: TensorSource;
  has(name: string): boolean;
  /** Reads a tensor by full name (e.g. `inputs/x`); float dtypes become float32, integers int32. */
  tensor(name: string): tf.Tensor;
  /** Names under a group (e.g. `inputs`), without the group prefix. */
  names(group: 'params' | 'inputs' | 'outputs' | 'intermediates'): string[];
}

/** Computed outputs keyed like the fixture's `outputs/<name>` (without the prefix). */
export interface ComputedOutputs {
  outputs: Record<string, tf.Tensor>;
}

/** A runner that checks on its own (e.g. exact byte comparison) instead of returning tensors. */
export interface SelfCheckedResult {
  pass: boolean;
  message?: string;
  maxAbs: number;
  maxRel: number;
}

export type RunnerResult = ComputedOutputs | SelfCheckedResult;

export interface Runner {
  component: string;
  run(fx: Fixture): Promise<RunnerResult>;
}

export interface FixtureResult {
  path: string;
  component: string;
  case: string;
  status: 'pass' | 'fail';
  max_abs: number | null;
  max_rel: number | null;
  message: string;
}
