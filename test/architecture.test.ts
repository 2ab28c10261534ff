// The layering rule, enforced on the sources: dependencies point one way
// (backend → io/nn → models → sampling → pipeline → cli/server), and backend-specific code stays in
// src/backend (models and nn reach fast paths through kernels the backend registers, never by name).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers.ts';

const SRC = path.join(REPO, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The src-relative paths of the relative imports of `file` ("nn/kernels.ts", …). */
function importedPaths(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)].map((m) => m[1]);
  specs.push(...[...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1]));
  return specs
    .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)))
    .filter((r) => !r.startsWith('..'))
    .map((r) => r.split(path.sep).join('/'));
}

/** The top-level folder of src/ each relative import of `file` lands in ("backend", "nn", …). */
const importedLayers = (file: string) => importedPaths(file).map((r) => r.split('/')[0]);

/**
 * The one upward edge allowed: the backend registers its fast kernels under the names nn's ops look up,
 * so it imports those names (a leaf module with no further imports).
 */
const KERNEL_NAMES = 'nn/kernels.ts';

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');
const layerOf = (f: string) => rel(f).split('/')[0];

/** What each layer must not import. */
const FORBIDDEN: Record<string, string[]> = {
  backend: ['nn', 'io', 'models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue', 'hub', 'parity'],
  nn: ['backend', 'models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  io: ['models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  models: ['sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  sampling: ['backend', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  pipeline: ['cli', 'server', 'batch', 'queue'],
};

/**
 * Model files that still read the backend's memory budget or start it (issue 14 item 1: a Runtime passed
 * from the edge replaces these). The list may only shrink: a file that no longer imports src/backend
 * must be removed from it.
 */
const MODELS_STILL_READING_BACKEND = ['models/load.ts', 'models/memory.ts', 'models/synchformer/features.ts', 'models/vae/pretransform.ts'];

const files = sourceFiles(SRC);

describe('source layering', () => {
  it('no layer imports a layer above it', () => {
    const violations = files.flatMap((f) => {
      const banned = FORBIDDEN[layerOf(f)] ?? [];
      return importedPaths(f)
        .filter((p) => banned.includes(p.split('/')[0]) && !(layerOf(f) === 'backend' && p === KERNEL_NAMES))
        .map((p) => `${rel(f)} imports src/${p}`);
    });
    expect(violations).toEqual([]);
  });

  it('the kernel-name module stays a leaf', () => {
    expect(importedPaths(path.join(SRC, KERNEL_NAMES))).toEqual([]);
  });

  it('models import src/backend only where the known budget reads remain (and the list only shrinks)', () => {
    const reading = files
      .filter((f) => layerOf(f) === 'models' && importedLayers(f).includes('backend'))
      .map(rel)
      .sort();
    expect(reading).toEqual([...MODELS_STILL_READING_BACKEND].sort());
  });

  it('only src/backend asks tfjs which backend is running', () => {
    const asking = files.filter((f) => layerOf(f) !== 'backend' && /\bgetBackend\(\)/.test(fs.readFileSync(f, 'utf8'))).map(rel);
    expect(asking).toEqual([]);
  });
});
