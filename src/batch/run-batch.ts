// `audiox batch`: a whole manifest on this machine, the model loaded once. Complete items are skipped (an
// interrupted batch resumes), failures are logged to failures.jsonl and do not stop the batch.
import fs from 'node:fs';
import path from 'node:path';
import { preflightModel } from '../cli/commands/generate.ts';
import type { ItemDefaults } from './item.ts';
import { readManifest } from './manifest.ts';
import { FAILURES_FILE, appendFailure, isComplete, type FailureEntry } from './outputs.ts';
import { BatchProgress, formatDuration } from './progress.ts';
import { ItemRunner } from './runner.ts';

export interface BatchOptions {
  model: string;
  out: string;
  /** Base of the derived seeds. */
  seed: number;
  defaults: ItemDefaults;
  overwrite?: boolean;
  progress?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface BatchSummary {
  total: number;
  skipped: number;
  done: number;
  failed: number;
  failures: FailureEntry[];
  /** Items generated (or failed) per hour in this run; NaN when none ran. */
  itemsPerHour: number;
  seconds: number;
}

function isAbort(e: unknown, signal?: AbortSignal): boolean {
  return !!signal?.aborted && (e as Error)?.name === 'AbortError';
}

export async function runBatch(manifest: string, o: BatchOptions): Promise<BatchSummary> {
  const log = o.log ?? ((s: string) => console.error(s));
  const t0 = performance.now();
  // Everything is checked before the weights are loaded or a file is written.
  const model = preflightModel(o.model);
  const items = readManifest(manifest, { defaults: o.defaults, seed: o.seed, limits: model });
  fs.mkdirSync(o.out, { recursive: true });
  fs.accessSync(o.out, fs.constants.W_OK);
  const todo = o.overwrite ? items : items.filter((it) => !isComplete(o.out, it));
  const skipped = items.length - todo.length;
  // Every failed item of an earlier run is tried again, so its old failures no longer apply.
  fs.rmSync(path.join(o.out, FAILURES_FILE), { force: true });
  log(`${items.length} items in ${manifest}: ${skipped} already complete in ${o.out}, ${todo.length} to generate`);
  const summary: BatchSummary = { total: items.length, skipped, done: 0, failed: 0, failures: [], itemsPerHour: NaN, seconds: 0 };
  if (!todo.length) return summary;
  if (model.demo) log('note: the demo model has untrained, synthetic weights: it shows the pipeline working, not AudioX quality.');
  log(`loading model ${model.name}…`);
  const runner = await ItemRunner.load(o.model);
  const progress = new BatchProgress(todo.length, { enabled: o.progress !== false });
  try {
    for (const item of todo) {
      if (o.signal?.aborted) break;
      const t = performance.now();
      try {
        await runner.run(item, o.out, {
          overwrite: o.overwrite,
          signal: o.signal,
          onProgress: (step, steps) => progress.step(item.id, step, steps),
        });
        summary.done++;
        progress.finish(item.id, true, (performance.now() - t) / 1000);
      } catch (e) {
        if (isAbort(e, o.signal)) break;
        const entry: FailureEntry = { id: item.id, row: item.row, error: (e as Error).message, at: new Date().toISOString() };
        appendFailure(o.out, entry);
        summary.failures.push(entry);
        summary.failed++;
        progress.finish(item.id, false, (performance.now() - t) / 1000, entry.error);
      }
    }
  } finally {
    progress.stop();
    summary.itemsPerHour = progress.itemsPerHour;
    runner.dispose();
  }
  summary.seconds = (performance.now() - t0) / 1000;
  const rate = Number.isFinite(summary.itemsPerHour) ? `, ${Math.round(summary.itemsPerHour)} items/h` : '';
  log(`batch: ${summary.done} generated, ${summary.skipped} skipped, ${summary.failed} failed in ${formatDuration(summary.seconds)}${rate}`);
  for (const f of summary.failures) log(`  failed ${f.id} (row ${f.row}): ${f.error}`);
  if (summary.failed) log(`failures are listed in ${path.join(o.out, FAILURES_FILE)}; run the batch again to retry them`);
  return summary;
}
