// Manifests: one item per row, JSONL (one object per line) or CSV (a header row of field names). The whole
// manifest is checked before anything runs: every problem is collected, with its row, and reported at once.
import fs from 'node:fs';
import path from 'node:path';
import { generateOptions } from '../cli/commands/generate.ts';
import { resolveParams, type ModelLimits } from '../pipeline/generate.ts';
import { parseCsv, CsvError } from './csv.ts';
import { ITEM_DEFAULTS, ITEM_FIELDS, deriveSeed, flagsAsFields, toCliOptions, type BatchItem, type FieldKind, type ItemDefaults, type ItemOptions } from './item.ts';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_ID_LENGTH = 128;
/** At most this many problems are spelled out in the error message (all are in `problems`). */
const MAX_LISTED = 50;

export interface ManifestProblem {
  /** Line of the row (1-based); 0 for the manifest as a whole. */
  row: number;
  message: string;
}

export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly problems: ManifestProblem[],
  ) {
    const listed = problems.slice(0, MAX_LISTED).map((p) => (p.row ? `  row ${p.row}: ${p.message}` : `  ${p.message}`));
    if (problems.length > MAX_LISTED) listed.push(`  … and ${problems.length - MAX_LISTED} more`);
    const n = problems.length;
    super(`manifest ${file} has ${n} problem${n === 1 ? '' : 's'}; nothing was started:\n${listed.join('\n')}`);
    this.name = 'ManifestError';
  }
}

export interface ReadManifestOptions {
  /** Generation defaults from the command line (a row's own fields win). */
  defaults?: ItemDefaults;
  /** Base of the derived seeds of rows without a seed (default 0). */
  seed?: number;
  /** The model's limits, to check lengths against (default: no model-specific limit). */
  limits?: ModelLimits;
  /** `json` or `csv`; default from the extension (.csv is CSV, anything else JSONL). */
  format?: 'jsonl' | 'csv';
}

interface RawRow {
  line: number;
  fields: Record<string, unknown>;
}

function normalizeName(s: string): string {
  return s.toLowerCase().replace(/[_\-\s]/g, '');
}

function unknownField(name: string): string {
  const known = ['id', ...Object.keys(ITEM_FIELDS)];
  const close = known.find((k) => normalizeName(k) === normalizeName(name));
  if (name === 'batchSize' || name === 'batch') return `unknown field "${name}": one row is one output; repeat the row with other ids instead`;
  if (name === 'model') return 'unknown field "model": the model is chosen for the whole batch (--model)';
  return `unknown field "${name}"${close ? ` (did you mean "${close}"?)` : ''}; known: ${known.join(', ')}`;
}

function readRows(text: string, format: 'jsonl' | 'csv', problems: ManifestProblem[]): RawRow[] {
  const rows: RawRow[] = [];
  if (format === 'jsonl') {
    const lines = text.replace(/^\ufeff/, '').split(/\r?\n/);
    lines.forEach((l, i) => {
      const s = l.trim();
      if (s === '' || s.startsWith('#')) return;
      let v: unknown;
      try {
        v = JSON.parse(s);
      } catch (e) {
        problems.push({ row: i + 1, message: `not valid JSON (${(e as Error).message})` });
        return;
      }
      if (!v || typeof v !== 'object' || Array.isArray(v)) {
        problems.push({ row: i + 1, message: 'a row must be a JSON object like {"id": "a", "prompt": "…"}' });
        return;
      }
      rows.push({ line: i + 1, fields: v as Record<string, unknown> });
    });
    return rows;
  }
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvError) {
      problems.push({ row: e.line, message: e.message.replace(/^line \d+: /, '') });
      return [];
    }
    throw e;
  }
  if (!records.length) return [];
  const header = records[0].cells.map((h) => h.trim());
  const seen = new Set<string>();
  for (const h of header) {
    if (h === '') problems.push({ row: records[0].line, message: 'the header has an empty column name' });
    else if (seen.has(h)) problems.push({ row: records[0].line, message: `column "${h}" appears twice in the header` });
    else if (h !== 'id' && !(h in ITEM_FIELDS)) problems.push({ row: records[0].line, message: unknownField(h) });
    seen.add(h);
  }
  if (!header.includes('id')) problems.push({ row: records[0].line, message: 'the header has no "id" column' });
  for (const r of records.slice(1)) {
    if (r.cells.length !== header.length) {
      problems.push({ row: r.line, message: `has ${r.cells.length} cells, the header has ${header.length}` });
      continue;
    }
    const fields: Record<string, unknown> = {};
    header.forEach((h, i) => {
      // Empty cells are unset; unknown columns were reported once, on the header.
      if (r.cells[i] !== '' && (h === 'id' || h in ITEM_FIELDS)) fields[h] = r.cells[i];
    });
    rows.push({ line: r.line, fields });
  }
  return rows;
}

/** Converts one field to its type; returns an error message or the value. */
function convert(name: string, kind: FieldKind, v: unknown): { value?: unknown; error?: string } {
  const shown = typeof v === 'string' ? `"${v}"` : JSON.stringify(v);
  switch (kind) {
    case 'text':
    case 'file':
      if (typeof v !== 'string') return { error: `${name} must be a string, got ${shown}` };
      if (kind === 'file' && v.trim() === '') return { error: `${name} is empty; leave it out instead` };
      return { value: v };
    case 'number':
    case 'integer': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (!Number.isFinite(n)) return { error: `${name} must be a number, got ${shown}` };
      if (kind === 'integer' && !Number.isInteger(n)) return { error: `${name} must be an integer, got ${shown}` };
      return { value: n };
    }
    case 'boolean': {
      if (typeof v === 'boolean') return { value: v };
      const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
      if (['true', '1', 'yes'].includes(s)) return { value: true };
      if (['false', '0', 'no'].includes(s)) return { value: false };
      return { error: `${name} must be true or false, got ${shown}` };
    }
    case 'position':
      if (typeof v === 'number' && Number.isFinite(v)) return { value: String(v) };
      if (typeof v === 'string' && v.trim() !== '') return { value: v.trim() };
      return { error: `${name} must be seconds or a percentage like "30%", got ${shown}` };
  }
}

