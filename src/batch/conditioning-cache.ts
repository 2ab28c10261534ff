// Conditioning reuse across the items of a batch: the text and video conditioners are deterministic
// functions of their inputs (no random draws), so items with the same prompt, or the same video / image /
// none at the same window, get the very same tensors; they are computed once and handed to generate() as
// precomputed conditioning. Audio prompts are not reused: their conditioners draw from the item's seed.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { isImagePath } from '../io/video.ts';
import { CLIPWithSyncWithEmptyFeatureConditioner, type CLIPConditioner } from '../models/conditioners/video/clip.ts';
import { conditionerKind } from '../models/conditioners/multi.ts';
import type { AudioXModel } from '../models/load.ts';
import { syncFeatures, videoFrames, type MediaOptions } from '../pipeline/media.ts';
import type { ConditionerOutput, GenerateOptions } from '../pipeline/types.ts';
import { SeededNoise } from '../sampling/noise.ts';

export interface CacheStats {
  hits: number;
  misses: number;
}

function fileKey(file: string): string {
  const abs = path.resolve(file);
  const st = fs.statSync(abs);
  return `${abs}\0${st.size}\0${st.mtimeMs}`;
}

export class ConditioningCache {
  private readonly entries = new Map<string, ConditionerOutput>();
  private readonly capacity: number;
  readonly stats: CacheStats = { hits: 0, misses: 0 };

  /** `capacity`: how many conditioner outputs are kept (least recently used go first). */
  constructor(
    private readonly model: AudioXModel,
    capacity = 32,
  ) {
    // At least one generation's worth, so eviction never takes what the current lookup returns.
    this.capacity = Math.max(capacity, model.wrapper.conditioner.ids.length);
  }

  /** What identifies a conditioner's output for these options, or null when it is not reusable. */
  private key(id: string, o: GenerateOptions): string | null {
    const kind = conditionerKind(this.model.wrapper.conditioner.get(id));
    if (kind === 'text') return `${id}\0text\0${o.prompt ?? ''}`;
    if (kind !== 'video') return null;
    const quirks = o.referenceQuirks ? 1 : 0;
    const file = o.video ?? o.image;
    if (!file) return `${id}\0none`;
    if (o.image || isImagePath(file)) return `${id}\0image\0${fileKey(file)}\0${quirks}`;
    return `${id}\0video\0${fileKey(file)}\0${o.secondsStart ?? 0}\0${quirks}`;
  }

  private async compute(id: string, o: GenerateOptions, signal?: AbortSignal): Promise<ConditionerOutput> {
    const model = this.model;
    const conditioner = model.wrapper.conditioner;
    const noise = new SeededNoise(0); // unused by text and video conditioners
    if (conditionerKind(conditioner.get(id)) === 'text') return conditioner.condition(id, [o.prompt ?? ''], { noise });
    const vc = conditioner.get(id) as CLIPConditioner | CLIPWithSyncWithEmptyFeatureConditioner;
    const media: MediaOptions = { seekTime: o.secondsStart ?? 0, referenceQuirks: o.referenceQuirks ?? false, signal };
    const video = await videoFrames(model, vc, { video: o.video, image: o.image }, media);
    let sync: tf.Tensor | undefined;
    try {
      if (vc instanceof CLIPWithSyncWithEmptyFeatureConditioner) sync = await syncFeatures(model, vc, { video: o.video, image: o.image }, media);
      return conditioner.condition(id, { video, syncFeatures: sync }, { noise });
    } finally {
      tf.dispose([video, ...(sync ? [sync] : [])]);
    }
  }

  /**
   * The reusable conditioning of one generation (batch size 1), computed now if not cached. The tensors
   * stay owned by the cache (generate() copies precomputed conditioning); `reused` lists the ids that
   * came from an earlier item.
   */
  async lookup(o: GenerateOptions, signal?: AbortSignal): Promise<{ tensors: Record<string, ConditionerOutput>; reused: string[] }> {
    if ((o.batchSize ?? 1) !== 1) return { tensors: {}, reused: [] };
    const tensors: Record<string, ConditionerOutput> = {};
    const reused: string[] = [];
    for (const id of this.model.wrapper.conditioner.ids) {
      const key = this.key(id, o);
      if (key === null) continue;
      let hit = this.entries.get(key);
      if (hit) {
        this.entries.delete(key); // most recently used goes last
        this.entries.set(key, hit);
        this.stats.hits++;
        reused.push(id);
      } else {
        hit = await this.compute(id, o, signal);
        this.stats.misses++;
        this.entries.set(key, hit);
        this.evict();
      }
      tensors[id] = hit;
    }
    return { tensors, reused };
  }

  private evict(): void {
    while (this.entries.size > this.capacity) {
      const [k, v] = this.entries.entries().next().value as [string, ConditionerOutput];
      tf.dispose([v.embedding, v.mask]);
      this.entries.delete(k);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  dispose(): void {
    for (const v of this.entries.values()) tf.dispose([v.embedding, v.mask]);
    this.entries.clear();
  }
}
