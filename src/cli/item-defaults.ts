// Generation options given on the command line of `audiox batch` and `audiox queue submit`: defaults for
// the manifest's rows (a row's own field wins).
import type { Command } from 'commander';
import type { ItemDefaults } from '../batch/item.ts';
import { PARAMS, defaultText, type ParamName } from '../pipeline/params-schema.ts';
import { addParamOption, int } from './param-options.ts';

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

/** The parameters a batch takes defaults for on its command line (the schema's flags and help). */
const ROW_DEFAULTS: readonly ParamName[] = ['negativePrompt', 'secondsStart', 'secondsTotal', 'steps', 'cfgScale', 'cfgRescale', 'sampler', 'sigmaMin', 'sigmaMax'];

export function addItemDefaultsOptions(cmd: Command): Command {
  cmd.option('--seed <n>', 'base of the seeds of rows without a seed: each gets a hash of (this, its id)', int('--seed'), 0);
  for (const name of ROW_DEFAULTS) {
    const p = PARAMS[name];
    // The sampler's help names the default per objective itself.
    const d = p.kind === 'string' || p.kind === 'sampler' ? '' : ` (default: ${defaultText(p)})`;
    addParamOption(cmd, name, { help: `default for rows: ${p.help}${d}` });
  }
  addParamOption(cmd, 'fullLength', { help: 'keep the whole decoded window (as `generate --full-length`)' });
  return addParamOption(cmd, 'referenceQuirks', { help: "reproduce the reference demo's preprocessing bugs (as `generate --reference-quirks`)" });
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
