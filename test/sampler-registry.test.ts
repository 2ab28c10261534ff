// One sampler registry: the type, the CLI, the HTTP API and the page all list its names; samplers are
// offered per model objective with clear refusals otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { addGenerationOptions } from '../src/cli/commands/generate.ts';
import type { SamplerName as PublicSamplerName } from '../src/index.ts';
import { GenerateError, configLimits, resolveParams } from '../src/pipeline/generate.ts';
import type { SamplerName as PipelineSamplerName } from '../src/pipeline/types.ts';
import {
  DEFAULT_SAMPLERS,
  DIFFUSION_OBJECTIVES,
  describeSamplers,
  isSamplerName,
  SAMPLER_NAMES,
  SAMPLER_REGISTRY,
  samplerProblem,
  samplersFor,
} from '../src/sampling/registry.ts';
import { BadRequestError, parseJobParams } from '../src/server/params.ts';
import { REPO } from './helpers.ts';
import type { AudioXConfig } from '../src/models/config.ts';

/** The sampler_type branches of the reference's sample_k (audiox/inference/sampling.py). */
const REFERENCE_SAMPLE_K = ['k-heun', 'k-lms', 'k-dpmpp-2s-ancestral', 'k-dpm-2', 'k-dpm-fast', 'k-dpm-adaptive', 'dpmpp-2m-sde', 'dpmpp-3m-sde'];

describe('sampler registry', () => {
  it('every entry names its objective, describes itself, and each objective has a default of its own', () => {
    expect(SAMPLER_NAMES).toEqual(Object.keys(SAMPLER_REGISTRY));
    for (const n of SAMPLER_NAMES) {
      expect(DIFFUSION_OBJECTIVES).toContain(SAMPLER_REGISTRY[n].objective);
      expect(SAMPLER_REGISTRY[n].description.length).toBeGreaterThan(5);
    }
    for (const o of DIFFUSION_OBJECTIVES) expect(samplersFor(o)).toContain(DEFAULT_SAMPLERS[o]);
    expect(samplersFor('rectified_flow')).toEqual(['rf-euler']);
  });

  it("marks as ours exactly the samplers the reference's sample_k does not dispatch", () => {
    const v = samplersFor('v');
    expect(v.filter((n) => SAMPLER_REGISTRY[n].inReference).sort()).toEqual([...REFERENCE_SAMPLE_K].sort());
    expect(v.filter((n) => !SAMPLER_REGISTRY[n].inReference).sort()).toEqual(['dpmpp-2m', 'k-euler', 'k-euler-ancestral']);
    for (const n of ['dpmpp-2m', 'k-euler', 'k-euler-ancestral'] as const) expect(SAMPLER_REGISTRY[n].description).toMatch(/ours/);
  });

  it('the public and pipeline SamplerName types are the registry keys', () => {
    expectTypeOf<PipelineSamplerName>().toEqualTypeOf<keyof typeof SAMPLER_REGISTRY>();
    expectTypeOf<PublicSamplerName>().toEqualTypeOf<keyof typeof SAMPLER_REGISTRY>();
  });

  it('the CLI help lists every sampler with its objective and default', () => {
    const help = addGenerationOptions(new Command('generate'), { steps: 1 }).helpInformation().replace(/\s+/g, ' ');
    for (const n of SAMPLER_NAMES) expect(help).toContain(n);
    expect(help).toContain(
      'v-objective models: dpmpp-3m-sde (default), dpmpp-2m-sde, k-heun, k-lms, k-dpm-2, k-dpmpp-2s-ancestral, k-dpm-fast, ' +
        'k-dpm-adaptive, and ours (not in the reference): k-euler, k-euler-ancestral, dpmpp-2m; rectified-flow models: rf-euler (default)',
    );
  });

  it('the HTTP API accepts every registry name (k-dpmpp-2s-ancestral too) and describes them for the page', () => {
    for (const n of SAMPLER_NAMES) expect(parseJobParams({ sampler: n }).sampler).toBe(n);
    expect(() => parseJobParams({ sampler: 'euler-magic' })).toThrow(BadRequestError);
    expect(() => parseJobParams({ sampler: 'euler-magic' })).toThrow(`"sampler" must be one of ${SAMPLER_NAMES.join(', ')}`);
    expect(describeSamplers().map((s) => s.name)).toEqual(SAMPLER_NAMES);
    expect(JSON.parse(JSON.stringify(describeSamplers()))[0]).toEqual({
      name: 'dpmpp-3m-sde', objective: 'v', description: SAMPLER_REGISTRY['dpmpp-3m-sde'].description, inReference: true, stochastic: true,
    });
  });

  it('a request without a sampler gets its model objective default', () => {
    expect(parseJobParams({}).sampler).toBe('dpmpp-3m-sde');
    expect(parseJobParams({}, 'v').sampler).toBe('dpmpp-3m-sde');
    expect(parseJobParams({}, 'rectified_flow').sampler).toBe('rf-euler');
  });

  it('the page has no sampler list of its own (it builds the <select> from GET /api/info)', () => {
    const pub = path.join(REPO, 'src/server/public');
    for (const f of fs.readdirSync(pub)) {
      const text = fs.readFileSync(path.join(pub, f), 'utf8');
      for (const n of SAMPLER_NAMES) expect(text, `${f} mentions ${n}`).not.toContain(n);
    }
    expect(fs.readFileSync(path.join(pub, 'app.js'), 'utf8')).toMatch(/info\.samplers/);
  });
});

