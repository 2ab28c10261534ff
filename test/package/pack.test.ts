// The package as a user gets it: `npm pack`, installed into a fresh project, then imported from plain Node,
// type-checked from TypeScript against the shipped .d.ts, and run through `npx audiox`.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers.ts';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let project = '';
let tarball = '';

function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

beforeAll(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-consumer-'));
  const packed = execFileSync(NPM, ['pack', '--json', '--pack-destination', project], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 });
  const info = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(project, info[0].filename);
  const files = info[0].files.map((f) => f.path);
  // What the tarball ships: the build, configs, the addon's source — no tests, fixtures or TypeScript sources.
  expect(files).toContain('dist/src/index.js');
  expect(files).toContain('dist/src/index.d.ts');
  expect(files).toContain('configs/demo/config.json');
  expect(files).toContain('native/blas/build.mjs');
  expect(files.filter((f) => /^(test|src)\//.test(f))).toEqual([]);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  const inst = sh(NPM, ['install', tarball, '@types/node@^20', '--prefer-offline', '--no-audit', '--no-fund'], project);
  expect(inst.code, inst.out).toBe(0);
}, 600_000);

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe('the packed package in a fresh project', () => {
  it('imports from a plain .mjs under Node and generates 2 steps of the demo model through the API', () => {
    fs.writeFileSync(
      path.join(project, 'run.mjs'),
      [
        "import { loadModel, generate, writeWav, GenerateError, ModelNotFoundError } from 'audiox-ts';",
        "const model = await loadModel('demo');",
        "const r = await generate(model, { prompt: 'rain on a tin roof', steps: 2, secondsTotal: 1, seed: 7 });",
        "await writeWav('out.wav', r.audio[0], r.sampleRate);",
        "let notFound = false; try { await loadModel('no-such-model'); } catch (e) { notFound = e instanceof ModelNotFoundError; }",
        'model.dispose();',
        'console.log(JSON.stringify({ channels: r.audio[0].length, sampleRate: r.sampleRate, notFound, errorClass: typeof GenerateError }));',
      ].join('\n'),
    );
    const r = sh(process.execPath, ['run.mjs'], project);
    expect(r.code, r.out).toBe(0);
    const line = r.out.split('\n').find((l) => l.startsWith('{'))!;
    expect(JSON.parse(line)).toEqual({ channels: 2, sampleRate: 44100, notFound: true, errorClass: 'function' });
    expect(fs.statSync(path.join(project, 'out.wav')).size).toBeGreaterThan(44);
  }, 300_000);

  it('type-checks a TypeScript consumer against the shipped declarations', () => {
    fs.writeFileSync(
      path.join(project, 'consumer.ts'),
      [
        "import { loadModel, generate, type GenerateOptions, StateDictError } from 'audiox-ts';",
        "import { Module } from 'audiox-ts/nn';",
        "import { runHarness } from 'audiox-ts/parity';",
        "const opts: GenerateOptions = { prompt: 'birdsong', steps: 2, secondsTotal: 1, seed: 1 };",
        "export async function run(): Promise<number> {",
        "  const model = await loadModel('demo');",
        '  const r = await generate(model, opts);',
        "  const m: Module = model.wrapper;",
        '  void m; void runHarness; void StateDictError;',
        '  return r.sampleRate;',
        '}',
        '// @ts-expect-error steps is a number',
        "export const bad: GenerateOptions = { steps: 'many' };",
      ].join('\n'),
    );
    // skipLibCheck as in any tfjs project: @tensorflow/tfjs-core's own declarations name a global `Long` type.
    fs.writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], skipLibCheck: true }, files: ['consumer.ts'] }),
    );
    const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = sh(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
    expect(r.code, r.out).toBe(0);
  }, 120_000);

  it('runs `npx audiox generate --model demo` and `audiox --help` from the installed package', () => {
    const gen = sh('npx', ['audiox', 'generate', '--model', 'demo', '--prompt', 'wind', '--steps', '2', '--seconds', '1', '--seed', '3', '--output', 'cli.wav'], project);
    expect(gen.code, gen.out).toBe(0);
    expect(fs.statSync(path.join(project, 'cli.wav')).size).toBeGreaterThan(44);
    const help = sh('npx', ['audiox', '--help'], project);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/generate\s+generate audio from text/);
    // The installed package runs compiled JavaScript: no TypeScript sources, no tsx.
    expect(fs.existsSync(path.join(project, 'node_modules', 'audiox-ts', 'src'))).toBe(false);
  }, 300_000);

  it('starts the installed `audiox --help` without TensorFlow.js, `audiox doctor` with tfjs-core only and `doctor --start` with its backend', () => {
    const bin = path.join(project, 'node_modules', 'audiox-ts', 'bin', 'audiox.mjs');
    const reporter = path.join(REPO, 'test', 'cli', 'fixtures', 'report-tfjs-packages.cjs');
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-consumer-home-'));
    const loaded = (...args: string[]): string[] => {
      const r = sh(process.execPath, ['--require', reporter, bin, ...args], project, { AUDIOX_HOME: home, AUDIOX_BACKEND: 'wasm' });
      expect(r.code, r.out).toBe(0);
      return JSON.parse(/^TFJS_PACKAGES (.*)$/m.exec(r.out)?.[1] ?? 'null') as string[];
    };
    try {
      expect(loaded('--help')).toEqual([]);
      expect(loaded('doctor')).toEqual(['@tensorflow/tfjs-core']);
      expect(loaded('doctor', '--start')).toEqual(['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-core']);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);
});