function checkId(v: unknown): { id?: string; error?: string } {
  if (v === undefined || v === null || v === '') return { error: 'has no id (every row needs a unique "id", used as its file name)' };
  const id = typeof v === 'number' && Number.isInteger(v) ? String(v) : v;
  if (typeof id !== 'string') return { error: `id must be a string, got ${JSON.stringify(v)}` };
  if (!ID_PATTERN.test(id) || id.length > MAX_ID_LENGTH) {
    return {
      error: `id "${id}" is not safe as a file name: use letters, digits, ".", "_" and "-", starting with a letter or digit, at most ${MAX_ID_LENGTH} characters`,
    };
  }
  return { id };
}

function checkFile(name: string, rel: string, base: string): string | { error: string } {
  const abs = path.resolve(base, rel);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return { error: `${name} "${rel}" not found${abs !== rel ? ` (looked for ${abs})` : ''}` };
  }
  if (!st.isFile()) return { error: `${name} "${rel}" is not a regular file` };
  if (st.size === 0) return { error: `${name} "${rel}" is empty` };
  try {
    fs.accessSync(abs, fs.constants.R_OK);
  } catch {
    return { error: `${name} "${rel}" is not readable` };
  }
  return abs;
}

/** Detects the format from the extension: .csv → CSV, anything else (.jsonl, .ndjson, .json) → JSONL. */
export function manifestFormat(file: string): 'jsonl' | 'csv' {
  return path.extname(file).toLowerCase() === '.csv' ? 'csv' : 'jsonl';
}

/**
 * Reads and checks a whole manifest: unknown fields, missing or duplicate ids, unsafe ids, wrong types,
 * missing media (relative paths are taken from the manifest's folder) and out-of-range values (the same
 * checks `audiox generate` makes). Throws a ManifestError listing every problem; returns the items in order.
 */
export function readManifest(file: string, opts: ReadManifestOptions = {}): BatchItem[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ManifestError(file, [{ row: 0, message: `cannot read the manifest: ${(e as Error).message}` }]);
  }
  return parseManifest(text, { ...opts, file, format: opts.format ?? manifestFormat(file) });
}

/** readManifest() on text; `file` names it in messages and its folder is the base of relative media paths. */
export function parseManifest(text: string, opts: ReadManifestOptions & { file: string }): BatchItem[] {
  const problems: ManifestProblem[] = [];
  const base = path.dirname(path.resolve(opts.file));
  const limits: ModelLimits = opts.limits ?? { name: 'any', maxSeconds: Infinity };
  const baseSeed = opts.seed ?? 0;
  const rows = readRows(text, opts.format ?? manifestFormat(opts.file), problems);
  const items: BatchItem[] = [];
  const ids = new Map<string, { id: string; row: number }>();
  for (const { line, fields } of rows) {
    const rowProblems: string[] = [];
    const { id, error } = checkId(fields.id);
    if (error) rowProblems.push(error);
    if (id) {
      // Case-insensitively: "A" and "a" would be the same files on macOS and Windows.
      const prev = ids.get(id.toLowerCase());
      if (prev) rowProblems.push(prev.id === id ? `duplicate id "${id}" (first on row ${prev.row})` : `id "${id}" clashes with "${prev.id}" (row ${prev.row}) on case-insensitive file systems`);
      else ids.set(id.toLowerCase(), { id, row: line });
    }
    const values: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(fields)) {
      if (name === 'id') continue;
      const kind = ITEM_FIELDS[name as keyof ItemOptions];
      if (!kind) {
        rowProblems.push(unknownField(name));
        continue;
      }
      if (v === null || v === undefined) continue;
      const c = convert(name, kind, v);
      if (c.error) {
        rowProblems.push(c.error);
        continue;
      }
      if (kind === 'file') {
        const f = checkFile(name, c.value as string, base);
        if (typeof f !== 'string') rowProblems.push(f.error);
        else values[name] = f;
      } else values[name] = c.value;
    }
    if (values.seed === -1) rowProblems.push('seed -1 (random) cannot be reproduced; leave the seed out to derive one from --seed and the id');
    if (!rowProblems.length && id) {
      const options = {
        ...ITEM_DEFAULTS,
        ...stripUndefined(opts.defaults ?? {}),
        ...values,
        seed: (values.seed as number | undefined) ?? deriveSeed(baseSeed, id),
      } as ItemOptions;
      const item: BatchItem = { id, row: line, options };
      try {
        resolveParams(limits, generateOptions(toCliOptions(item, limits.name)));
        items.push(item);
      } catch (e) {
        rowProblems.push(flagsAsFields((e as Error).message));
      }
    }
    for (const message of rowProblems) problems.push({ row: line, message });
  }
  if (!rows.length && !problems.length) problems.push({ row: 0, message: 'the manifest has no items' });
  if (problems.length) throw new ManifestError(opts.file, problems.sort((a, b) => a.row - b.row));
  return items;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
