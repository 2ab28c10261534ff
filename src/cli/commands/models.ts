// `audiox models`: what the model cache holds; `audiox models rm <name>` removes one.
import type { Command } from 'commander';
import { formatBytes } from '../../backend/index.ts';
import { audioxHome } from '../../hub/models.ts';
import { listCachedModels, removeCachedModel, type CachedModel } from '../../models/cache.ts';

function params(n: number | null): string {
  if (n === null) return '-';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** The cache as a table: name, kind, variant, parameters, size on disk, stored dtype, last used. */
export function modelsTable(models: CachedModel[]): string {
  const rows = [
    ['NAME', 'KIND', 'VARIANT', 'PARAMS', 'SIZE', 'DTYPE', 'LAST USED'],
    ...models.map((m) => [
      m.name, m.kind, m.variant, params(m.parameters), formatBytes(m.bytes), m.dtype ?? '-',
      m.lastUsed ? m.lastUsed.toISOString().replace('T', ' ').slice(0, 16) : 'never',
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('models')
    .description('list the models in the cache (released, text encoders, your converted checkpoints); `models rm <name>` removes one')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) => {
      const models = listCachedModels();
      if (o.json) {
        console.log(JSON.stringify(models, null, 2));
        return;
      }
      if (!models.length) {
        console.log(`no models in ${audioxHome()}/models; get one with \`audiox download AudioX\` or run with --model-config/--ckpt-path`);
        return;
      }
      console.log(modelsTable(models));
      for (const m of models.filter((x) => x.source)) console.log(`${m.name}: converted from ${m.source}`);
    });
  cmd
    .command('rm <name>')
    .description('delete a cached model (a custom one is converted again on its next use with --ckpt-path)')
    .action((name: string) => {
      const m = removeCachedModel(name);
      console.log(`removed ${m.name} (${formatBytes(m.bytes)}, ${m.dir})`);
    });
}
