// The text modality: `t5`.
import type { ConditionerFactory } from '../registry.ts';
import { T5Conditioner, type T5ConditionerConfig } from './t5.ts';

export const TEXT_CONDITIONERS: Readonly<Record<string, ConditionerFactory>> = {
  t5: (entry, condDim) => T5Conditioner.fromConfig({ ...(entry.config ?? {}), output_dim: condDim } as T5ConditionerConfig),
};
