// MultiConditioner (docs/REFERENCE.md §4.1): one conditioner per config entry under `conditioners.<id>`, built
// with output_dim = cond_dim, called in config order on the per-id inputs of a batch.
import * as tf from '@tensorflow/tfjs';
import { ModuleDict, Module } from '../../nn/module.ts';
import type { ConditionerConfigEntry } from '../config.ts';
import type { ConditionerOutput, ConditionerOutputs } from '../conditioning.ts';
import type { ConditionContext, Conditioner, ConditionerMedia, PrepareOptions } from './conditioner.ts';
import { buildConditioner } from './registry.ts';

/** Prepared inputs by conditioner id (each conditioner's own input type). */
export type ConditionerInputs = Partial<Record<string, unknown>>;

export class MultiConditioner extends Module {
  readonly conditioners: ModuleDict<Conditioner>;
  readonly entries: ConditionerConfigEntry[];

  constructor(
    entries: ConditionerConfigEntry[],
    readonly condDim: number,
  ) {
    super();
    this.entries = entries;
    this.conditioners = this.module(
      'conditioners',
      new ModuleDict<Conditioner>(entries.map((e) => [e.id, buildConditioner(e, condDim)] as [string, Conditioner])),
    );
  }

  get ids(): string[] {
    return this.entries.map((e) => e.id);
  }

  get(id: string): Conditioner {
    const c = this.conditioners.get(id);
    if (!c) throw new Error(`no conditioner "${id}" (have: ${this.ids.join(', ')})`);
    return c;
  }

  /**
   * Each conditioner's input for these media (config order), except the ids in `skip`. The tensors are
   * the caller's (disposeInputs); on an error those prepared so far are disposed.
   */
  async prepareInputs(
    media: ConditionerMedia,
    opts: Omit<PrepareOptions, 'id'>,
    skip: ReadonlySet<string> = new Set(),
  ): Promise<Record<string, unknown>> {
    const inputs: Record<string, unknown> = {};
    try {
      for (const id of this.ids) {
        if (!skip.has(id)) inputs[id] = await this.get(id).prepareInput(media, { ...opts, id });
      }
    } catch (e) {
      this.disposeInputs(inputs);
      throw e;
    }
    return inputs;
  }

  disposeInputs(inputs: ConditionerInputs): void {
    for (const [id, input] of Object.entries(inputs)) if (input !== undefined) this.get(id).disposeInput(input);
  }

  /** Runs one conditioner on its prepared input. */
  condition(id: string, input: unknown, ctx: ConditionContext): ConditionerOutput {
    return this.get(id).condition(input, ctx);
  }

  /**
   * Runs every conditioner (config order) whose input is given; `precomputed` outputs are used as
   * they are (those conditioners are skipped). Returns new tensors owned by the caller.
   */
  forward(
    inputs: ConditionerInputs,
    ctx: ConditionContext,
    precomputed: ConditionerOutputs = {},
  ): ConditionerOutputs {
    const out: ConditionerOutputs = {};
    try {
      for (const id of this.ids) {
        if (precomputed[id]) {
          out[id] = { embedding: precomputed[id].embedding.clone(), mask: precomputed[id].mask.clone() };
          continue;
        }
        const input = inputs[id];
        if (input === undefined) throw new Error(`no input for conditioner "${id}"`);
        out[id] = this.condition(id, input, ctx);
      }
    } catch (e) {
      for (const c of Object.values(out)) tf.dispose([c.embedding, c.mask]);
      throw e;
    }
    return out;
  }
}
