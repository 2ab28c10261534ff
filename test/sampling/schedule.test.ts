import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { linspaceF32, polyexponentialSigmas, rectifiedFlowTimesteps } from '../../src/sampling/schedule.ts';
import { sampleKSigmas, sampleRfTimesteps } from '../../src/sampling/sample.ts';
import { FIXTURES } from '../helpers.ts';

const dir = path.join(FIXTURES, 'sampler');
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')) : [];

describe('schedules', () => {
  it('polyexponential: hand values, trailing 0, N = 1, ρ ≠ 1', () => {
    expect(polyexponentialSigmas(1, 0.3, 500)).toEqual([Math.fround(500.00006), 0]);
    const s = polyexponentialSigmas(3, 0.5, 50, 2); // ramp² = [1, 0.25, 0]
    expect(s).toHaveLength(4);
    expect(s[0]).toBeCloseTo(50, 4);
    expect(s[1]).toBeCloseTo(Math.exp(0.25 * Math.log(100) + Math.log(0.5)), 5);
    expect(s[2]).toBeCloseTo(0.5, 6);
    expect(s[3]).toBe(0);
    // ρ = 1 is geometric
    const g = polyexponentialSigmas(5, 1, 16);
    for (let i = 0; i < 3; i++) expect(g[i] / g[i + 1]).toBeCloseTo(2, 5);
  });

  it('rectified flow: linspace(min(σ_max, 1), 0, steps + 1)', () => {
    expect(rectifiedFlowTimesteps(4, 500)).toEqual([1, 0.75, 0.5, 0.25, 0]);
    expect(rectifiedFlowTimesteps(2, 0.5)).toEqual([0.5, 0.25, 0]);
    expect(linspaceF32(1, 0, 1)).toEqual([1]);
  });

  it('bad schedule arguments are clear errors', () => {
    expect(() => polyexponentialSigmas(0, 0.3, 500)).toThrow(/steps must be a positive integer/);
    expect(() => polyexponentialSigmas(8, 0, 500)).toThrow(/must be > 0/);
  });

  it('matches outputs/sigmas of every sampler fixture', () => {
    expect(files.length, `no sampler fixtures under ${dir}: run npm run fixtures:sync`).toBeGreaterThan(0);
    for (const f of files) {
      const st = SafetensorsFile.open(path.join(dir, f));
      try {
        const args = JSON.parse(st.metadata.args) as Record<string, number | string | undefined>;
        const num = (k: string) => (args[k] === undefined ? undefined : Number(args[k]));
        const expected = st.readHost('outputs/sigmas').data;
        const actual =
          args.objective === 'rectified_flow'
            ? sampleRfTimesteps({ steps: num('steps'), sigmaMax: num('sigma_max') })
            : sampleKSigmas({
                steps: num('steps'),
                sigmaMin: num('sigma_min'),
                sigmaMax: num('sigma_max'),
                rho: num('rho'),
                initNoiseLevel: num('init_noise_level'),
              });
        expect(actual.length, f).toBe(expected.length);
        // torch's vectorised float32 exp may differ from the correctly rounded one by 1 ulp
        actual.forEach((v, i) => expect(Math.abs(v - expected[i]), `${f}[${i}]`).toBeLessThanOrEqual(2e-7 * Math.abs(expected[i])));
        expect(actual[actual.length - 1]).toBe(0);
      } finally {
        st.close();
      }
    }
  });
});
