// The wasm pthread worker script lives in a private directory: a FIFO, symlink or foreign directory planted
// at a predictable path can neither hang a run nor redirect the write.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { privateDir, workerScriptPath } from '../../src/backend/wasm-threads.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-wasm-file-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const uid = process.getuid?.() ?? 0;

describe('wasm worker script file', () => {
  it('is written into <tmp>/audiox-<uid> (mode 0700) and reused when unchanged', () => {
    const f = workerScriptPath('9.9.9', 'worker()', root);
    expect(path.dirname(f)).toBe(path.join(root, `audiox-${uid}`));
    expect(fs.statSync(path.dirname(f)).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(f, 'utf8')).toBe('worker()');
    const ino = fs.statSync(f).ino;
    expect(workerScriptPath('9.9.9', 'worker()', root)).toBe(f);
    expect(fs.statSync(f).ino).toBe(ino);
    expect(fs.readFileSync(workerScriptPath('9.9.9', 'worker2()', root), 'utf8')).toBe('worker2()');
  });

  it('a FIFO planted at the file path is replaced, never opened (no hang)', () => {
    const f = path.join(root, `audiox-${uid}`, 'tfjs-wasm-1.0.0.worker.js');
    execFileSync('mkfifo', [f]);
    expect(workerScriptPath('1.0.0', 'ok()', root)).toBe(f);
    expect(fs.lstatSync(f).isFile()).toBe(true);
    expect(fs.readFileSync(f, 'utf8')).toBe('ok()');
  });

  it('a symlink at the file path is replaced, its target untouched', () => {
    const target = path.join(root, 'victim.txt');
    fs.writeFileSync(target, 'precious');
    const f = path.join(root, `audiox-${uid}`, 'tfjs-wasm-2.0.0.worker.js');
    fs.symlinkSync(target, f);
    workerScriptPath('2.0.0', 'ok()', root);
    expect(fs.lstatSync(f).isSymbolicLink()).toBe(false);
    expect(fs.readFileSync(target, 'utf8')).toBe('precious');
  });

  it('a directory name taken by a symlink or with loose permissions is not used', () => {
    const r2 = fs.mkdtempSync(path.join(root, 'r2-'));
    const elsewhere = fs.mkdtempSync(path.join(root, 'elsewhere-'));
    fs.symlinkSync(elsewhere, path.join(r2, `audiox-${uid}`));
    const d = privateDir(r2);
    expect(d).not.toBe(path.join(r2, `audiox-${uid}`));
    expect(fs.statSync(d).mode & 0o777).toBe(0o700);
    const r3 = fs.mkdtempSync(path.join(root, 'r3-'));
    fs.mkdirSync(path.join(r3, `audiox-${uid}`), { mode: 0o777 });
    fs.chmodSync(path.join(r3, `audiox-${uid}`), 0o777);
    expect(privateDir(r3)).not.toBe(path.join(r3, `audiox-${uid}`));
  });
});
