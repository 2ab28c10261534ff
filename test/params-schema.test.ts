// One parameter schema: the CLI flags, the HTTP API's validation, the web form and README's table all come from it.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addGenerationOptions, generateOptions, type GenerationCliOptions } from '../src/cli/commands/generate.ts';
import { longFlag } from '../src/cli/param-options.ts';
import { resolveParams } from '../src/pipeline/generate.ts';
import { API_PARAM_NAMES, PARAMS, PARAM_NAMES, numberProblem, paramsMarkdownTable, type ParamSpec } from '../src/pipeline/params-schema.ts';
import { DIFFUSION_OBJECTIVES, samplersFor } from '../src/sampling/registry.ts';
import { BadRequestError, PARAM_FIELDS, parseJobParams } from '../src/server/params.ts';
import { REPO } from './helpers.ts';

const helpText = () => addGenerationOptions(new Command('generate'), { steps: PARAMS.steps.default }).helpInformation();
const parseCli = (...args: string[]) =>
  addGenerationOptions(new Command('generate').exitOverride(), { steps: PARAMS.steps.default }).parse(['-m', 'demo', ...args], { from: 'user' }).opts<GenerationCliOptions>();

describe('parameter schema', () => {
  it('every parameter with a flag is in `audiox generate --help`, with its default where commander fills it in', () => {
    const help = helpText();
    for (const n of PARAM_NAMES) {
      const p: ParamSpec = PARAMS[n];
      if (p.cli) expect(help, n).toContain(longFlag(p.cli));
    }
    const flat = help.replace(/\s+/g, ' ');
    for (const n of ['steps', 'cfgScale', 'sigmaMin', 'sigmaMax', 'batchSize'] as const) {
      expect(flat, n).toContain(`${PARAMS[n].help} (default: ${PARAMS[n].default})`);
    }
  });

  it('the CLI defaults are the schema defaults, resolved the same as the library', () => {
    const o = parseCli();
    const p = resolveParams({ name: 'demo', maxSeconds: 10 }, { ...generateOptions(o), seed: 1 });
    for (const n of ['secondsStart', 'secondsTotal', 'steps', 'cfgScale', 'cfgRescale', 'sigmaMin', 'sigmaMax', 'batchSize'] as const) {
      expect(p[n], n).toBe(PARAMS[n].default);
    }
    expect(p.sampler).toBe(PARAMS.sampler.defaults.v);
  });

  it('the server accepts exactly the API parameters and rejects out-of-range values with the schema message', () => {
    expect(Object.keys(PARAM_FIELDS).sort()).toEqual([...API_PARAM_NAMES].sort());
    for (const n of API_PARAM_NAMES) {
      const p: ParamSpec = PARAMS[n];
      if (p.kind !== 'int' && p.kind !== 'number' && p.kind !== 'position') continue;
      const bad = p.max + 1;
      expect(() => parseJobParams({ [n]: bad }), n).toThrow(BadRequestError);
      expect(() => parseJobParams({ [n]: bad }), n).toThrow(`"${n}" ${numberProblem(p, bad)}.`);
    }
    expect(() => resolveParams({ name: 'demo', maxSeconds: 10 }, { steps: PARAMS.steps.max + 1 })).toThrow(
      `steps ${numberProblem(PARAMS.steps, PARAMS.steps.max + 1)}`,
    );
    const d = parseJobParams({});
    for (const n of ['steps', 'cfgScale', 'sigmaMin', 'sigmaMax', 'batchSize', 'initNoiseLevel'] as const) expect(d[n], n).toBe(PARAMS[n].default);
  });

  it('every registered sampler is accepted by the CLI (for its objective) and by the server', () => {
    for (const objective of DIFFUSION_OBJECTIVES) {
      for (const s of samplersFor(objective)) {
        const o = generateOptions(parseCli('--sampler', s));
        expect(resolveParams({ name: 'm', maxSeconds: 10, objective }, o).sampler).toBe(s);
        expect(parseJobParams({ sampler: s }, objective).sampler).toBe(s);
      }
    }
  });

  it("the web form's fields are the schema's API parameters (plus uploads, model and seed)", () => {
    const html = fs.readFileSync(path.join(REPO, 'src/server/public/index.html'), 'utf8');
    const names = new Set([...html.matchAll(/\bname="([A-Za-z]+)"/g)].map((m) => m[1]).filter((n) => n !== 'viewport'));
    const uploads = ['video', 'image', 'audio', 'initAudio', 'model'];
    expect([...names].filter((n) => !uploads.includes(n)).sort()).toEqual([...API_PARAM_NAMES].sort());
    expect(fs.readFileSync(path.join(REPO, 'src/server/public/app.js'), 'utf8')).toMatch(/info\.fields/);
  });

  it("README's parameter table is the schema's (regenerate it from paramsMarkdownTable())", () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const m = /<!-- params-table:begin -->\n([\s\S]*?)\n<!-- params-table:end -->/.exec(readme);
    expect(m, 'README lacks the params-table markers').not.toBeNull();
    expect(m![1]).toBe(paramsMarkdownTable());
  });
});
