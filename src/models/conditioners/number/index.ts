// The number modality: `number` (seconds_start, seconds_total, …).
import type { ConditionerFactory } from '../registry.ts';
import { NumberConditioner, type NumberConditionerConfig } from './number.ts';

export const NUMBER_CONDITIONERS: Readonly<Record<string, ConditionerFactory>> = {
  number: (entry, condDim) => NumberConditioner.fromConfig({ ...(entry.config ?? {}), output_dim: condDim } as NumberConditionerConfig),
};
