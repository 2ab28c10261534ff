// What the quick commands load: `audiox --help` no TensorFlow.js at all; `audiox doctor` tfjs-core and the
// backend it starts, never the @tensorflow/tfjs union package (layers, converter, data, webgl: half a second
// of imports) nor the model code. Timings are in bench/startup.ts; this checks what makes them short.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers.ts';

const REPORTER = path.join(REPO, 'test/cli/fixtures/report-tfjs-packages.cjs');

function tfjsPackages(args: string[], env: Record<string, string> = {}): string[] {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-startup-'));
  try {
    const r = spawnSync(process.execPath, ['--require', REPORTER, path.join(REPO, 'bin/audiox.mjs'), ...args], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, AUDIOX_HOME: home, ...env },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const line = /^TFJS_PACKAGES (.*)$/m.exec(r.stderr);
    expect(line, r.stderr).not.toBeNull();
    return JSON.parse(line![1]) as string[];
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

describe('CLI start-up imports', () => {
  it('`audiox --help` loads no TensorFlow.js package', () => {
    expect(tfjsPackages(['--help'])).toEqual([]);
  });

  it('`audiox doctor` starts no backend (tfjs-core only); `doctor --start` loads the started backend only', () => {
    expect(tfjsPackages(['doctor'], { AUDIOX_BACKEND: 'wasm' })).toEqual(['@tensorflow/tfjs-core']);
    expect(tfjsPackages(['doctor', '--start'], { AUDIOX_BACKEND: 'wasm' })).toEqual(['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core']);
    expect(tfjsPackages(['doctor', '--start'], { AUDIOX_BACKEND: 'cpu' })).toEqual(['@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-core']);
  });

  it('the reporter sees the union package when it is loaded (the check can fail)', () => {
    const r = spawnSync(process.execPath, ['--require', REPORTER, '--input-type=module', '-e', "await import('@tensorflow/tfjs');"], {
      cwd: REPO,
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(/TFJS_PACKAGES .*"@tensorflow\/tfjs"/);
  });
});
