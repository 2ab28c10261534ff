// The files of a batch item in its output directory: <id>.wav, <id>.mp4 (with a video) and <id>.json,
// each written atomically (temp file + rename), the JSON last: an item is complete when its JSON is there
// and every file it lists has the size it records. Shared by `audiox batch` and the queue workers.
import fs from 'node:fs';
import path from 'node:path';
import { writeAtomically } from '../io/ffmpeg.ts';
import type { BatchItem, ItemOptions } from './item.ts';

export const FAILURES_FILE = 'failures.jsonl';

export interface ItemPaths {
  wav: string;
  mp4: string | null;
  json: string;
}

export function itemPaths(dir: string, id: string, video: boolean): ItemPaths {
  return {
    wav: path.join(dir, `${id}.wav`),
    mp4: video ? path.join(dir, `${id}.mp4`) : null,
    json: path.join(dir, `${id}.json`),
  };
}

export interface OutputFile {
  /** File name, relative to the record's directory. */
  file: string;
  bytes: number;
}

/** <id>.json: what was asked, what it resolved to, and what it took. */
export interface ItemRecord {
  id: string;
  row: number;
  model: string;
  backend: string;
  seed: number;
  sampleRate: number;
  seconds: number;
  /** The item as requested (defaults filled in). */
  item: ItemOptions;
  /** Every generation parameter as resolved by generate(). */
  params: Record<string, unknown>;
  outputs: { wav: OutputFile; mp4?: OutputFile };
  /** Conditioner ids whose outputs were reused from an earlier item with the same inputs. */
  reusedConditioning: string[];
  timings: { conditioningMs: number; samplingMs: number; decodeMs: number; writeMs: number; totalMs: number };
  host: string;
  pid: number;
  finishedAt: string;
}

/** The record of a complete item, or null (no JSON, unreadable, or an output missing or of another size). */
export function readCompleteRecord(dir: string, id: string): ItemRecord | null {
  let rec: ItemRecord;
  try {
    rec = JSON.parse(fs.readFileSync(path.join(dir, `${id}.json`), 'utf8')) as ItemRecord;
  } catch {
    return null;
  }
  if (!rec || rec.id !== id || !rec.outputs?.wav) return null;
  for (const o of [rec.outputs.wav, rec.outputs.mp4]) {
    if (!o) continue;
    try {
      if (fs.statSync(path.join(dir, o.file)).size !== o.bytes) return null;
    } catch {
      return null;
    }
  }
  return rec;
}

/** Whether the item's outputs in `dir` are complete. */
export function isComplete(dir: string, item: BatchItem): boolean {
  return readCompleteRecord(dir, item.id) !== null;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Removes temp files a killed writer of this item left behind (the atomic writers name them
 * `.<id>.tmp-<pid>-<random>.<ext>`); returns their names.
 */
export function removeStaleTemps(dir: string, id: string): string[] {
  const re = new RegExp(`^\\.${escapeRegExp(id)}\\.tmp-\\d+-[a-z0-9]+\\.(wav|mp4|json)$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => re.test(n));
  } catch {
    return [];
  }
  for (const n of names) fs.rmSync(path.join(dir, n), { force: true });
  return names;
}

export async function writeRecord(file: string, record: ItemRecord): Promise<void> {
  await writeAtomically(file, (tmp) => fs.promises.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`));
}

export interface FailureEntry {
  id: string;
  row: number;
  error: string;
  at: string;
}

export function appendFailure(dir: string, entry: FailureEntry): void {
  fs.appendFileSync(path.join(dir, FAILURES_FILE), `${JSON.stringify(entry)}\n`);
}
