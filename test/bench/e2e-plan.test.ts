// The pure parts of `npm run bench -- --e2e` and the bench tables (no model is built or run here).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { conditionerTokens, e2eColumns, e2eRows, e2eShapes, parseE2eArgs, stepTimes, totalMs, type E2eConfig, type OursE2e, type PhaseTimes } from '../../bench/e2e-plan.ts';
import { fmtMs, fmtRate, fmtRatio, table } from '../../bench/table.ts';

describe('parseE2eArgs', () => {
  it('defaults to a 10 s, 25-step AudioX-MAF generation with f16 weights', () => {
    expect(parseE2eArgs(['--e2e'], '/tmp/h')).toEqual({
      model: 'AudioX-MAF',
      steps: 25,
      seconds: 10,
      dtype: 'F16',
      home: '/tmp/h',
      backends: [],
      markdown: false,
    });
  });

  it('reads every option', () => {
    const o = parseE2eArgs(['--e2e', '--steps', '3', '--seconds', '4.5', '--dtype', 'F32', '--home', '/x', '--backend', 'tensorflow', '--markdown'], '/tmp/h');
    expect(o).toMatchObject({ steps: 3, seconds: 4.5, dtype: 'F32', home: '/x', backends: ['tensorflow'], markdown: true });
    expect(parseE2eArgs(['--e2e', '--backend', 'wasm, tensorflow'], '/tmp/h').backends).toEqual(['wasm', 'tensorflow']);
  });

  it.each([
    [['--steps', '0'], /--steps must be a positive integer/],
    [['--steps', '2.5'], /--steps must be a positive integer/],
    [['--seconds', '11'], /--seconds must be in \(0, 10\]/],
    [['--seconds', 'x'], /--seconds must be in/],
    [['--dtype', 'bf16'], /--dtype must be f16 or f32/],
    [['--model', 'AudioX'], /AudioX-MAF video-to-audio only/],
    [['--steps'], /--steps needs a value/],
    [['--home', '--markdown'], /--home needs a value/],
    [['--backend', 'wasm,wasm'], /--backend lists a backend twice/],
  ])('rejects %j with a clear error', (args, msg) => {
    expect(() => parseE2eArgs(['--e2e', ...args], '/tmp/h')).toThrow(msg);
  });
});

describe('e2eShapes', () => {
  const config = JSON.parse(fs.readFileSync('configs/AudioX-MAF.assumed.json', 'utf8')) as E2eConfig;

  it('gives the AudioX-MAF shapes: 236 latents, 128 video + 128 text + 1723 mel tokens, the decoded head', () => {
    // 485100 / 2048 → 236 latents; 10 s → ⌈441000 / 2048⌉ = 216 latents + the receptive radius + 1.
    expect(e2eShapes(config, 10, 2048, 3.2)).toEqual({ latents: 236, context: 128 + 128 + 1723, decodeLatents: 216 + 4 + 1 });
  });

  it('decodes at most the whole window', () => {
    expect(e2eShapes(config, 10, 2048, 100).decodeLatents).toBe(236);
    expect(e2eShapes(config, 1, 2048, 0).decodeLatents).toBe(Math.ceil(44100 / 2048) + 1);
  });

  it('counts tokens per conditioner type and fails on an unknown one', () => {
    expect(conditionerTokens({ type: 'mel_spec', config: { hop_length: 512 } }, 44100)).toBe(1 + Math.floor(441000 / 512));
    expect(conditionerTokens({ type: 't5', config: { max_length: 64 } }, 44100)).toBe(64);
    expect(conditionerTokens({ type: 'clip', config: { out_features: 7 } }, 44100)).toBe(128);
    expect(() => conditionerTokens({ type: 'number' }, 44100)).toThrow(/no token count for a "number" conditioner/);
    const bad = { ...config, model: { ...config.model, diffusion: { cross_attention_cond_ids: ['nope'] } } };
    expect(() => e2eShapes(bad, 10, 2048, 0)).toThrow(/"nope" has no conditioner/);
  });
});

