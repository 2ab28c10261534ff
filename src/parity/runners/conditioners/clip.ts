// `conditioners` fixtures of the CLIP video conditioners (clip / clip-with-sync-w-empty-feat), dispatched here by
// the conditioners runner. The CLIP tower is faked in these fixtures: its last_hidden_state is an input, and the
// hard-coded sizes were shrunk (metadata config.shrunk).
import * as tf from '@tensorflow/tfjs';
import { videoConditionerFromConfig, type ConditionerEntry, type VideoConditionerSizes } from '../../../models/conditioners/video/clip.ts';
import type { Fixture, RunnerResult } from '../../types.ts';

export interface Shrunk {
  D?: number;
  Q?: number;
  T?: number;
  O?: number;
  depth?: number;
  heads?: number;
  dim_head?: number;
}

/** The conditioner sizes of a fixture: its shrunk hard-coded sizes, and no CLIP tower when its output is an input. */
export function fixtureSizes(fx: Fixture): Partial<VideoConditionerSizes> {
  return shrunkSizes((fx.config.shrunk ?? {}) as Shrunk, fx);
}

/** The reference's shrunk hard-coded sizes (metadata `D`, `Q`, `T`, …) as conditioner sizes. */
export function shrunkSizes(s: Shrunk, fx: Fixture): Partial<VideoConditionerSizes> {
  return {
    temporal_dim: s.D,
    tokens: s.Q,
    frames: s.T,
    out_features: s.O,
    sa_depth: s.depth,
    num_heads: s.heads,
    dim_head: s.dim_head,
    mlp_dim: s.D === undefined ? undefined : 4 * s.D, // hidden_scale 4
    clip_vision: fx.has('inputs/clip_last_hidden_state') ? null : undefined,
  };
}

export async function runClipCase(fx: Fixture): Promise<RunnerResult> {
  const conditioning = fx.config.conditioning as { cond_dim?: number; configs?: ConditionerEntry[] } | undefined;
  const entry = conditioning?.configs?.find((c) => c.type === 'clip' || c.type === 'clip-with-sync-w-empty-feat');
  if (!entry) throw new Error('no clip conditioner entry in config.conditioning.configs');
  const m = videoConditionerFromConfig(entry, conditioning?.cond_dim ?? 768, fixtureSizes(fx));
  const inputs: tf.Tensor[] = [];
  const read = (n: string) => {
    const t = fx.tensor(n);
    inputs.push(t);
    return t;
  };
  try {
    m.loadStateDict(fx.params);
    const video = read('inputs/video');
    const sync = fx.has('inputs/video_sync_frames') ? read('inputs/video_sync_frames') : undefined;
    const out = fx.has('inputs/clip_last_hidden_state')
      ? m.forwardFromHidden(video, read('inputs/clip_last_hidden_state'), sync)
      : m.forward(video, sync);
    return { outputs: { embedding: out.embedding, mask: out.mask } };
  } finally {
    inputs.forEach((t) => t.dispose());
    m.dispose();
  }
}
