// `audiox doctor` on this machine: wasm active, the tensorflow backends unavailable with the reason.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers.ts';
import { tinyMMDiTConfig } from '../models/tiny-model-dir.ts';

function doctor(env: Record<string, string> = {}, args: string[] = []) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), 'doctor', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, AUDIOX_BACKEND: '', ...env },
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('audiox doctor', () => {
  it('lists every backend with its state, the one that would start, threads, the memory ceiling and ffmpeg (nothing started)', () => {
    const { code, out } = doctor();
    expect(code).toBe(0);
    for (const b of ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu']) expect(out).toMatch(new RegExp(`^\\s+[-+*] ${b}\\s`, 'm'));
    expect(out).toMatch(/^backend: \S+ \(would start first; not started here/m);
    expect(out).not.toMatch(/active backend/);
    expect(out).toMatch(/threads: \d+/);
    expect(out).toMatch(/memory ceiling: [\d.]+ (GiB|MiB)/);
    expect(out).toMatch(/ffmpeg: .+ \(from .+\)/);
    if (!/\* tensorflow/.test(out)) {
      expect(out).toMatch(/- tensorflow-gpu\s+.*(not installed|CUDA|never built)/);
      expect(out).toMatch(/- tensorflow\s+.*(not installed|never built)/);
    }
  });

  it('says whether the native BLAS addon is built and loaded, and why not (with and without --start)', () => {
    for (const args of [[], ['--start']]) {
      const on = doctor({ AUDIOX_BACKEND: 'wasm' }, args).out;
      expect(on).toMatch(/native BLAS (on: \S+|off: .*(npm run build:native|does not load|tfjs-backend-wasm is))/);
      expect(doctor({ AUDIOX_BACKEND: 'wasm', AUDIOX_BLAS: '0' }, args).out).toMatch(/native BLAS off: disabled by AUDIOX_BLAS=0/);
    }
  });

  it('--start starts the backend and reports what it got', () => {
    const { code, out } = doctor({ AUDIOX_BACKEND: 'wasm' }, ['--start']);
    expect(code).toBe(0);
    expect(out).toMatch(/^\s+\* wasm\s+active, \d+ threads?/m);
    expect(out).toMatch(/active backend: wasm \(tfjs "wasm"\)/);
    expect(out).toMatch(/threads: \d+/);
    expect(out).toMatch(/memory ceiling: 3\.50 GiB/);
  });

  it('honours a forced backend and rejects an unknown one', () => {
    expect(doctor({ AUDIOX_BACKEND: 'cpu' }).out).toMatch(/^backend: cpu /m);
    expect(doctor({ AUDIOX_BACKEND: 'cpu' }, ['--start']).out).toMatch(/active backend: cpu/);
    const bad = doctor({ AUDIOX_BACKEND: 'tpu' });
    expect(bad.out).toMatch(/unknown backend "tpu"/);
  });

  it('states the precision and lists downloaded models with their text encoder and model_half', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-doctor-'));
    try {
      const dir = path.join(home, 'models', 'AudioX-MAF-MMDiT');
      fs.mkdirSync(dir, { recursive: true });
      const config = tinyMMDiTConfig();
      config.model.pretransform.model_half = true;
      config.model.conditioning.configs.push({ id: 'text_prompt', type: 't5', config: { t5_model_name: 'google/flan-t5-base' } });
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
      const { code, out } = doctor({ AUDIOX_HOME: home });
      expect(code).toBe(0);
      expect(out).toMatch(/^precision: float32 for every module \(config model_half and the reference's float16 T5 are not applied\)$/m);
      expect(out).toContain(`downloaded models (${home}):\n  AudioX-MAF-MMDiT (${dir}): model.safetensors missing`);
      expect(out).toContain('    text encoder flan-t5-base (t5_model_name google/flan-t5-base): missing (audiox download flan-t5-base)');
      expect(out).toContain('    precision: float32 everywhere; config.json asks for half precision (model.pretransform.model_half), which is not applied');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
