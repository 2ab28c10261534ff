// Every `§N.M` and `quirk N` the code cites must name a heading / numbered quirk of docs/REFERENCE.md,
// and nothing may still point at the out-of-repository spec the references were first written against.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REFERENCE = path.join(ROOT, 'docs', 'REFERENCE.md');
const SCANNED_DIRS = ['src', 'test', 'bench', 'weights-converter', 'bin'];
const SCANNED_FILES = ['README.md', 'docs/REFERENCE.md'];
const SOURCE_EXT = /\.(?:[cm]?[jt]s|py)$/;
const SELF = fileURLToPath(import.meta.url);

/** Section numbers of the `##` / `###` headings (`## 2. Title` → "2", `### 2.3 Title` → "2.3"). */
function headingNumbers(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{2,3}[ \t]+(\d+(?:\.\d+)*)\.?[ \t]/gm)) out.add(m[1]);
  return out;
}

/** Numbers of the list items `N. …` of section 9 (the quirks). */
function quirkNumbers(markdown: string): Set<number> {
  const start = markdown.search(/^## 9\.[ \t]/m);
  if (start < 0) return new Set();
  const rest = markdown.slice(start + 1);
  const end = rest.search(/^## /m);
  const body = end < 0 ? rest : rest.slice(0, end);
  return new Set([...body.matchAll(/^(\d+)\.[ \t]/gm)].map((m) => Number(m[1])));
}

interface Citation {
  line: number;
  target: string;
}

/** `§` citations of a text, ranges expanded to both ends; `RFC 9110 §14`-style citations are not ours. */
function sectionCitations(text: string): Citation[] {
  const out: Citation[] = [];
  for (const m of text.matchAll(/§(\d+(?:\.\d+)*)(?:[ \t]*[–-][ \t]*§?(\d+(?:\.\d+)*))?/g)) {
    const before = text.slice(Math.max(0, m.index - 24), m.index);
    if (/RFC[ \t]*\d+[ \t]*$/.test(before)) continue;
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ line, target: m[1] });
    if (m[2]) out.push({ line, target: m[2] });
  }
  return out;
}

/** `quirk 7`, `quirks 2, 3, 5–8 and 16` → each number (range ends included). */
function quirkCitations(text: string): Citation[] {
  const out: Citation[] = [];
  const item = String.raw`\d+(?:[ \t]*[–-][ \t]*\d+)?`;
  const re = new RegExp(String.raw`\bquirks?[ \t]+(${item}(?:[ \t]*(?:,|and)[ \t]*${item})*)`, 'g');
  for (const m of text.matchAll(re)) {
    const line = text.slice(0, m.index).split('\n').length;
    for (const n of m[1].matchAll(/\d+/g)) out.push({ line, target: n[0] });
  }
  return out;
}

/** Citations of the shared, out-of-repository spec (its path, `spec §…`, or an ARCHITECTURE.md outside docs/). */
function staleSpecCitations(text: string): Citation[] {
  const out: Citation[] = [];
  const re = /shared\/spec|\bspec[ \t]+§|(?<!docs\/)\bARCHITECTURE\.md[ \t]*§/gi;
  for (const m of text.matchAll(re)) out.push({ line: text.slice(0, m.index).split('\n').length, target: m[0] });
  return out;
}

function scannedFiles(): string[] {
  const files: string[] = SCANNED_FILES.map((f) => path.join(ROOT, f)).filter((f) => fs.existsSync(f));
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'fixtures') walk(p);
      } else if (SOURCE_EXT.test(entry.name) && p !== SELF) files.push(p);
    }
  };
  for (const d of SCANNED_DIRS) if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  return files;
}

const reference = fs.readFileSync(REFERENCE, 'utf8');
const sources = scannedFiles().map((file) => ({ file: path.relative(ROOT, file), text: fs.readFileSync(file, 'utf8') }));

function unresolved(find: (text: string) => Citation[], known: (target: string) => boolean): string[] {
  return sources.flatMap(({ file, text }) =>
    find(text)
      .filter((c) => !known(c.target))
      .map((c) => `${file}:${c.line} cites ${c.target}`),
  );
}

describe('docs/REFERENCE.md citations', () => {
  const sections = headingNumbers(reference);
  const quirks = quirkNumbers(reference);

  it('has the section and quirk numbering the code was written against', () => {
    for (const n of ['0', '1.4', '2.8', '3.5', '4.8', '5.4', '6.3', '7.9', '8.4', '9', '10', '11.2']) expect(sections.has(n), `§${n}`).toBe(true);
    expect([...quirks].sort((a, b) => a - b)).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));
  });

  it('every § cited in the code is a heading of docs/REFERENCE.md', () => {
    const explicit = sources.reduce((n, { text }) => n + (text.match(/docs\/REFERENCE\.md §/g)?.length ?? 0), 0);
    expect(explicit).toBeGreaterThan(30);
    expect(unresolved(sectionCitations, (t) => sections.has(t))).toEqual([]);
  });

  it('every quirk cited in the code is numbered in §9', () => {
    expect(sources.some(({ text }) => quirkCitations(text).length > 0)).toBe(true);
    expect(unresolved(quirkCitations, (t) => quirks.has(Number(t)))).toEqual([]);
  });

  it('no file still cites the shared spec', () => {
    const stale = sources.flatMap(({ file, text }) => staleSpecCitations(text).map((c) => `${file}:${c.line}: ${c.target}`));
    expect(stale).toEqual([]);
  });
});

describe('citation parsing', () => {
  it('reads headings and quirk items', () => {
    const md = '## 2. Title\n### 2.3 Sub\n## 9. Quirks\n1. a\n2. b\n## 10. Notes\n3. not a quirk\n';
    expect([...headingNumbers(md)]).toEqual(['2', '2.3', '9', '10']);
    expect([...quirkNumbers(md)]).toEqual([1, 2]);
  });

  it('expands ranges, skips RFC sections and finds unknown targets', () => {
    const text = '// a (docs/REFERENCE.md §7.2–7.5, §2-§5)\n// RFC 9110 §14 and §13.1.5 of RFC 9110 §13.1.5\n// §12.1';
    expect(sectionCitations(text).map((c) => c.target)).toEqual(['7.2', '7.5', '2', '5', '13.1.5', '12.1']);
    const known = headingNumbers('## 7.2 x\n## 7.5 y\n## 2. z\n## 5. w\n');
    expect(sectionCitations(text).filter((c) => !known.has(c.target)).map((c) => `${c.line}:${c.target}`)).toEqual(['2:13.1.5', '3:12.1']);
  });

  it('reads quirk lists', () => {
    expect(quirkCitations('quirks 2, 3, 5–8 and 16; quirk 19, then --reference-quirks').map((c) => c.target)).toEqual(['2', '3', '5', '8', '16', '19']);
  });

  it('flags the shared spec but not this repository’s docs', () => {
    const text = '// spec §2.3\n// /work/shared/spec/ARCHITECTURE.md\n// ARCHITECTURE.md §4.4\n// docs/REFERENCE.md §2.3, docs/ARCHITECTURE.md §1';
    expect(staleSpecCitations(text).map((c) => c.line)).toEqual([1, 2, 3]);
  });
});
