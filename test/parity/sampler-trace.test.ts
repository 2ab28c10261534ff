// The sampler runner checks more than the outputs: the model-call count, σ at every callback and
// k-dpm-adaptive's accept/reject decisions must be the reference's, or the fixture fails with a reason.
import { afterAll, describe, expect, it } from 'vitest';
import { checkTrace, type Trace } from '../../src/parity/runners/sampler.ts';
import { fixture } from '../helpers.ts';

describe('sampler runner trace check (k_dpm_adaptive)', () => {
  const fx = fixture('sampler/k_dpm_adaptive');
  afterAll(() => fx.file.close());
  const host = (n: string) => Array.from(fx.file.readHost(`intermediates/${n}`).data, Number);
  const reference = (): Trace => ({
    modelCalls: host('n_model_calls')[0],
    sigmas: Array.from({ length: 13 }, (_, i) => host(`sigma.${i}`)[0]),
    accepted: host('adaptive_accept').map(Boolean),
  });

  it("accepts the reference's own trace", () => {
    expect(() => checkTrace(fx, reference())).not.toThrow();
  });

  it('refuses a different accept/reject decision, naming the attempt', () => {
    const t = reference();
    t.accepted[5] = true;
    expect(() => checkTrace(fx, t)).toThrow(/step control differs from the reference at attempt 5/);
    const short = reference();
    short.accepted.pop();
    expect(() => checkTrace(fx, short)).toThrow(/at attempt 12: .*\(12 vs 13 attempts\)/);
  });

  it('refuses another model-call count or callback count', () => {
    expect(() => checkTrace(fx, { ...reference(), modelCalls: 38 })).toThrow(/38 model calls, the reference made 39/);
    const t = reference();
    t.sigmas.pop();
    expect(() => checkTrace(fx, t)).toThrow(/12 sampler callbacks, the reference made 13/);
  });
});
