// The offline tfjs-node build script's refusals, and the probe that tells a built binding from a
// package whose install script could not download libtensorflow.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tensorflowBinding } from '../../src/backend/index.ts';
import { REPO } from '../helpers.ts';

const SCRIPT = path.join(REPO, 'scripts', 'build-tfjs-node.mjs');

function runScript(args: string[], env: Record<string, string>) {
  const { AUDIOX_TF_WHEEL: _drop, ...rest } = process.env;
  return spawnSync(process.execPath, [SCRIPT, ...args], { cwd: REPO, env: { ...rest, ...env }, encoding: 'utf8' });
}

describe('scripts/build-tfjs-node.mjs', () => {
  it('exits 3 with the places it looked when no wheel is found, changing nothing', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-nowheel-'));
    const r = runScript([], { AUDIOX_TF_WHEEL_DIRS: empty });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/skipped: no TensorFlow CPU wheel found/);
    expect(r.stdout).toContain(empty);
    expect(fs.readdirSync(empty)).toEqual([]);
  });

  it('fails with the path when the named wheel does not exist', () => {
    const r = runScript(['--wheel', '/nonexistent/tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl'], {});
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/wheel \/nonexistent\/tensorflow_cpu-2\.21\.0.*does not exist/);
  });
});

describe('tensorflowBinding', () => {
  it('finds lib/napi-v*/tfjs_binding.node and nothing in a package without one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-tfnode-'));
    expect(tensorflowBinding(dir)).toBeNull();
    fs.mkdirSync(path.join(dir, 'lib', 'napi-v8'), { recursive: true });
    expect(tensorflowBinding(dir)).toBeNull();
    fs.writeFileSync(path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'), '');
    expect(tensorflowBinding(dir)).toBe(path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'));
  });
});
