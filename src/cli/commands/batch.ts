// `audiox batch <manifest>`: every item of a JSONL/CSV manifest on this machine (README "Generating a dataset").
import type { Command } from 'commander';
import { addModelOptions, modelFromCli, type ModelCliOptions } from '../custom-model.ts';
import { runBatch } from '../../batch/run-batch.ts';
import { addItemDefaultsOptions, itemDefaults, type ItemDefaultsCliOptions } from '../item-defaults.ts';
import { withInterrupt } from './generate.ts';

interface BatchCliOptions extends ItemDefaultsCliOptions, ModelCliOptions {
  out: string;
  overwrite?: boolean;
  progress: boolean;
}

export function register(program: Command): void {
  const cmd = addModelOptions(
    program
      .command('batch <manifest>')
      .description('generate every item of a manifest (JSONL or CSV; one row per output, see README "Generating a dataset")'),
  )
    .requiredOption('-o, --out <dir>', 'output directory: <id>.wav (+ <id>.mp4 with a video) and <id>.json per item, failures.jsonl')
    .option('--overwrite', 'regenerate items that are already complete')
    .option('--no-progress', 'no progress output');
  addItemDefaultsOptions(cmd).action(async (manifest: string, o: BatchCliOptions) => {
    await withInterrupt(async (signal) => {
      const model = await modelFromCli(o, { quiet: !o.progress });
      const s = await runBatch(manifest, { model, out: o.out, seed: o.seed, defaults: itemDefaults(o), overwrite: o.overwrite, progress: o.progress, signal });
      if (signal.aborted) console.error(`interrupted after ${s.done} items; run the same command again to resume`);
      else if (s.failed) process.exitCode = 1;
    });
  });
}