describe('samplers per model objective', () => {
  const v = { name: 'AudioX', maxSeconds: 10, objective: 'v' as const };
  const rf = { name: 'my-rf', maxSeconds: 10, objective: 'rectified_flow' as const };

  it('defaults follow the objective', () => {
    expect(resolveParams(v, {}).sampler).toBe('dpmpp-3m-sde');
    expect(resolveParams(rf, {}).sampler).toBe('rf-euler');
    expect(resolveParams({ name: 'old', maxSeconds: 10 }, {}).sampler).toBe('dpmpp-3m-sde'); // objective defaults to v
    expect(resolveParams(v, { sampler: 'k-dpm-adaptive' }).sampler).toBe('k-dpm-adaptive');
  });

  it('a mismatch is refused naming the model objective and the valid samplers', () => {
    expect(() => resolveParams(v, { sampler: 'rf-euler' })).toThrow(GenerateError);
    expect(() => resolveParams(v, { sampler: 'rf-euler' })).toThrow(
      `sampler "rf-euler" is for rectified-flow models, but model "AudioX" has diffusion_objective "v"; use one of: ${samplersFor('v').join(', ')}`,
    );
    expect(() => resolveParams(rf, { sampler: 'k-heun' })).toThrow(
      'sampler "k-heun" is for v-objective models, but model "my-rf" has diffusion_objective "rectified_flow"; use one of: rf-euler',
    );
    expect(() => resolveParams(rf, { sampler: 'nope' as never })).toThrow(
      'unknown sampler "nope"; valid: rf-euler (for model "my-rf", a rectified-flow model)',
    );
  });

  it('samplerProblem / isSamplerName', () => {
    expect(samplerProblem('k-dpm-fast', 'v')).toBeNull();
    expect(samplerProblem('rf-euler', 'rectified_flow')).toBeNull();
    expect(isSamplerName('k-dpm-fast')).toBe(true);
    expect(isSamplerName('toString')).toBe(false);
  });

  it("the objective comes from the config's diffusion_objective (default v); an unknown one is refused", () => {
    const config = (objective?: string) =>
      ({ sample_rate: 44100, sample_size: 441000, model: { diffusion: { diffusion_objective: objective } } }) as unknown as AudioXConfig;
    expect(configLimits('a', config())).toEqual({ name: 'a', maxSeconds: 10, minSeconds: 2048 / 44100, objective: 'v' });
    expect(configLimits('b', config('rectified_flow')).objective).toBe('rectified_flow');
    expect(() => configLimits('c', config('eps'))).toThrow('model "c": diffusion_objective "eps" is not supported (use "v" or "rectified_flow")');
  });
});
