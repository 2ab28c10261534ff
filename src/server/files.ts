// Serving files by name from one directory (the output dir, the page's assets): the name must be a plain file
// name (no separators, no leading dot), must resolve inside the directory without symlinks, and must be a
// regular file. Single byte ranges are supported so <audio>/<video> can seek.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

const TYPES: Record<string, string> = {
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export function isSafeName(name: string): boolean {
  return SAFE_NAME.test(name) && !name.includes('..');
}

/** Resolves `name` inside `dir`, or null when it is not a servable regular file there. */
export function resolveInside(dir: string, name: string): { file: string; size: number } | null {
  if (!isSafeName(name)) return null;
  const root = fs.realpathSync(dir);
  const file = path.join(root, name);
  if (path.dirname(file) !== root) return null;
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return null;
  }
  if (!st.isFile()) return null; // symlinks, directories, devices
  return { file, size: st.size };
}

/** What a Range header asks of a file of `size` bytes (RFC 9110 §14). */
export type RangeRequest =
  /** Serve the whole file (no Range, a malformed or foreign one, several ranges: all may be ignored). */
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  // No range of the set can be satisfied → 416 with `Content-Range: bytes */size`.
  | { kind: 'unsatisfiable' };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Parses a Range header for one file. The grammar is `bytes=` 1#(first-last | first- | -suffix), the unit
 * case-insensitive. A header that does not parse is ignored (200), as RFC 9110 allows; a range whose last
 * position precedes its first, or that starts at or past the end, or an empty suffix, is unsatisfiable. Only a
 * single satisfiable range is answered with 206: several ranges are not combined into multipart/byteranges.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || size <= 0 || header.length > 1000) return { kind: 'full' };
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'full' };
  const specs = header.slice(eq + 1).split(',').map((s) => s.trim());
  const satisfiable: { start: number; end: number }[] = [];
  for (const spec of specs) {
    const m = RANGE_SPEC.exec(spec);
    if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
    if (m[1] === '') {
      const suffix = Number(m[2]);
      if (suffix > 0) satisfiable.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const first = Number(m[1]);
    const last = m[2] === '' ? Infinity : Number(m[2]);
    if (last < first || first >= size) continue;
    satisfiable.push({ start: first, end: Math.min(last, size - 1) });
  }
  if (satisfiable.length === 0) return { kind: 'unsatisfiable' };
  return specs.length === 1 ? { kind: 'partial', ...satisfiable[0] } : { kind: 'full' };
}

/** Sends `name` from `dir`: 400 for a malformed name, 404 when absent, 206/416 for ranges. */
export function sendFileFrom(dir: string, name: string, req: FastifyRequest, reply: FastifyReply, download = false): FastifyReply {
  if (!isSafeName(name)) return reply.code(400).send({ error: `Invalid file name "${name}".` });
  const found = resolveInside(dir, name);
  if (!found) return reply.code(404).send({ error: `No such file: ${name}` });
  // If-Range can only match a validator, and none is sent (no ETag/Last-Modified): the whole file then.
  const range = req.headers['if-range'] === undefined ? parseRange(req.headers.range, found.size) : { kind: 'full' as const };
  if (range.kind === 'unsatisfiable') {
    return reply
      .code(416)
      .header('Content-Range', `bytes */${found.size}`)
      .send({ error: `The requested range cannot be satisfied: ${name} has ${found.size} bytes.` });
  }
  const type = TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
  reply.header('Content-Type', type);
  reply.header('X-Content-Type-Options', 'nosniff');
  reply.header('Accept-Ranges', 'bytes');
  reply.header('Cache-Control', 'no-cache');
  if (download) reply.header('Content-Disposition', `attachment; filename="${name}"`);
  if (range.kind === 'partial') {
    reply.code(206);
    reply.header('Content-Range', `bytes ${range.start}-${range.end}/${found.size}`);
    reply.header('Content-Length', range.end - range.start + 1);
    return reply.send(fs.createReadStream(found.file, { start: range.start, end: range.end }));
  }
  reply.header('Content-Length', found.size);
  return reply.send(fs.createReadStream(found.file));
}

function stamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}-${p(d.getMilliseconds(), 3)}`;
}

/**
 * Reserves a set of new output names sharing one stem, "audiox-YYYYMMDD-HHMMSS-mmm[-n]" + each suffix, by
 * creating every file exclusively, so outputs never overwrite each other (the caller then replaces the empty
 * placeholders). Returns the names in the order of `suffixes`.
 */
export function reserveOutputs(dir: string, suffixes: readonly string[], now = new Date()): string[] {
  const base = `audiox-${stamp(now)}`;
  for (let n = 1; ; n++) {
    const names = suffixes.map((s) => `${base}${n === 1 ? '' : `-${n}`}${s}`);
    const created: string[] = [];
    try {
      for (const name of names) {
        fs.closeSync(fs.openSync(path.join(dir, name), 'wx'));
        created.push(name);
      }
      return names;
    } catch (e) {
      for (const name of created) fs.rmSync(path.join(dir, name), { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
