// Samplers over the HTTP API and on the page: the registry's list in GET /api/info with each model's
// objective, the default sampler per objective, a clear 400 for a sampler the model cannot use, honest
// progress for k-dpm-fast / k-dpm-adaptive (steps null, fraction), and the page's <select> per model.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, type JobContext, type JobResult, type RunJob } from '../../src/server/jobs.ts';
import { parseJobParams } from '../../src/server/params.ts';
import { createPipelineRunner, type PipelineRunner } from '../../src/server/pipeline-runner.ts';
import { createServer, type AudioxServer } from '../../src/server/server.ts';
import { SAMPLER_NAMES, samplersFor } from '../../src/sampling/registry.ts';

const OBJECTIVES = { demo: 'v', 'rf-model': 'rectified_flow' } as const;

/** A runner that reports like generate() does for an adaptive sampler: steps null, fraction rising. */
const fakeRunner: RunJob = async (ctx: JobContext): Promise<JobResult> => {
  await sleep(300, undefined, { signal: ctx.signal }); // lets the test subscribe to the events first
  for (const [step, fraction] of [[1, 0.25], [2, 0.5], [3, 1]]) {
    await sleep(20, undefined, { signal: ctx.signal });
    ctx.progress({ stage: 'sampling', step, steps: null, fraction });
  }
  return { items: [], seed: ctx.params.seed, sampleRate: 44100, params: { ...ctx.params } };
};

let tmp = '';
let srv: AudioxServer;
let real: AudioxServer;
let runner: PipelineRunner;
let base = '';
let realBase = '';

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-samplers-test-'));
  srv = await createServer({
    runJob: fakeRunner,
    models: ['demo', 'rf-model'],
    objectiveOf: (m) => OBJECTIVES[m as keyof typeof OBJECTIVES],
    outputDir: path.join(tmp, 'out'),
    tempRoot: tmp,
  });
  base = await srv.listen('127.0.0.1', 0);
  runner = createPipelineRunner({ outputDir: path.join(tmp, 'out2') });
  real = await createServer({ runJob: runner.runJob, validate: runner.validate, objectiveOf: runner.objectiveOf, models: ['demo'], outputDir: path.join(tmp, 'out2'), tempRoot: tmp });
  realBase = await real.listen('127.0.0.1', 0);
});

