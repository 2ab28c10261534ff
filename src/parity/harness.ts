// Parity harness: finds fixture files, dispatches each to the runner of its component, compares
// the computed outputs with the stored ones at the fixture's tolerances.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isModuleFile } from '../layout.ts';
import { PrefixedSource, SafetensorsFile, saveTensors } from '../io/safetensors.ts';
import type { Fixture, FixtureResult, Runner, RunnerResult } from './types.ts';

const RUNNER_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'runners');

let registry: Map<string, Runner> | null = null;

/** Every runner in src/parity/runners/, keyed by component (each file exports `runner`). */
export async function loadRunners(): Promise<Map<string, Runner>> {
  if (registry) return registry;
  const map = new Map<string, Runner>();
  const files = fs.existsSync(RUNNER_DIR) ? fs.readdirSync(RUNNER_DIR).filter(isModuleFile) : [];
  for (const f of files.sort()) {
    const mod = (await import(pathToFileURL(path.join(RUNNER_DIR, f)).href)) as { runner?: Runner; runners?: Runner[] };
    for (const r of [...(mod.runner ? [mod.runner] : []), ...(mod.runners ?? [])]) {
      if (map.has(r.component)) throw new Error(`two parity runners for component "${r.component}"`);
      map.set(r.component, r);
    }
  }
  registry = map;
  return map;
}

/** Every .safetensors file under `dir`, recursively, in name order. */
export function findFixtureFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.safetensors')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function parseJson(s: string | undefined, what: string, file: string): Record<string, unknown> {
  if (s === undefined || s === '') return {};
  try {
    const v = JSON.parse(s) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fallthrough */
  }
  throw new Error(`${file}: metadata "${what}" is not a JSON object`);
}

/**
 * Opens a fixture file; null when it has no `component` metadata (not a fixture; the file is closed).
 * @throws Error when the file is not valid safetensors or its config / args / tolerance metadata is malformed.
 */
export function openFixture(file: string, root: string): Fixture | null {
  const st = SafetensorsFile.open(file);
  const md = st.metadata;
  if (!md.component) {
    st.close();
    return null;
  }
  const num = (k: string, dflt: number) => {
    const v = md[k] === undefined ? dflt : Number(md[k]);
    if (!Number.isFinite(v)) throw new Error(`${file}: metadata "${k}" is not a number`);
    return v;
  };
  const group = (g: string) => st.keys().filter((k) => k.startsWith(`${g}/`)).map((k) => k.slice(g.length + 1));
  return {
    path: file,
    rel: path.relative(root, file),
    file: st,
    component: md.component,
    case: md.case ?? path.basename(file, '.safetensors'),
    config: parseJson(md.config, 'config', file),
    args: parseJson(md.args, 'args', file),
    reference: md.reference ?? '',
    notes: md.notes ?? '',
    atol: num('atol', 1e-5),
    rtol: num('rtol', 1e-4),
    metadata: md,
    params: new PrefixedSource(st, 'params/'),
    has: (n) => st.has(n),
    tensor: (n) => st.read(n),
    names: group as Fixture['names'],
  };
}

/** The result of comparing computed outputs with a fixture's. */
export interface Comparison {
  /** Every expected output computed, with the right shape and within tolerance. */
  pass: boolean;
  /** Largest absolute difference (NaN when any is NaN). */
  maxAbs: number;
  /** Largest relative difference (NaN when any is NaN). */
  maxRel: number;
  /** The problems, '; '-separated ('' on a pass). */
  message: string;
}

