// NumberConditioner (docs/REFERENCE.md §4.7): clamp → normalise to [0, 1] → learned Fourier features → Linear.
// Keys: `embedder.embedding.0.weights [dim/2]`, `embedder.embedding.1.{weight [out, dim+1], bias}`.
import * as tf from '@tensorflow/tfjs';
import { Module, Sequential, type Parameter } from '../../../nn/module.ts';
import { Linear } from '../../../nn/layers.ts';
import { ConditionerInputError, type Conditioner, type ConditionerMedia, type MediaField, type PrepareOptions } from '../conditioner.ts';

/** The conditioner's config keys as the AudioX factory passes them (`output_dim` = `cond_dim`). */
export interface NumberConditionerConfig {
  output_dim: number;
  min_val?: number;
  max_val?: number;
}

/** `LearnedPositionalEmbedding(dim)`: u [B] → [u, sin(2π·u·w), cos(2π·u·w)] [B, dim+1] (sin before cos). */
export class LearnedPositionalEmbedding extends Module {
  readonly weights: Parameter;
  constructor(readonly dim: number) {
    super();
    if (dim % 2 !== 0) throw new Error(`LearnedPositionalEmbedding: dim must be even, got ${dim}`);
    this.weights = this.param('weights', [dim / 2]);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const u = x.reshape([-1, 1]);
      // Same float32 evaluation order as the reference: ((u·w)·2)·π.
      const freqs = u.mul(this.weights.value.reshape([1, -1])).mul(2).mul(Math.PI);
      return tf.concat([u, tf.sin(freqs), tf.cos(freqs)], -1);
    });
  }
}

/** `NumberEmbedder(features, dim=256)` = Sequential(LearnedPositionalEmbedding(dim), Linear(dim+1, features)). */
export class NumberEmbedder extends Module {
  readonly embedding: Sequential;
  constructor(
    readonly features: number,
    readonly dim = 256,
  ) {
    super();
    this.embedding = this.module('embedding', new Sequential(new LearnedPositionalEmbedding(dim), new Linear(dim + 1, features)));
  }
  /** [B] → [B, features] */
  forward(x: tf.Tensor): tf.Tensor {
    return this.embedding.forward(x);
  }
}

export type NumberConditioning = {
  /** [B, 1, output_dim] */
  embedding: tf.Tensor3D;
  /** ones [B, 1] (float) */
  mask: tf.Tensor2D;
};

const NUMBER_READS: readonly MediaField[] = ['byId', 'secondsStart', 'secondsTotal'];

/** Ids whose value, unless given by id, is a generation parameter. */
const DEFAULT_INPUTS: Readonly<Record<string, 'secondsStart' | 'secondsTotal'>> = { seconds_start: 'secondsStart', seconds_total: 'secondsTotal' };

export class NumberConditioner extends Module implements Conditioner<number[]> {
  readonly modality = 'number';
  readonly reads = NUMBER_READS;
  readonly minVal: number;
  readonly maxVal: number;
  readonly embedder: NumberEmbedder;
  constructor(config: NumberConditionerConfig) {
    super();
    this.minVal = config.min_val ?? 0;
    this.maxVal = config.max_val ?? 1;
    if (!(this.maxVal > this.minVal)) throw new Error(`NumberConditioner: max_val (${this.maxVal}) must exceed min_val (${this.minVal})`);
    this.embedder = this.module('embedder', new NumberEmbedder(config.output_dim));
  }

  static fromConfig(config: NumberConditionerConfig): NumberConditioner {
    return new NumberConditioner(config);
  }

  /** The value given for this id, else seconds_start / seconds_total from the generation, once per batch item. */
  async prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<number[]> {
    const given = media.byId[opts.id];
    const param = DEFAULT_INPUTS[opts.id];
    const v = given != null ? Number(given) : param ? media[param] : NaN;
    if (Number.isNaN(v)) throw new ConditionerInputError(`number conditioner "${opts.id}" has no input (known: seconds_start, seconds_total)`);
    return Array.from({ length: opts.batchSize }, () => v);
  }

  condition(input: number[]): NumberConditioning {
    if (!Array.isArray(input) || !input.every((s) => typeof s === 'number')) throw new Error('NumberConditioner expects a list of numbers');
    return this.forward(input);
  }

  disposeInput(): void {}

  /** Not shared across batch items (cheap to recompute). */
  reuseKey(): null {
    return null;
  }

  /** values (one per batch item) → `{embedding [B, 1, output_dim], mask ones [B, 1]}` */
  forward(values: number[]): NumberConditioning {
    if (!Array.isArray(values) || values.length === 0) throw new Error('NumberConditioner: expected a non-empty list of numbers');
    const floats = values.map((v) => Number(v));
    const bad = floats.findIndex((v) => Number.isNaN(v));
    if (bad >= 0) throw new Error(`NumberConditioner: value #${bad} (${String(values[bad])}) is not a number`);
    return tf.tidy(() => {
      const x = tf.tensor1d(floats, 'float32').clipByValue(this.minVal, this.maxVal);
      const u = x.sub(this.minVal).div(this.maxVal - this.minVal);
      const e = this.embedder.forward(u);
      return { embedding: e.expandDims(1) as tf.Tensor3D, mask: tf.ones([floats.length, 1]) as tf.Tensor2D };
    });
  }
}
