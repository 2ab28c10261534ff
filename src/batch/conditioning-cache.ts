// Conditioning reuse across the items of a batch: a conditioner that declares a reuse key (the text and
// video conditioners: deterministic functions of their inputs, no random draws) gives the very same tensors
// to items with equal keys (the same prompt; the same video / image / none at the same window); they are
// computed once and handed to generate() as precomputed conditioning. Audio prompts are not reused: their
// conditioners draw from the item's seed.
import * as tf from '@tensorflow/tfjs';
import type { ConditionerMedia, MediaOptions } from '../models/conditioners/conditioner.ts';
import type { AudioXModel } from '../models/load.ts';
import type { ConditionerOutput, GenerateOptions } from '../pipeline/types.ts';
import { SeededNoise } from '../nn/noise.ts';

export interface CacheStats {
  hits: number;
  misses: number;
}

/** The media of one item as the conditioners see them (what the reuse keys are made of). */
function itemMedia(o: GenerateOptions): ConditionerMedia {
  return {
    prompt: o.prompt ?? '',
    video: o.video,
    image: o.image,
    audio: o.audio,
    secondsStart: o.secondsStart ?? 0,
    secondsTotal: o.secondsTotal ?? 0,
    byId: { ...o.conditionerInputs, ...o.numberConditioning },
  };
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

  private window(o: GenerateOptions, signal?: AbortSignal): MediaOptions {
    return { seekTime: o.secondsStart ?? 0, referenceQuirks: o.referenceQuirks ?? false, signal };
  }

  /** What identifies a conditioner's output for these options, or null when it is not reusable. */
  private key(id: string, o: GenerateOptions): string | null {
    const k = this.model.wrapper.conditioner.get(id).reuseKey(itemMedia(o), { ...this.window(o), id, host: this.model });
    return k === null ? null : `${id}\0${k}`;
  }

  private async compute(id: string, o: GenerateOptions, signal?: AbortSignal): Promise<ConditionerOutput> {
    const c = this.model.wrapper.conditioner.get(id);
    const input = await c.prepareInput(itemMedia(o), { ...this.window(o, signal), id, batchSize: 1, host: this.model });
    try {
      return c.condition(input, { noise: new SeededNoise(0) }); // the noise is unused by reusable conditioners
    } finally {
      c.disposeInput(input);
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