/** |a − e| ≤ atol + rtol·|e| elementwise (integer outputs: |a − e| ≤ 1). */
export async function compareOutputs(
  fx: Fixture,
  outputs: Record<string, tf.Tensor>,
): Promise<Comparison> {
  let maxAbs = 0;
  let maxRel = 0;
  const problems: string[] = [];
  const expectedNames = fx.names('outputs');
  if (!expectedNames.length) return { pass: false, maxAbs: NaN, maxRel: NaN, message: 'fixture has no outputs/*' };
  for (const name of expectedNames) {
    const actual = outputs[name];
    if (!actual) {
      problems.push(`output "${name}" was not computed`);
      continue;
    }
    const entry = fx.file.entry(`outputs/${name}`);
    const exp = fx.file.readHost(`outputs/${name}`);
    if (actual.shape.join(',') !== exp.shape.join(',')) {
      problems.push(`output "${name}": shape [${actual.shape}] ≠ expected [${exp.shape}]`);
      continue;
    }
    const a = await actual.data();
    const isInt = !['F32', 'F16', 'BF16', 'F64'].includes(entry.dtype);
    let bad = 0;
    let firstBad = -1;
    for (let i = 0; i < a.length; i++) {
      const e = exp.data[i];
      const d = Math.abs(Number(a[i]) - e);
      const ok = isInt ? d <= 1 : d <= fx.atol + fx.rtol * Math.abs(e);
      if (!(d <= maxAbs) || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? NaN : Math.max(maxAbs, d);
      const rel = d / Math.max(Math.abs(e), fx.atol);
      if (!(rel <= maxRel)) maxRel = Number.isNaN(rel) ? NaN : Math.max(maxRel, rel);
      if (!ok) {
        bad++;
        if (firstBad < 0) firstBad = i;
      }
    }
    if (bad) {
      problems.push(
        `output "${name}": ${bad}/${a.length} elements out of tolerance (first at flat index ${firstBad}: ` +
          `got ${Number(a[firstBad])}, expected ${exp.data[firstBad]})`,
      );
    }
  }
  return { pass: problems.length === 0, maxAbs, maxRel, message: problems.join('; ') };
}

export function fmt3(x: number | null): string {
  if (x === null || Number.isNaN(x)) return 'nan';
  return x.toPrecision(3);
}

/** Options of {@link runHarness} and {@link runFixture}. */
export interface HarnessOptions {
  /** Run only the fixtures of these components. */
  only?: string[];
  /** Also write the computed outputs under this directory (same relative paths as the fixtures). */
  saveOutputs?: string;
  /** Called with each result as soon as it is known. */
  onResult?: (r: FixtureResult) => void;
  /** Skip (instead of failing) fixtures whose component has no runner. */
  skipUnsupported?: boolean;
}

/**
 * Runs one fixture and compares its outputs; null when the file is not a fixture or is filtered out. Errors
 * (unreadable file, runner failure) become a failing result, not an exception.
 */
export async function runFixture(file: string, root: string, opts: HarnessOptions = {}): Promise<FixtureResult | null> {
  const rel = path.relative(root, file);
  let fx: Fixture | null;
  try {
    fx = openFixture(file, root);
  } catch (e) {
    return { path: rel, component: '?', case: '?', status: 'fail', max_abs: null, max_rel: null, message: (e as Error).message };
  }
  if (!fx) return null;
  const base = { path: rel, component: fx.component, case: fx.case };
  try {
    if (opts.only?.length && !opts.only.includes(fx.component)) return null;
    const runners = await loadRunners();
    const runner = runners.get(fx.component);
    if (!runner) {
      if (opts.skipUnsupported) return null;
      return { ...base, status: 'fail', max_abs: null, max_rel: null, message: `unsupported component ${fx.component}` };
    }
    const before = tf.memory().numTensors;
    let result: RunnerResult;
    try {
      result = await runner.run(fx);
    } catch (e) {
      return { ...base, status: 'fail', max_abs: null, max_rel: null, message: `error: ${(e as Error).message}` };
    }
    if (!('outputs' in result)) {
      return {
        ...base,
        status: result.pass ? 'pass' : 'fail',
        max_abs: result.maxAbs,
        max_rel: result.maxRel,
        message: result.message ?? '',
      };
    }
    try {
      if (opts.saveOutputs) await saveComputed(fx, result.outputs, path.join(opts.saveOutputs, rel));
      const c = await compareOutputs(fx, result.outputs);
      return { ...base, status: c.pass ? 'pass' : 'fail', max_abs: c.maxAbs, max_rel: c.maxRel, message: c.message };
    } finally {
      for (const t of Object.values(result.outputs)) t.dispose();
      const leaked = tf.memory().numTensors - before;
      if (leaked > 0 && process.env.AUDIOX_PARITY_LEAKS) {
        console.warn(`warning: ${rel} leaked ${leaked} tensors`);
      }
    }
  } finally {
    fx.file.close();
  }
}

async function saveComputed(fx: Fixture, outputs: Record<string, tf.Tensor>, dest: string): Promise<void> {
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, t] of Object.entries(outputs)) tensors[`outputs/${name}`] = t;
  const dtypes = Object.fromEntries(
    Object.entries(outputs).map(([n, t]) => [`outputs/${n}`, t.dtype === 'float32' ? 'F32' : 'I32'] as const),
  );
  await saveTensors(dest, tensors, { component: fx.component, case: fx.case }, dtypes);
}

/**
 * Runs every fixture under `dir` (see findFixtureFiles) and returns the results in file order.
 * @throws Error when `dir` is not a directory.
 */
export async function runHarness(dir: string, opts: HarnessOptions = {}): Promise<FixtureResult[]> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`fixture directory "${dir}" does not exist or is not a directory`);
  }
  const results: FixtureResult[] = [];
  for (const f of findFixtureFiles(dir)) {
    const r = await runFixture(f, dir, opts);
    if (!r) continue;
    results.push(r);
    opts.onResult?.(r);
  }
  return results;
}

/** One line for a result: `PASS <path> max_abs=… max_rel=…` or `FAIL <path> <message>`. */
export function formatResult(r: FixtureResult): string {
  return r.status === 'pass'
    ? `PASS ${r.path} max_abs=${fmt3(r.max_abs)} max_rel=${fmt3(r.max_rel)}`
    : `FAIL ${r.path} ${r.message}`;
}
