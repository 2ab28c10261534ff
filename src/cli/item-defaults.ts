// Generation options given on the command line of `audiox batch` and `audiox queue submit`: defaults for
// the manifest's rows (a row's own field wins).
import type { Command } from 'commander';
import type { ItemDefaults } from '../batch/item.ts';
import { ITEM_DEFAULTS } from '../batch/item.ts';
import { SAMPLER_NAMES } from '../pipeline/generate.ts';
import { int, num } from './commands/generate.ts';

export interface ItemDefaultsCliOptions {
  seed: number;
  negativePrompt?: string;
  secondsStart?: number;
  seconds?: number;
  steps?: number;
  cfg?: number;
  cfgRescale?: number;
  sampler?: string;
  sigmaMin?: number;
  sigmaMax?: number;
  fullLength?: boolean;
  referenceQuirks?: boolean;
}

export function addItemDefaultsOptions(cmd: Command): Command {
  const d = ITEM_DEFAULTS;
  return cmd
    .option('--seed <n>', 'base of the seeds of rows without a seed: each gets a hash of (this, its id)', int('--seed'), 0)
    .option('--negative-prompt <text>', 'default negative prompt')
    .option('--seconds-start <s>', `default start of the conditioning window in the media (default ${d.secondsStart})`, num('--seconds-start'))
    .option('--seconds <s>', 'default length of the audio (default 10, at most the model length)', num('--seconds'))
    .option('--steps <n>', `default sampling steps (default ${d.steps})`, int('--steps'))
    .option('--cfg <x>', `default classifier-free guidance scale (default ${d.cfgScale})`, num('--cfg'))
    .option('--cfg-rescale <x>', `default CFG rescale (default ${d.cfgRescale})`, num('--cfg-rescale'))
    .option('--sampler <name>', `default sampler: ${SAMPLER_NAMES.join(', ')} (default ${d.sampler})`)
    .option('--sigma-min <x>', `default smallest noise level (default ${d.sigmaMin})`, num('--sigma-min'))
    .option('--sigma-max <x>', `default largest noise level (default ${d.sigmaMax})`, num('--sigma-max'))
    .option('--full-length', 'keep the whole decoded window (as `generate --full-length`)')
    .option('--reference-quirks', "reproduce the reference demo's preprocessing bugs (as `generate --reference-quirks`)");
}

export function itemDefaults(o: ItemDefaultsCliOptions): ItemDefaults {
  return {
    negativePrompt: o.negativePrompt,
    secondsStart: o.secondsStart,
    secondsTotal: o.seconds,
    steps: o.steps,
    cfgScale: o.cfg,
    cfgRescale: o.cfgRescale,
    sampler: o.sampler,
    sigmaMin: o.sigmaMin,
    sigmaMax: o.sigmaMax,
    fullLength: o.fullLength,
    referenceQuirks: o.referenceQuirks,
  };
}
