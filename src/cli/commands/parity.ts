import type { Command } from 'commander';
import { initBackend } from '../../backend/index.ts';
import { formatResult, runHarness } from '../../parity/harness.ts';

export function register(program: Command): void {
  program
    .command('parity <dir>')
    .description('run every reference fixture under <dir> and compare with the stored outputs')
    .option('--only <component...>', 'run only fixtures of these components')
    .option('--json', 'print one JSON array instead of lines')
    .option('--save-outputs <dir>', 'write computed outputs as safetensors under <dir>')
    .action(async (dir: string, opts: { only?: string[]; json?: boolean; saveOutputs?: string }) => {
      await initBackend();
      const results = await runHarness(dir, {
        only: opts.only?.flatMap((s) => s.split(',')),
        saveOutputs: opts.saveOutputs,
        onResult: opts.json ? undefined : (r) => console.log(formatResult(r)),
      });
      const failed = results.filter((r) => r.status === 'fail').length;
      if (opts.json) console.log(JSON.stringify(results, null, 2));
      else console.log(`${results.length - failed} passed, ${failed} failed`);
      if (failed > 0) process.exitCode = 1;
    });
}
