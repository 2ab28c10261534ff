// Through the real CLI: `audiox generate --model-config … --ckpt-path …` converts a training-style checkpoint into a
// temporary cache once (a second run uses the cached copy; touching the checkpoint converts it again), a bad config
// or a mismatched checkpoint exits non-zero naming the key with nothing cached or written, and `audiox models` /
// `models rm` list and remove the conversion.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWavHeader } from '../../src/io/wav.ts';
import { customConfig, writeTrainingCheckpoint } from '../models/custom-model-files.ts';
import { listDir, tempDir } from '../pipeline/media-helpers.ts';
import { runCli } from './run-cli.ts';

let dir: string;
let env: Record<string, string>;
let config: string;
let ckpt: string;

beforeAll(() => {
  dir = tempDir('cli-custom');
  env = { AUDIOX_HOME: path.join(dir, 'home'), HF_ENDPOINT: 'http://127.0.0.1:9' };
  config = path.join(dir, 'run', 'config.json');
  ckpt = path.join(dir, 'run', 'step_120.ckpt');
  fs.mkdirSync(path.dirname(config), { recursive: true });
  fs.writeFileSync(config, JSON.stringify(customConfig()));
  writeTrainingCheckpoint(ckpt, customConfig());
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const cached = () => (fs.existsSync(path.join(env.AUDIOX_HOME, 'models')) ? fs.readdirSync(path.join(env.AUDIOX_HOME, 'models')).sort() : []);

function generate(out: string, extra: string[] = [], cfg = config): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(['generate', '--model-config', cfg, '--ckpt-path', ckpt, '--seconds', '1', '--steps', '2', '--seed', '1', '-o', out, ...extra], { env });
}

describe('audiox generate --model-config --ckpt-path', () => {
  it('converts on first use, then uses the cached copy, and converts again once the checkpoint changes', async () => {
    const out = path.join(dir, 'out1');
    fs.mkdirSync(out);
    const first = await generate(path.join(out, 'a.wav'));
    expect(first.stderr).toMatch(/converting the checkpoint into the cache \(\d+ tensors\)/);
    expect(first.stderr).toMatch(/converted into the cache as "step_120"/);
    expect(first.stderr).toMatch(/weights: EMA copy for model\.\*/);
    expect(first.stderr).toMatch(/left out: losses\.mrstft\.window/);
    expect(first.code).toBe(0);
    expect(readWavHeader(path.join(out, 'a.wav'))).toMatchObject({ sampleRate: 44100, channels: 2, numFrames: 44100 });
    expect(cached()).toEqual(['step_120']);

    const second = await generate(path.join(out, 'b.wav'));
    expect(second.code).toBe(0);
    expect(second.stderr).not.toMatch(/converting/);
    expect(second.stderr).toMatch(/using the cached conversion "step_120"/);
    // Same model and seed: the cached weights are the ones converted.
    expect(fs.readFileSync(path.join(out, 'b.wav'))).toEqual(fs.readFileSync(path.join(out, 'a.wav')));

    const later = new Date(Date.now() + 5000);
    fs.utimesSync(ckpt, later, later);
    const third = await generate(path.join(out, 'c.wav'), ['--no-ema']);
    expect(third.code).toBe(0);
    expect(third.stderr).toMatch(/converted into the cache as "step_120"/);
    expect(third.stderr).toMatch(/online weights, --no-ema/);
    expect(cached()).toEqual(['step_120']);
    expect(listDir(out)).toEqual(['a.wav', 'b.wav', 'c.wav']);
  });

  it('`audiox models` lists the conversion and `models rm` removes it', async () => {
    if (!cached().includes('step_120')) await generate(path.join(dir, 'models-prep.wav'));
    const list = await runCli(['models'], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+KIND\s+VARIANT\s+PARAMS\s+SIZE\s+DTYPE\s+LAST USED$/m);
    expect(list.stdout).toMatch(/^step_120\s+custom\s+dit\s+[\d.]+ [kM]\s+[\d.]+ [KMG]i?B\s+F32\s+\d{4}-\d\d-\d\d \d\d:\d\d$/m);
    expect(list.stdout).toContain(`step_120: converted from ${ckpt}`);
    const json = JSON.parse((await runCli(['models', '--json'], { env })).stdout) as { name: string; kind: string }[];
    expect(json.map((m) => [m.name, m.kind])).toEqual([['step_120', 'custom']]);

    const byName = await runCli(['generate', '--model', 'step_120', '--seconds', '1', '--steps', '2', '--no-progress', '-o', path.join(dir, 'by-name.wav')], { env });
    expect(byName.code).toBe(0);

    const rm = await runCli(['models', 'rm', 'step_120'], { env });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(/removed step_120/);
    expect(cached()).toEqual([]);
    expect((await runCli(['models'], { env })).stdout).toMatch(/no models in .*--model-config\/--ckpt-path/);
    const again = await runCli(['models', 'rm', 'step_120'], { env });
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/no cached model "step_120"/);
  });

  it('a config naming a conditioner we do not implement fails with the key named; nothing cached or written', async () => {
    const c = customConfig();
    c.model.conditioning.configs[0].type = 'clap_audio';
    const bad = path.join(dir, 'bad', 'config.json');
    fs.mkdirSync(path.dirname(bad), { recursive: true });
    fs.writeFileSync(bad, JSON.stringify(c));
    const before = cached();
    const out = path.join(dir, 'bad', 'x.wav');
    const r = await generate(out, [], bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/model\.conditioning\.configs\[0\]\.type \(conditioner "audio_prompt"\): .*"clap_audio" is not supported/);
    expect(cached()).toEqual(before);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('a checkpoint of another model fails naming the keys; nothing cached or written', async () => {
    const other = path.join(dir, 'other', 'model.ckpt');
    writeTrainingCheckpoint(other, customConfig({ depth: 2 }));
    const before = cached();
    const out = path.join(dir, 'other', 'x.wav');
    const r = await runCli(['generate', '--model-config', config, '--ckpt-path', other, '--steps', '2', '-o', out], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not match the model its config describes/);
    expect(r.stderr).toMatch(/in the checkpoint but not in the model \(\d+\): model\.model\.transformer\.layers\.1\./);
    expect(cached()).toEqual(before);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('refuses ambiguous or half-given model flags', async () => {
    const both = await runCli(['generate', '--model', 'demo', '--model-config', config, '--ckpt-path', ckpt, '-o', path.join(dir, 'y.wav')], { env });
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--model and --model-config\/--ckpt-path name two models/);
    const half = await runCli(['generate', '--model-config', config, '-o', path.join(dir, 'y.wav')], { env });
    expect(half.code).not.toBe(0);
    expect(half.stderr).toMatch(/--model-config needs --ckpt-path <checkpoint> too/);
    const none = await runCli(['generate', '-o', path.join(dir, 'y.wav')], { env });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/choose a model: --model <name\|dir>, or --model-config/);
    expect(fs.existsSync(path.join(dir, 'y.wav'))).toBe(false);
  });
});
