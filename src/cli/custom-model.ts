// `--model-config <config.json> --ckpt-path <checkpoint>` (the reference demo's flags), shared by generate, inspect,
// batch and serve: the pair becomes a cached model name, converting the checkpoint first when needed.
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { prepareCustomModel } from '../models/custom.ts';
import { RELEASED_MODELS } from '../models/source.ts';

export interface ModelCliOptions {
  model?: string;
  modelConfig?: string;
  ckptPath?: string;
  ema?: boolean;
}

export const MODEL_HELP = `${[...RELEASED_MODELS, 'demo'].join(', ')}, a model listed by \`audiox models\`, or a model directory`;

/** Adds --model and the custom-model flags. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <name|dir>', MODEL_HELP)
    .option('--model-config <config.json>', 'your own model: its config (with --ckpt-path; instead of --model)')
    .option('--ckpt-path <file>', 'your own model: its checkpoint, .ckpt/.pth (converted once into the cache) or .safetensors')
    .option('--ema', 'take the EMA weights of a training checkpoint (the default when it has them)')
    .option('--no-ema', "take a training checkpoint's online weights instead of its EMA copy");
}

/** Conversion progress on stderr: a bar on a terminal, else a start and an end line. */
function conversionReporter(quiet: boolean): { start: (n: number) => void; update: (i: number) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | null = null;
  return {
    start: (n) => {
      if (quiet) return;
      if (process.stderr.isTTY) {
        bar = new cliProgress.SingleBar({ format: 'converting [{bar}] {value}/{total} tensors | {duration}s', stream: process.stderr }, cliProgress.Presets.shades_classic);
        bar.start(n, 0);
      } else console.error(`converting the checkpoint into the cache (${n} tensors)…`);
    },
    update: (i) => bar?.update(i),
    stop: () => bar?.stop(),
  };
}

/**
 * The model name the options stand for: --model as given, or the cached model --model-config/--ckpt-path
 * become (converted now when the cache has no up-to-date copy). Says which weights were taken.
 */
export async function modelFromCli(o: ModelCliOptions, opts: { quiet?: boolean } = {}): Promise<string> {
  const custom = o.modelConfig !== undefined || o.ckptPath !== undefined;
  if (!custom) {
    if (o.ema !== undefined) throw new Error('--ema/--no-ema apply to --ckpt-path; a cached or released model is already converted');
    if (!o.model) throw new Error('choose a model: --model <name|dir>, or --model-config <config.json> with --ckpt-path <checkpoint>');
    return o.model;
  }
  if (o.model) throw new Error('--model and --model-config/--ckpt-path name two models; give one or the other');
  if (!o.modelConfig || !o.ckptPath) {
    throw new Error(`${o.modelConfig ? '--model-config' : '--ckpt-path'} needs ${o.modelConfig ? '--ckpt-path <checkpoint>' : '--model-config <config.json>'} too`);
  }
  const progress = conversionReporter(!!opts.quiet);
  let r: Awaited<ReturnType<typeof prepareCustomModel>>;
  try {
    r = await prepareCustomModel({
      config: o.modelConfig,
      checkpoint: o.ckptPath,
      ema: o.ema,
      onConvertStart: progress.start,
      onProgress: (p) => progress.update(p.index),
      onDownload: (enc, e) => {
        if (!opts.quiet && (e.stage === 'downloading' || e.stage === 'resuming')) console.error(`downloading ${enc} (the config needs it): ${e.file}…`);
      },
    });
  } finally {
    progress.stop();
  }
  if (!opts.quiet) {
    console.error(r.converted ? `converted into the cache as "${r.name}" (${r.dir})` : `using the cached conversion "${r.name}" (${r.dir})`);
    for (const n of r.notes) console.error(`  ${n}`);
  }
  return r.name;
}
