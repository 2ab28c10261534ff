// The video modality: `clip` and `clip-with-sync-w-empty-feat`.
import type { ConditionerFactory } from '../registry.ts';
import { videoConditionerFromConfig, type VideoConditionerSizes } from './clip.ts';

/** Project-specific size overrides for tiny models (e.g. the demo): `config._sizes` of a video entry. */
interface EntryExtras {
  _sizes?: Partial<VideoConditionerSizes>;
}

const build: ConditionerFactory = (entry, condDim) => videoConditionerFromConfig(entry, condDim, ((entry.config ?? {}) as EntryExtras)._sizes ?? {});

export const VIDEO_CONDITIONERS: Readonly<Record<string, ConditionerFactory>> = {
  clip: build,
  'clip-with-sync-w-empty-feat': build,
};
