// The parity CLI on a small temporary fixture tree: PASS/FAIL lines, the summary line, exit codes,
// --json, --save-outputs, and clean failures for malformed or unknown fixtures.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, encodeHost, writeSafetensors } from '../../src/io/safetensors.ts';
import { FIXTURES, REPO } from '../helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-parity-'));
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-parity-out-'));
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(out, { recursive: true, force: true });
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), 'parity', ...args], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, AUDIOX_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  fs.mkdirSync(path.join(dir, 'ok'));
  fs.copyFileSync(path.join(FIXTURES, 'conditioners/number.safetensors'), path.join(dir, 'ok/number.safetensors'));
  // A copy whose expected output is perturbed → must FAIL with a tolerance message.
  const src = SafetensorsFile.open(path.join(FIXTURES, 'conditioners/number.safetensors'));
  await writeSafetensors(
    path.join(dir, 'ok/number_wrong.safetensors'),
    src.keys().map((k) => ({
      name: k,
      dtype: src.entry(k).dtype,
      shape: src.shape(k),
      bytes: () => {
        if (k !== 'outputs/embedding') return src.readBytes(k);
        const h = src.readHost(k);
        const d = Float32Array.from(h.data as Float32Array);
        d[0] += 1;
        return encodeHost(d, 'F32');
      },
    })),
    src.metadata,
  );
  src.close();
  const one = { name: 'outputs/y', dtype: 'F32' as const, shape: [1], bytes: () => encodeHost(new Float32Array([1]), 'F32') };
  await writeSafetensors(path.join(dir, 'unknown.safetensors'), [one], { component: 'no-such-component' });
  await writeSafetensors(path.join(dir, 'badmeta.safetensors'), [one], { component: 'number', config: '{not json' });
  await writeSafetensors(path.join(dir, 'not-a-fixture.safetensors'), [one]); // no component: ignored
  fs.writeFileSync(path.join(dir, 'garbage.safetensors'), 'this is not a safetensors file');
});

describe('audiox parity', () => {
  it('prints one line per fixture and the summary, exit 1 on failures', () => {
    const r = cli(dir);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContain('FAIL unknown.safetensors unsupported component no-such-component');
    expect(lines.find((l) => l.startsWith('PASS ok/number.safetensors max_abs='))).toMatch(/max_rel=\S+$/);
    expect(lines.find((l) => l.startsWith('FAIL ok/number_wrong.safetensors'))).toMatch(/out of tolerance/);
    expect(lines.find((l) => l.startsWith('FAIL badmeta.safetensors'))).toMatch(/"config" is not a JSON object/);
    expect(lines.find((l) => l.startsWith('FAIL garbage.safetensors'))).toMatch(/header length/);
    expect(lines.some((l) => l.includes('not-a-fixture'))).toBe(false);
    expect(lines.at(-1)).toBe('1 passed, 4 failed');
    expect(r.code).toBe(1);
  });

  it('--only selects components; all passing → exit 0', () => {
    const r = cli(path.join(dir, 'ok'), '--only', 'conditioners');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1 passed, 1 failed');
    const ok = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-parity-ok-'));
    fs.copyFileSync(path.join(dir, 'ok/number.safetensors'), path.join(ok, 'number.safetensors'));
    const r2 = cli(ok);
    expect(r2.stdout.trim().split('\n').at(-1)).toBe('1 passed, 0 failed');
    expect(r2.code).toBe(0);
    fs.rmSync(ok, { recursive: true, force: true });
  });

  it('--json prints one array of results', () => {
    const r = cli(path.join(dir, 'ok'), '--json');
    const results = JSON.parse(r.stdout) as { path: string; component: string; case: string; status: string; max_abs: number; message: string }[];
    expect(results.map((x) => [x.path, x.status]).sort()).toEqual([
      ['number.safetensors', 'pass'],
      ['number_wrong.safetensors', 'fail'],
    ]);
    expect(results[0]).toHaveProperty('max_rel');
    expect(results[0].component).toBe('conditioners');
  });

  it('--save-outputs writes the computed tensors under the fixture names, pass or fail', () => {
    cli(path.join(dir, 'ok'), '--save-outputs', out);
    for (const f of ['number.safetensors', 'number_wrong.safetensors']) {
      const st = SafetensorsFile.open(path.join(out, f));
      expect(st.keys().sort()).toEqual(['outputs/embedding', 'outputs/mask']);
      expect(st.entry('outputs/embedding').dtype).toBe('F32');
      st.close();
    }
  });

  it('a missing directory is a clear error', () => {
    const r = cli(path.join(dir, 'nope'));
    expect(r.stderr).toMatch(/fixture directory ".*nope" does not exist/);
    expect(r.code).toBe(1);
  });
});