afterAll(async () => {
  await srv?.close();
  await real?.close();
  runner?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const post = (b: string, body: unknown) =>
  fetch(`${b}/api/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('samplers over the API', () => {
  it('GET /api/info lists the registry, each model objective and the defaults', async () => {
    const info = await (await fetch(`${base}/api/info`)).json();
    expect(info.samplers.map((s: { name: string }) => s.name)).toEqual(SAMPLER_NAMES);
    expect(info.samplers.find((s: { name: string }) => s.name === 'k-euler')).toMatchObject({ objective: 'v', inReference: false });
    expect(info.modelObjectives).toEqual({ demo: 'v', 'rf-model': 'rectified_flow' });
    expect(info.defaultSamplers).toEqual({ v: 'dpmpp-3m-sde', rectified_flow: 'rf-euler' });
  });

  it("a request without a sampler gets its model's default; the CLI's samplers are all accepted", async () => {
    let r = await post(base, { model: 'rf-model', steps: 3 });
    expect(r.status).toBe(202);
    expect((await r.json()).params.sampler).toBe('rf-euler');
    r = await post(base, { model: 'demo', steps: 3, sampler: 'k-dpmpp-2s-ancestral' });
    expect(r.status).toBe(202);
  });

  it('the real pipeline refuses a sampler of the other objective (400, before queueing), naming the valid ones', async () => {
    for (const [sampler, re] of [
      ['rf-euler', /sampler "rf-euler" is for rectified-flow models, but model "demo" has diffusion_objective "v"; use one of: dpmpp-3m-sde, /],
      ['euler-magic', /"sampler" must be one of dpmpp-3m-sde, /],
    ] as const) {
      const r = await post(realBase, { sampler, steps: 2, secondsTotal: 0.5 });
      expect(r.status, sampler).toBe(400);
      expect((await r.json()).error).toMatch(re);
    }
    expect(real.queue.stats.waiting).toBe(0);
    expect(runner.objectiveOf('demo')).toBe('v');
    expect(runner.objectiveOf('/no/such/model')).toBeUndefined();
  });

  it('progress without a step count: steps null, the fraction drives the ETA', async () => {
    const r = await post(base, { model: 'demo', steps: 8, sampler: 'k-dpm-adaptive' });
    const job = await r.json();
    expect(job.progress === null || job.progress.steps === null).toBe(true);
    const text = await (await fetch(`${base}/api/jobs/${job.id}/events`)).text();
    const progress = text
      .split('\n\n')
      .filter((b) => b.startsWith('event: progress'))
      .map((b) => JSON.parse(b.split('\n')[1].slice('data: '.length)).progress);
    expect(progress.map((p) => [p.step, p.steps, p.fraction])).toEqual([[1, null, 0.25], [2, null, 0.5], [3, null, 1]]);
    expect(progress[1].etaMs).toBeGreaterThan(0);
    expect(progress[2].etaMs).toBe(0);
  });

  it('the queue starts a job with the step count its sampler will report', async () => {
    const seen: (number | null)[] = [];
    const q: JobQueue = new JobQueue({
      run: async (ctx) => {
        seen.push(q.get(ctx.id)!.progress!.steps);
        return { items: [], seed: 0, sampleRate: 1, params: {} };
      },
      limit: 4,
    });
    for (const sampler of ['k-heun', 'k-dpm-fast', 'k-dpm-adaptive']) q.submit('demo', parseJobParams({ sampler, steps: 8 }), {});
    for (let i = 0; seen.length < 3 && i < 500; i++) await sleep(10);
    expect(seen).toEqual([8, 3, null]); // k-dpm-fast: 8 model calls in 3 DPM-Solver steps
  });

  it('k-dpm-adaptive on the demo model through the real pipeline: honest progress, then done', async () => {
    // A short σ range keeps the attempts few (the demo model's untrained weights make the step control busy).
    const r = await post(realBase, { sampler: 'k-dpm-adaptive', steps: 4, secondsTotal: 0.5, seed: 1, cfgScale: 1, sigmaMin: 0.57, sigmaMax: 0.6 });
    expect(r.status).toBe(202);
    const job = await r.json();
    const text = await (await fetch(`${realBase}/api/jobs/${job.id}/events`)).text();
    const progress = text
      .split('\n\n')
      .filter((b) => b.startsWith('event: progress'))
      .map((b) => JSON.parse(b.split('\n')[1].slice('data: '.length)).progress)
      .filter((p) => p.stage === 'sampling' || p.stage === 'decoding');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.steps === null)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ stage: 'decoding', fraction: 1 });
    const final = await (await fetch(`${realBase}/api/jobs/${job.id}`)).json();
    expect(final.status, final.error).toBe('done');
    expect(final.result.params.sampler).toBe('k-dpm-adaptive');
  }, 120_000);
});

const CHROMIUM = process.env.AUDIOX_CHROMIUM ?? '/usr/bin/chromium';

describe.skipIf(!fs.existsSync(CHROMIUM) && process.env.AUDIOX_E2E !== '1')('the page offers the samplers of the chosen model', () => {
  let browser: Browser;
  afterAll(async () => browser?.close());

  it('v model: the v samplers, default dpmpp-3m-sde; rectified-flow model: rf-euler only', async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    const page = await browser.newPage();
    await page.goto(base);
    await page.waitForSelector('body[data-state="idle"]');
    const options = () => page.$$eval('#sampler option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(await options()).toEqual(samplersFor('v'));
    expect(await page.inputValue('#sampler')).toBe('dpmpp-3m-sde');
    expect(await page.textContent('#sampler option[value="k-euler"]')).toBe('k-euler (ours)');
    await page.selectOption('#sampler', 'k-dpm-fast');
    await page.selectOption('#model', 'rf-model');
    expect(await options()).toEqual(['rf-euler']);
    expect(await page.inputValue('#sampler')).toBe('rf-euler');
    await page.selectOption('#model', 'demo');
    expect(await options()).toEqual(samplersFor('v'));
    expect(await page.inputValue('#sampler')).toBe('dpmpp-3m-sde');
  }, 60_000);
});
