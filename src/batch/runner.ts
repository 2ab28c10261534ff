// Runs manifest items on one loaded model: the checks and option mapping of `audiox generate`, reused
// conditioning, then the outputs (WAV, mp4 with a video, the JSON record last). Used by `audiox batch` and
// by the queue workers, so both write the same files the same way.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { activeBackend } from '../backend/index.ts';
import { generateOptions, preflight } from '../cli/commands/generate.ts';
import { muxVideoWithAudio } from '../io/mux.ts';
import { writeWav } from '../io/wav.ts';
import type { AudioXModel } from '../models/load.ts';
import { loadModel } from '../pipeline/load.ts';
import { generate } from '../pipeline/generate.ts';
import { ConditioningCache } from './conditioning-cache.ts';
import { flagsAsFields, toCliOptions, type BatchItem } from './item.ts';
import { itemPaths, readCompleteRecord, removeStaleTemps, writeRecord, type ItemRecord } from './outputs.ts';

export interface RunItemOptions {
  /** Redo an item even when its outputs are complete. */
  overwrite?: boolean;
  signal?: AbortSignal;
  /** After each sampling step (1-based `step`). */
  onProgress?: (step: number, steps: number) => void;
}

export type ItemOutcome = { status: 'done' | 'skipped'; record: ItemRecord };

function abortError(): Error {
  return Object.assign(new Error('generation cancelled'), { name: 'AbortError' });
}

/** A manifest row's problem (its message names manifest fields, not CLI flags). */
export class ItemError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ItemError';
  }
}

export class ItemRunner {
  readonly cache: ConditioningCache;

  /** `modelSpec`: the model as given on the command line (a name or a directory). */
  constructor(
    readonly model: AudioXModel,
    readonly modelSpec: string,
  ) {
    this.cache = new ConditioningCache(model);
  }

  static async load(modelSpec: string): Promise<ItemRunner> {
    return new ItemRunner(await loadModel(modelSpec), modelSpec);
  }

  /**
   * Generates one item into `dir` unless it is complete there already. On failure (or cancellation)
   * nothing of it is left: no temp files, no outputs, no record.
   */
  async run(item: BatchItem, dir: string, o: RunItemOptions = {}): Promise<ItemOutcome> {
    const t0 = performance.now();
    const paths = itemPaths(dir, item.id, item.options.video !== undefined);
    if (!o.overwrite) {
      const done = readCompleteRecord(dir, item.id);
      if (done) return { status: 'skipped', record: done };
    }
    // Left by a writer that was killed; and an older record no longer vouches for the files that follow.
    removeStaleTemps(dir, item.id);
    fs.rmSync(paths.json, { force: true });
    const cli = toCliOptions(item, this.modelSpec);
    const outputs = [paths.wav, ...(paths.mp4 ? [paths.mp4] : [])];
    const written: string[] = [];
    try {
      try {
        await preflight(cli, outputs, o.signal);
      } catch (e) {
        throw new ItemError(flagsAsFields((e as Error).message), e);
      }
      const opts = generateOptions(cli);
      const { tensors, reused } = await this.cache.lookup(opts, o.signal);
      const result = await generate(this.model, {
        ...opts,
        conditioningTensors: tensors,
        signal: o.signal,
        onProgress: o.onProgress ? ({ step, steps }) => o.onProgress!(step + 1, steps ?? step + 1) : undefined,
      });
      const tWrite = performance.now();
      const channels = result.audio[0];
      const seconds = channels[0].length / result.sampleRate;
      await writeWav(paths.wav, channels, result.sampleRate);
      written.push(paths.wav);
      if (paths.mp4) {
        await muxVideoWithAudio({ video: item.options.video!, audioWav: paths.wav, out: paths.mp4, start: item.options.secondsStart, duration: seconds, signal: o.signal });
        written.push(paths.mp4);
      }
      if (o.signal?.aborted) throw abortError();
      const file = (p: string) => ({ file: path.basename(p), bytes: fs.statSync(p).size });
      const now = performance.now();
      const record: ItemRecord = {
        id: item.id,
        row: item.row,
        model: this.model.name,
        backend: activeBackend().name,
        seed: result.seed,
        sampleRate: result.sampleRate,
        seconds,
        item: item.options,
        params: result.params,
        outputs: { wav: file(paths.wav), ...(paths.mp4 ? { mp4: file(paths.mp4) } : {}) },
        reusedConditioning: reused,
        timings: { ...result.timings, writeMs: now - tWrite, totalMs: now - t0 },
        host: os.hostname(),
        pid: process.pid,
        finishedAt: new Date().toISOString(),
      };
      // Last: the record marks the item complete.
      await writeRecord(paths.json, record);
      return { status: 'done', record };
    } catch (e) {
      for (const f of written) fs.rmSync(f, { force: true });
      throw e;
    }
  }

  dispose(): void {
    this.cache.dispose();
    this.model.dispose();
  }
}
