// `audiox generate --sampler`: a sampler of the other diffusion objective or an unknown one is refused
// before the model loads (exit 1, nothing written); k-dpm-fast and k-dpm-adaptive run with honest progress.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDir, tempDir } from '../pipeline/media-helpers.ts';
import { runCli } from './run-cli.ts';

let dir: string;
beforeAll(() => {
  dir = tempDir('cli-samplers');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const gen = (name: string, ...args: string[]) => {
  const out = path.join(dir, name);
  fs.mkdirSync(out);
  return { out, run: runCli(['generate', '--model', 'demo', '--prompt', 'x', '--seconds', '0.5', '--seed', '1', '-o', path.join(out, 'o.wav'), ...args]) };
};

describe('audiox generate --sampler', () => {
  it('refuses rf-euler on the v-objective demo model and unknown names, listing the valid samplers', async () => {
    for (const [name, sampler, re] of [
      ['mismatch', 'rf-euler', /audiox: sampler "rf-euler" is for rectified-flow models, but model "demo" has diffusion_objective "v"; use one of: dpmpp-3m-sde, .*k-dpm-adaptive/],
      ['unknown', 'k-dpm-faster', /audiox: unknown sampler "k-dpm-faster"; valid: dpmpp-3m-sde, .*\(for model "demo", a v-objective model\)/],
    ] as const) {
      const { out, run } = gen(name, '--sampler', sampler);
      const r = await run;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/loading model/);
      expect(listDir(out)).toEqual([]);
    }
  });

  it('k-dpm-fast: --steps model calls in DPM-Solver steps (3 calls → 2 steps)', async () => {
    const { out, run } = gen('fast', '--sampler', 'k-dpm-fast', '--steps', '3');
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sampling: step 2\/2/);
    expect(r.stdout).toMatch(/sampler: k-dpm-fast/);
    expect(listDir(out)).toEqual(['o.wav']);
  }, 120_000);

  it('k-dpm-adaptive: progress as a percentage of the noise range (no step total)', async () => {
    const { out, run } = gen('adaptive', '--sampler', 'k-dpm-adaptive', '--sigma-min', '0.57', '--sigma-max', '0.6', '--cfg', '1');
    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sampling: step \d+ \(100%\)/);
    expect(r.stderr).not.toMatch(/sampling: step \d+\//);
    expect(listDir(out)).toEqual(['o.wav']);
  }, 120_000);
});
