import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { downloadModel, downloadModelWithTextEncoders } from '../../hub/download.ts';
import type { DownloadEvent, DownloadProgress } from '../../hub/download.ts';
import { MODEL_NAMES, modelSpec } from '../../hub/models.ts';
import { cleanUpOnInterrupt } from '../interrupt.ts';

const MiB = 1024 * 1024;

export function register(program: Command): void {
  program
    .command('download <model>')
    .description(
      `download a model from the Hugging Face hub into $AUDIOX_HOME/models/<model> (${MODEL_NAMES.join(', ')}); ` +
        'PyTorch checkpoints are converted to safetensors; the text encoder the config names (t5_model_name) ' +
        'is fetched too. Honours HF_ENDPOINT and HF_TOKEN',
    )
    .option('--keep-original', 'keep model.ckpt / synchformer_state_dict.pth / VAE.ckpt after converting them')
    .option('--no-text-encoder', "do not fetch the text encoder named by the model's config")
    .option('--revision <rev>', 'hub branch, tag or commit', 'main')
    .action(async (model: string, opts: { keepOriginal?: boolean; revision: string; textEncoder: boolean }) => {
      modelSpec(model); // unknown names fail before any request
      let bar: cliProgress.SingleBar | null = null;
      let barFile = '';
      const stopBar = () => {
        bar?.stop();
        bar = null;
      };
      const onProgress = (p: DownloadProgress) => {
        if (!process.stderr.isTTY) return;
        const total = p.total ?? p.received;
        if (!bar || barFile !== p.file) {
          stopBar();
          barFile = p.file;
          bar = new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: `  ${p.file} |{bar}| {percentage}% {mib}/{totalMib} MiB  ETA {eta_formatted}`,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(total, p.received, { mib: (p.received / MiB).toFixed(1), totalMib: (total / MiB).toFixed(1) });
        }
        bar.setTotal(total);
        bar.update(p.received, { mib: (p.received / MiB).toFixed(1), totalMib: (total / MiB).toFixed(1) });
      };
      const onEvent = (e: DownloadEvent) => {
        if (e.stage === 'downloading' || e.stage === 'resuming') {
          stopBar();
          if (e.stage === 'resuming') console.log(`${e.file}: resuming ${e.message ?? ''}`);
          return;
        }
        stopBar();
        if (e.stage === 'done') return;
        console.log(`${e.file}: ${e.stage}${e.message ? ` (${e.message})` : ''}`);
      };
      const uninstall = cleanUpOnInterrupt('download', stopBar); // the resumable .part stays; conversion temps go
      try {
        const o = { keepOriginal: opts.keepOriginal, revision: opts.revision, onProgress, onEvent };
        const results = opts.textEncoder ? await downloadModelWithTextEncoders(model, o) : [await downloadModel(model, o)];
        for (const r of results) {
          console.log(`${r.name} is ready in ${r.dir}:`);
          for (const f of r.files) {
            console.log(`  ${f.path} (${f.status}${f.convertedFrom ? `, converted from ${f.convertedFrom}` : ''})`);
            if (f.original) console.log(`  ${f.original} (original kept)`);
          }
        }
      } finally {
        stopBar();
        uninstall();
      }
    });
}
