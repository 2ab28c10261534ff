// `conditioners` fixtures of NumberConditioner (type `number`), dispatched by ../conditioners.ts.
import { NumberConditioner } from '../../../models/conditioners/number/number.ts';
import type { Fixture, RunnerResult } from '../../types.ts';
import { conditionerEntry } from '../conditioners.ts';

export async function runNumberCase(fx: Fixture): Promise<RunnerResult> {
  const { config } = conditionerEntry(fx, 'number');
  const m = NumberConditioner.fromConfig(config as { output_dim: number });
  try {
    m.loadStateDict(fx.params);
    const values = fx.tensor('inputs/values');
    const host = Array.from(await values.data());
    values.dispose();
    const { embedding, mask } = m.forward(host);
    return { outputs: { embedding, mask } };
  } finally {
    m.dispose();
  }
}
