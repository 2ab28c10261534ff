// Pipeline fixtures whose video conditioner runs with the CLIP tower faked (pipeline/maf_mel): the reference
// replaced CLIPVisionModelWithProjection by a stand-in returning inputs/clip_last_hidden_state and shrank the
// hard-coded tail modules (sizes in the notes). Here the model's own video conditioner is built at those sizes
// without a tower, and its tail is run on the stored hidden state; generate() then takes its output as a
// precomputed conditioning tensor, exactly as the reference passed its conditioning_tensors.
import * as tf from '@tensorflow/tfjs';
import { CLIPConditioner, CLIPWithSyncWithEmptyFeatureConditioner } from '../../models/conditioners/video/clip.ts';
import type { ConditionedDiffusionModelWrapper } from '../../models/wrapper.ts';
import type { ConditionerOutput } from '../../pipeline/types.ts';
import type { Fixture } from '../types.ts';
import { shrunkSizes, type Shrunk } from './conditioners/clip.ts';

const VIDEO_TYPES = ['clip', 'clip-with-sync-w-empty-feat'];

/** The `{'D': 32, …}` dict the notes give after "hard-coded modules shrunk:", or null. */
export function shrunkFromNotes(notes: string): Shrunk | null {
  const m = /hard-coded modules shrunk:\s*(\{[^}]*\})/.exec(notes);
  if (!m) return null;
  try {
    return JSON.parse(m[1].replace(/'/g, '"')) as Shrunk;
  } catch {
    throw new Error(`cannot parse the shrunk sizes in the fixture notes: ${m[1]}`);
  }
}

interface ConfigEntry {
  id: string;
  type: string;
  config?: Record<string, unknown>;
}

/**
 * The fixture config with the shrunk sizes put on its video conditioner entries (`_sizes`, no CLIP tower) when
 * the fixture fakes the tower; otherwise the config unchanged.
 */
export function withFakedClipSizes(fx: Fixture, config: Record<string, unknown>): Record<string, unknown> {
  if (!fx.has('inputs/clip_last_hidden_state')) return config;
  const shrunk = shrunkFromNotes(fx.notes);
  if (!shrunk) throw new Error('the fixture fakes the CLIP tower (inputs/clip_last_hidden_state) but its notes give no shrunk sizes');
  const copy = structuredClone(config) as { model: { conditioning: { configs: ConfigEntry[] } } };
  for (const e of copy.model.conditioning.configs) {
    if (VIDEO_TYPES.includes(e.type)) e.config = { ...(e.config ?? {}), _sizes: shrunkSizes(shrunk, fx) };
  }
  return copy as unknown as Record<string, unknown>;
}

/** The video conditioners' outputs from the stored CLIP hidden state (caller disposes), by conditioner id. */
export function fakedClipConditioning(fx: Fixture, wrapper: ConditionedDiffusionModelWrapper): Record<string, ConditionerOutput> {
  const out: Record<string, ConditionerOutput> = {};
  if (!fx.has('inputs/clip_last_hidden_state')) return out;
  const ids = wrapper.conditioner.ids.filter((id) => {
    const c = wrapper.conditioner.get(id);
    return c instanceof CLIPConditioner || c instanceof CLIPWithSyncWithEmptyFeatureConditioner;
  });
  if (ids.length !== 1) throw new Error(`expected one video conditioner for inputs/clip_last_hidden_state, the model has ${ids.length}`);
  const c = wrapper.conditioner.get(ids[0]) as CLIPConditioner | CLIPWithSyncWithEmptyFeatureConditioner;
  const names = ['inputs/video', 'inputs/clip_last_hidden_state', ...(fx.has('inputs/video_sync_frames') ? ['inputs/video_sync_frames'] : [])];
  const [video, hidden, sync] = names.map((n) => fx.tensor(n));
  try {
    out[ids[0]] = c.forwardFromHidden(video, hidden, sync);
  } finally {
    tf.dispose([video, hidden, ...(sync ? [sync] : [])]);
  }
  return out;
}