describe('phase assembly', () => {
  const ours: OursE2e = { loadMs: 14_000, conditioningMs: 50_000, samplingMs: 80_000, stepMs: [39_000, 41_000], decodeMs: 15_000, totalMs: 146_000 };
  const torch: PhaseTimes = { loadMs: 7_000, conditioningMs: 40_000, stepMs: [20_000, 20_000], decodeMs: 10_000 };

  it('derives step times from the progress reports', () => {
    expect(stepTimes([60_000, 100_000, 130_000], 50_000)).toEqual([10_000, 40_000, 30_000]);
    expect(stepTimes([], 5)).toEqual([]);
  });

  it('totals: ours = load + generate()’s total, torch = the sum of its phases', () => {
    expect(totalMs(ours)).toBe(160_000);
    expect(totalMs(torch)).toBe(7_000 + 40_000 + 40_000 + 10_000);
  });

  it('gives one row per phase with the ratio ours / torch', () => {
    const rows = e2eRows(ours, torch);
    expect(rows.map((r) => r[0])).toEqual(['load', 'conditioning', 'sampling (2 steps)', '  per step', 'decode', 'total']);
    expect(rows[0]).toEqual(['load', '14.0 s', '7000 ms', '2.00×']);
    expect(rows[2]).toEqual(['sampling (2 steps)', '80.0 s', '40.0 s', '2.00×']);
    expect(rows[3]).toEqual(['  per step', '40.0 s', '20.0 s', '2.00×']); // 39–41 s is within 5 %: no range
    expect(rows[5]).toEqual(['total', '160.0 s', '97.0 s', `${(160 / 97).toFixed(2)}×`]);
  });

  it('shows the spread of uneven steps', () => {
    const rows = e2eRows({ ...ours, stepMs: [30_000, 50_000] }, torch);
    expect(rows[3][1]).toBe('40.0 s (30.0 s–50.0 s)');
  });

  it('keeps the table when one side is missing, with its reason', () => {
    const rows = e2eRows(ours, 'skipped (no PyTorch)');
    expect(rows[0]).toEqual(['load', '14.0 s', 'skipped (no PyTorch)', '–']);
    expect(rows[5]).toEqual(['total', '160.0 s', '–', '–']);
    const failed = e2eRows('FAILED (exit 1)', torch);
    expect(failed[0][1]).toBe('FAILED (exit 1)');
    expect(failed[2]).toEqual(['sampling (2 steps)', '–', '40.0 s', '–']);
  });

  it('puts several backends side by side against one torch run, a ratio each', () => {
    const fast = { ...ours, loadMs: 3500, stepMs: [10_000, 10_000] };
    const rows = e2eColumns([ours, fast, 'FAILED (exit 1)'], torch);
    expect(rows[0]).toEqual(['load', '14.0 s', '3500 ms', 'FAILED (exit 1)', '7000 ms', '2.00×', '0.50×', '–']);
    expect(rows[3]).toEqual(['  per step', '40.0 s', '10.0 s', '–', '20.0 s', '2.00×', '0.50×', '–']);
    expect(e2eColumns([ours], torch)).toEqual(e2eRows(ours, torch));
  });
});

describe('table and formats', () => {
  it('formats times, rates and ratios, with – for what is missing', () => {
    expect([fmtMs(812.4), fmtMs(12_345), fmtMs(720_000), fmtMs(NaN)]).toEqual(['812 ms', '12.3 s', '12.0 min', '–']);
    expect([fmtRate(100, 500), fmtRate(100, NaN), fmtRate(0, 5)]).toEqual(['200.0', '–', '–']);
    expect([fmtRatio(3, 2), fmtRatio(3, NaN), fmtRatio(NaN, 2)]).toEqual(['1.50×', '–', '–']);
  });

  it('aligns plain text and writes Markdown', () => {
    expect(table(['a', 'bb'], [['xyz', '1']], false)).toBe('a    bb\n---  --\nxyz  1');
    expect(table(['a', 'bb'], [['xyz', '1']], true)).toBe('| a | bb |\n| --- | --- |\n| xyz | 1 |');
  });

  it('refuses a row with the wrong number of cells', () => {
    expect(() => table(['a', 'b'], [['1']], false)).toThrow(/a row has 1 cells, the header 2/);
  });
});
