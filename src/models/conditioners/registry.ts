// The conditioner types a model config may name (`model.conditioning.configs[*].type`). Each modality
// folder exports its factories; a new modality adds its folder and one line to BUILT_IN below. Code outside
// the project (or a test) can add a type with registerConditioner().
import type { ConditionerConfigEntry } from '../config.ts';
import { AUDIO_CONDITIONERS } from './audio/index.ts';
import type { Conditioner } from './conditioner.ts';
import { NUMBER_CONDITIONERS } from './number/index.ts';
import { TEXT_CONDITIONERS } from './text/index.ts';
import { VIDEO_CONDITIONERS } from './video/index.ts';

/** Builds the conditioner of a config entry; its outputs must be `condDim` wide (the conditioning's `cond_dim`). */
export type ConditionerFactory = (entry: ConditionerConfigEntry, condDim: number) => Conditioner;

const BUILT_IN: readonly Readonly<Record<string, ConditionerFactory>>[] = [VIDEO_CONDITIONERS, TEXT_CONDITIONERS, AUDIO_CONDITIONERS, NUMBER_CONDITIONERS];

const factories = new Map<string, ConditionerFactory>(BUILT_IN.flatMap((group) => Object.entries(group)));

/** Adds a conditioner type. Throws if the type is taken (unregister it first to replace it). */
export function registerConditioner(type: string, factory: ConditionerFactory): void {
  if (factories.has(type)) throw new Error(`conditioner type "${type}" is already registered`);
  factories.set(type, factory);
}

/** Removes a conditioner type; returns whether it was registered. */
export function unregisterConditioner(type: string): boolean {
  return factories.delete(type);
}

/** The registered types, in registration order. */
export function conditionerTypes(): string[] {
  return [...factories.keys()];
}

export function buildConditioner(entry: ConditionerConfigEntry, condDim: number): Conditioner {
  const factory = factories.get(entry.type);
  if (!factory) {
    throw new Error(`conditioner "${entry.id}": type "${entry.type}" is not supported (supported: ${conditionerTypes().join(', ')})`);
  }
  return factory(entry, condDim);
}
