// `conditioners` fixtures: one component for every conditioner type, dispatched on the reference class
// named in the fixture's `reference` metadata. Each handler lives in ./conditioners/<name>.ts and is
// imported on demand, so a handler that does not exist yet fails its cases with a clear message
// instead of breaking the whole component.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Fixture, Runner, RunnerResult } from '../types.ts';
import { MODULE_EXT } from '../../layout.ts';

type Handler = (fx: Fixture) => Promise<RunnerResult>;

/** Reference class → [handler file in ./conditioners/, exported function]. */
const HANDLERS: Record<string, [file: string, fn: string]> = {
  NumberConditioner: ['number.ts', 'runNumberCase'],
  AudioMelConditioner: ['mel.ts', 'runMelCase'],
  AudioAutoencoderConditioner: ['audio.ts', 'runAudioAutoencoderCase'],
  AudioAutoencoderConditionerv2: ['audio.ts', 'runAudioAutoencoderCase'],
  CLIPConditioner: ['clip.ts', 'runClipCase'],
  CLIPWithSyncWithEmptyFeatureConditioner: ['clip.ts', 'runClipCase'],
};

const HANDLER_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'conditioners');

/** The conditioner class of `audiox.models.conditioners.<Class>.forward …`. */
export function referenceClass(reference: string): string | null {
  return /\bconditioners\.(\w+)\.forward\b/.exec(reference)?.[1] ?? null;
}

async function loadHandler(file: string, fn: string): Promise<Handler> {
  let mod: Record<string, unknown>;
  try {
    // A computed specifier keeps the type checker from requiring handlers that are not written yet.
    mod = (await import(pathToFileURL(path.join(HANDLER_DIR, file.replace(/\.ts$/, MODULE_EXT))).href)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find module|Failed to load url|does not exist/i.test((e as Error).message)) {
      throw new Error(`handler not available yet: src/parity/runners/conditioners/${file} does not exist`);
    }
    throw e;
  }
  const h = mod[fn];
  if (typeof h !== 'function') throw new Error(`handler not available yet: conditioners/${file} does not export ${fn}()`);
  return h as Handler;
}

export interface ConditionerEntryConfig {
  id: string;
  type: string;
  /** The entry's config with the factory's `output_dim = cond_dim` merged in. */
  config: Record<string, unknown> & { output_dim: number };
}

/** The fixture's conditioner entry of `type`, as create_multi_conditioner_from_conditioning_config sees it. */
export function conditionerEntry(fx: Fixture, type: string): ConditionerEntryConfig {
  const conditioning = fx.config.conditioning as
    | { cond_dim?: number; configs?: { id: string; type: string; config?: Record<string, unknown> }[] }
    | undefined;
  const entry = conditioning?.configs?.find((c) => c.type === type);
  if (!entry || typeof conditioning?.cond_dim !== 'number') {
    throw new Error(`fixture config has no conditioning.cond_dim / "${type}" entry in conditioning.configs`);
  }
  return { id: entry.id, type: entry.type, config: { output_dim: conditioning.cond_dim, ...(entry.config ?? {}) } };
}

async function run(fx: Fixture): Promise<RunnerResult> {
  const cls = referenceClass(fx.reference);
  if (!cls) throw new Error(`conditioners fixture: cannot tell the conditioner class from reference "${fx.reference}"`);
  const entry = HANDLERS[cls];
  if (!entry) throw new Error(`conditioners fixture: no handler for ${cls} (known: ${Object.keys(HANDLERS).join(', ')})`);
  return (await loadHandler(...entry))(fx);
}

export const runner: Runner = { component: 'conditioners', run };
