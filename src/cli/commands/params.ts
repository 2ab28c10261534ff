// `audiox params`: the parameter manifest ({state-dict key: shape}) of a model config, built
// without allocating a single weight (the keys a converted checkpoint must hold).
import type { Command } from 'commander';
import path from 'node:path';
import { formatBytes } from '../../backend/index.ts';
import { readConfig } from '../../models/config.ts';
import { resolveModelDir } from '../../models/load.ts';
import { createModelFromConfig } from '../../models/wrapper.ts';

type Manifest = Record<string, number[]>;

/** The checkpoint manifest of a config file, keys sorted (as the reference's manifests). */
export function configManifest(configFile: string): Manifest {
  const m = createModelFromConfig(readConfig(configFile)).parameterManifest({ persistent: true });
  return Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]]));
}

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Key levels that name a part: model.model.<part>, conditioner.conditioners.<id>, pretransform.model.<encoder|decoder>. */
const GROUP_DEPTH: Record<string, number> = { model: 3, conditioner: 3, pretransform: 3 };

/** Tensor count, parameter count, fp32/fp16 bytes, overall and per top-level part. */
export function summarize(manifest: Manifest): string {
  const groups = new Map<string, { tensors: number; params: number }>();
  let params = 0;
  for (const [k, s] of Object.entries(manifest)) {
    const n = numel(s);
    params += n;
    const parts = k.split('.');
    const g = parts.slice(0, GROUP_DEPTH[parts[0]] ?? 1).join('.');
    const e = groups.get(g) ?? { tensors: 0, params: 0 };
    e.tensors++;
    e.params += n;
    groups.set(g, e);
  }
  const row = (name: string, tensors: number, p: number) =>
    `${name.padEnd(40)} ${String(tensors).padStart(6)} ${(p / 1e6).toFixed(1).padStart(10)}M ${formatBytes(p * 4).padStart(11)} ${formatBytes(p * 2).padStart(11)}`;
  return [
    `${'prefix'.padEnd(40)} ${'tensors'.padStart(6)} ${'params'.padStart(11)} ${'fp32'.padStart(11)} ${'fp16'.padStart(11)}`,
    ...[...groups].map(([g, e]) => row(g, e.tensors, e.params)),
    row('total', Object.keys(manifest).length, params),
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('params')
    .description('print the parameter manifest {key: shape} of a model config without allocating weights')
    .option('--config <config.json>', 'model config file')
    .option('--model <name|dir>', 'a model name or directory (its config.json), instead of --config')
    .option('--json', 'print the manifest as JSON (keys sorted) instead of a summary')
    .action((opts: { config?: string; model?: string; json?: boolean }) => {
      if (!opts.config === !opts.model) throw new Error('params: give exactly one of --config <config.json> or --model <name|dir>');
      const file = opts.config ?? path.join(resolveModelDir(opts.model!).dir, 'config.json');
      const manifest = configManifest(file);
      process.stdout.write(opts.json ? `${JSON.stringify(manifest, null, 1)}\n` : `${file}\n${summarize(manifest)}\n`);
    });
}
