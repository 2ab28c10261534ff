// `audiox inspect`: the layer-inspection workflow from the command line. Runs one generation (1 sampling
// step by default) with Module.capture around it and saves the outputs of the named modules as safetensors.
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { saveTensors } from '../../io/safetensors.ts';
import { configReport } from '../../models/config-keys.ts';
import { loadModel } from '../../pipeline/load.ts';
import { createModelFromConfig } from '../../models/wrapper.ts';
import type { Module } from '../../nn/module.ts';
import { generate } from '../../pipeline/generate.ts';
import { modelFromCli } from '../custom-model.ts';
import { addGenerationOptions, generateOptions, preflight, withInterrupt, type GenerationCliOptions } from './generate.ts';

export interface InspectCliOptions extends GenerationCliOptions {
  capture?: string[];
  out?: string;
  perPath?: boolean;
  list?: boolean | string;
}

/** Every module path of a tree (state-dict paths, relative to the root). */
export function modulePaths(root: Module): string[] {
  return [...root.namedModules()].map(([p]) => p).filter((p) => p !== '');
}

function childrenOf(paths: string[], parent: string): string[] {
  const depth = parent ? parent.split('.').length : 0;
  const names = new Set<string>();
  for (const p of paths) {
    if (parent && !p.startsWith(`${parent}.`)) continue;
    const parts = p.split('.');
    if (parts.length > depth) names.add(parts[depth]);
  }
  return [...names];
}

/** Checks capture paths against the module tree; an unknown one gets an error that lists where it could go. */
export function checkCapturePaths(root: Module, wanted: string[]): void {
  if (wanted.length === 1 && wanted[0] === '*') return;
  const all = modulePaths(root);
  const known = new Set(all);
  for (const w of wanted) {
    if (known.has(w)) continue;
    const parts = w.split('.');
    let i = parts.length - 1;
    while (i > 0 && !known.has(parts.slice(0, i).join('.'))) i--;
    const parent = parts.slice(0, i).join('.');
    const where = parent ? `"${parent}" has no child "${parts[i]}"` : `there is no top-level module "${parts[0]}"`;
    throw new Error(
      `unknown module path "${w}": ${where}; valid: ${childrenOf(all, parent)
        .map((c) => (parent ? `${parent}.${c}` : c))
        .join(', ')}. List all paths with \`audiox inspect --model … --list\`.`,
    );
  }
}

/** Whether a capture key (`path`, `path#i`, `path.k`, `path#i.k`) is an output of module `w`. */
function belongsTo(key: string, w: string): boolean {
  return key === w || (key.startsWith(w) && /^(#[^.]+)?(\.\d+)?$/.test(key.slice(w.length)));
}

/** A file name for a module path (dots kept, anything odd replaced). */
function fileNameFor(modulePath: string): string {
  return `${modulePath.replace(/[^A-Za-z0-9._-]/g, '_')}.safetensors`;
}

/** Runs the capture and writes the files; returns the paths written. */
export async function runInspect(o: InspectCliOptions, signal?: AbortSignal): Promise<string[]> {
  o = { ...o, model: await modelFromCli(o) };
  const info = await preflight(o, [], signal);
  for (const line of configReport(info.config)) console.error(line);
  if (o.list !== undefined) {
    // Built from the config only: no weights are loaded to list the tree.
    const tree = createModelFromConfig(info.config);
    const prefix = typeof o.list === 'string' ? o.list : '';
    console.log(modulePaths(tree).filter((p) => !prefix || p === prefix || p.startsWith(`${prefix}.`)).join('\n'));
    tree.dispose();
    return [];
  }
  const wanted = o.capture ?? [];
  if (!wanted.length) throw new Error('name at least one module path with --capture (or use --list to see them)');
  if (!o.out) throw new Error('--out <dir> is required');
  const tree = createModelFromConfig(info.config);
  try {
    checkCapturePaths(tree, wanted);
  } finally {
    tree.dispose();
  }
  if (info.demo) console.error('note: the demo model has untrained, synthetic weights.');
  const model = await loadModel(o.model);
  let captures: Record<string, tf.Tensor> = {};
  try {
    const run = await model.wrapper.capture(wanted.length === 1 && wanted[0] === '*' ? '*' : wanted, () =>
      generate(model, { ...generateOptions(o), signal }),
    );
    captures = run.captures;
    // Safetensors holds F32 / I32 here; bool and other dtypes are widened.
    for (const [k, t] of Object.entries(captures)) {
      if (t.dtype !== 'float32' && t.dtype !== 'int32') {
        captures[k] = t.cast(t.dtype === 'bool' ? 'int32' : 'float32');
        t.dispose();
      }
    }
    const missing = wanted.filter((w) => w !== '*' && !Object.keys(captures).some((k) => belongsTo(k, w)));
    const metadata = {
      model: model.name,
      params: JSON.stringify(run.result.params),
      capture: JSON.stringify(wanted),
      note: 'keys are module paths; "#i" marks the i-th tensor of a tuple output, ".k" the k-th repeated call (k ≥ 1)',
    };
    const written: string[] = [];
    fs.mkdirSync(o.out, { recursive: true });
    if (o.perPath) {
      for (const w of wanted.filter((x) => x !== '*')) {
        const mine = Object.fromEntries(Object.entries(captures).filter(([k]) => belongsTo(k, w)));
        if (!Object.keys(mine).length) continue;
        const file = path.join(o.out, fileNameFor(w));
        await saveTensors(file, mine, metadata);
        written.push(file);
      }
    } else {
      const file = path.join(o.out, 'captures.safetensors');
      await saveTensors(file, captures, metadata);
      written.push(file);
    }
    for (const [k, t] of Object.entries(captures).sort(([a], [b]) => (a < b ? -1 : 1))) console.log(`${k}  [${t.shape.join(', ')}] ${t.dtype}`);
    if (missing.length) console.error(`warning: not called during the run, nothing captured: ${missing.join(', ')}`);
    for (const f of written) console.log(`wrote ${f}`);
    return written;
  } finally {
    tf.dispose(Object.values(captures));
    model.dispose();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('run one generation step and save the outputs of chosen modules (state-dict paths) as safetensors');
  addGenerationOptions(cmd, { steps: 1 })
    .option('-c, --capture <path...>', 'module paths relative to the model, e.g. model.model.transformer.layers.0 maf_block ("*": all)')
    .option('--out <dir>', 'output directory (captures.safetensors)')
    .option('--per-path', 'one <path>.safetensors per captured module instead of captures.safetensors')
    .option('--list [prefix]', 'print the module paths (under prefix) and exit; loads no weights')
    .action(async (opts: InspectCliOptions) => {
      await withInterrupt((signal) => runInspect(opts, signal));
    });
}
