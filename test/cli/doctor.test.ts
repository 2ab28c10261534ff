// `audiox doctor` on this machine: wasm active, the tensorflow backends unavailable with the reason.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers.ts';

function doctor(env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), 'doctor'], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, AUDIOX_BACKEND: '', ...env },
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('audiox doctor', () => {
  it('lists every backend with its state, the active one, threads, the memory ceiling and ffmpeg', () => {
    const { code, out } = doctor();
    expect(code).toBe(0);
    for (const b of ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu']) expect(out).toMatch(new RegExp(`^\\s+[-+*] ${b}\\s`, 'm'));
    expect(out).toMatch(/active backend: \S+/);
    expect(out).toMatch(/threads: \d+/);
    expect(out).toMatch(/memory ceiling: [\d.]+ (GiB|MiB)/);
    expect(out).toMatch(/ffmpeg: .+ \(from .+\)/);
    if (!/\* tensorflow/.test(out)) {
      expect(out).toMatch(/- tensorflow-gpu\s+.*(not installed|CUDA)/);
      expect(out).toMatch(/- tensorflow\s+.*not installed/);
    }
  });

  it('honours a forced backend and rejects an unknown one', () => {
    expect(doctor({ AUDIOX_BACKEND: 'cpu' }).out).toMatch(/active backend: cpu/);
    const bad = doctor({ AUDIOX_BACKEND: 'tpu' });
    expect(bad.out).toMatch(/unknown backend "tpu"/);
  });
});
