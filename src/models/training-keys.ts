// Which tensors of a checkpoint are the model, and under which names. stable-audio-tools' training wrapper saves
// {state_dict: {...}} with the model under `diffusion.` and an EMA copy of its `model` part under
// `diffusion_ema.ema_model.` (plus the EMA's bookkeeping); an unwrapped checkpoint holds the model's keys as they are.

export const DIFFUSION = 'diffusion.';
export const EMA = 'diffusion_ema.';
export const EMA_MODEL = 'diffusion_ema.ema_model.';

export interface KeyPlan {
  /** Checkpoint key → model key, for every tensor that is written. */
  map: Map<string, string>;
  /** Whether the EMA weights were taken for `model.*` (null: the checkpoint has none). */
  ema: boolean | null;
  /** Lines saying which weights were taken and what was left out on purpose. */
  notes: string[];
  /** Tensors that are neither the model nor a known training copy (not written). */
  leftovers: string[];
}

export class CheckpointKeyError extends Error {}

function list(keys: string[], max = 8): string {
  return keys.slice(0, max).join(', ') + (keys.length > max ? `, … (${keys.length} in all)` : '');
}

/**
 * Plans the renaming of a checkpoint's keys. `ema`: true requires the EMA copy, false takes the online weights,
 * undefined takes the EMA copy when there is one.
 */
export function planCheckpointKeys(keys: readonly string[], ema?: boolean): KeyPlan {
  const training = keys.some((k) => k.startsWith(DIFFUSION) || k.startsWith(EMA));
  const hasEma = keys.some((k) => k.startsWith(EMA_MODEL));
  if (ema === true && !hasEma) {
    throw new CheckpointKeyError(`--ema: the checkpoint has no EMA weights (no "${EMA_MODEL}*" tensors); drop --ema to use its weights`);
  }
  const map = new Map<string, string>();
  if (!training) {
    for (const k of keys) map.set(k, k);
    const notes = ['weights: the checkpoint\'s keys as they are (no training wrapper)'];
    if (ema === false) notes.push('--no-ema: there is no EMA copy in this checkpoint');
    return { map, ema: null, notes, leftovers: [] };
  }
  const useEma = hasEma && ema !== false;
  const emaKeys = new Set(keys.filter((k) => k.startsWith(EMA_MODEL)).map((k) => `model.${k.slice(EMA_MODEL.length)}`));
  const leftovers: string[] = [];
  let online = 0;
  let fromEma = 0;
  let onlineFallback = 0;
  let bookkeeping = 0;
  for (const k of keys) {
    if (k.startsWith(EMA_MODEL)) {
      if (useEma) {
        map.set(k, `model.${k.slice(EMA_MODEL.length)}`);
        fromEma++;
      } else bookkeeping++;
    } else if (k.startsWith(EMA)) bookkeeping++;
    else if (k.startsWith(DIFFUSION)) {
      const name = k.slice(DIFFUSION.length);
      if (useEma && emaKeys.has(name)) online++;
      else {
        map.set(k, name);
        if (useEma && name.startsWith('model.')) onlineFallback++;
      }
    } else leftovers.push(k);
  }
  const notes: string[] = [];
  if (useEma) {
    notes.push(
      `weights: EMA copy for model.* (${fromEma} tensors from ${EMA_MODEL}*), the rest from ${DIFFUSION}*; ` +
        `${online} online diffusion.model.* tensors not used (--no-ema takes them instead)`,
    );
    if (onlineFallback) notes.push(`${onlineFallback} diffusion.model.* tensors have no EMA copy; their online values were taken`);
  } else {
    notes.push(`weights: ${DIFFUSION}* (online weights${hasEma ? `, --no-ema; the EMA copy under ${EMA_MODEL}* was not used` : ''})`);
  }
  if (bookkeeping && useEma) notes.push(`${bookkeeping} EMA bookkeeping tensors (${EMA}* outside ema_model) not used`);
  if (leftovers.length) notes.push(`not part of the model, left out: ${list(leftovers)}`);
  return { map, ema: hasEma ? useEma : null, notes, leftovers };
}
