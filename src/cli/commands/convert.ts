import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { convertCheckpoint } from '../../../weights-converter/convert.ts';
import type { TargetDType } from '../../../weights-converter/convert.ts';
import { cleanUpOnInterrupt } from '../interrupt.ts';

function parseDType(v: string): TargetDType {
  if (v === 'f32' || v === 'f16' || v === 'bf16') return v;
  throw new InvalidArgumentError('expected f32, f16 or bf16.');
}

export function register(program: Command): void {
  program
    .command('convert <input> <output>')
    .description('convert a PyTorch checkpoint (.ckpt/.pth, torch.save zip format) to safetensors without Python')
    .option('--dtype <dtype>', 'cast floating tensors to f32, f16 or bf16 (default: keep stored dtypes)', parseDType)
    .option('--strip-prefix <prefix>', 'remove this prefix from tensor names that start with it')
    .option(
      '--allow-expanded-views',
      'write views with more elements than their storage holds (stride-0 expansions; refused by default)',
    )
    .action(async (input: string, output: string, opts: { dtype?: TargetDType; stripPrefix?: string; allowExpandedViews?: boolean }) => {
      const t0 = Date.now();
      let last = 0;
      const uninstall = cleanUpOnInterrupt('conversion');
      let r: Awaited<ReturnType<typeof convertCheckpoint>>;
      try {
        r = await convertCheckpoint(input, output, {
          dtype: opts.dtype,
          stripPrefix: opts.stripPrefix,
          allowExpandedViews: opts.allowExpandedViews,
          onProgress: (p) => {
            if (process.stderr.isTTY && (Date.now() - last > 200 || p.index === p.total)) {
              last = Date.now();
              process.stderr.write(`\r  ${p.index}/${p.total} tensors`);
              if (p.index === p.total) process.stderr.write('\n');
            }
          },
        });
      } finally {
        uninstall();
      }
      console.log(
        `wrote ${output}: ${r.tensors} tensors, ${(r.bytes / 1048576).toFixed(1)} MiB in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
      if (r.skipped.length) console.log(`skipped ${r.skipped.length} non-tensor entries: ${r.skipped.join(', ')}`);
    });
}
