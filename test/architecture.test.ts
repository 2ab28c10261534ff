// The layering rule, enforced on the sources: dependencies point one way
// (backend → io/nn → models → sampling → pipeline → cli/server), and backend-specific code stays in
// src/backend (models and nn reach fast paths through kernels the backend registers, never by name, and
// read the budget from the Runtime they are handed).
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

/**
 * The upward edges allowed, to leaf modules of nn (no further imports): the backend registers its fast
 * kernels under the names nn's ops look up (kernels.ts), and it creates the Runtime whose value types
 * models receive (runtime.ts).
 */
const KERNEL_NAMES = 'nn/kernels.ts';
const RUNTIME_TYPES = 'nn/runtime.ts';
const BACKEND_MAY_IMPORT = [KERNEL_NAMES, RUNTIME_TYPES];

const rel = (f: string) => path.relative(SRC, f).split(path.sep).join('/');
const layerOf = (f: string) => rel(f).split('/')[0];

/** What each layer must not import. */
const FORBIDDEN: Record<string, string[]> = {
  backend: ['nn', 'io', 'models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue', 'hub', 'parity'],
  nn: ['backend', 'models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  io: ['models', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  models: ['backend', 'sampling', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  sampling: ['backend', 'pipeline', 'cli', 'server', 'batch', 'queue'],
  pipeline: ['cli', 'server', 'batch', 'queue'],
};

const files = sourceFiles(SRC);

describe('source layering', () => {
  it('no layer imports a layer above it', () => {
    const violations = files.flatMap((f) => {
      const banned = FORBIDDEN[layerOf(f)] ?? [];
      return importedPaths(f)
        .filter((p) => banned.includes(p.split('/')[0]) && !(layerOf(f) === 'backend' && BACKEND_MAY_IMPORT.includes(p)))
        .map((p) => `${rel(f)} imports src/${p}`);
    });
    expect(violations).toEqual([]);
  });

  it('the modules the backend may import stay leaves', () => {
    for (const m of BACKEND_MAY_IMPORT) expect(importedPaths(path.join(SRC, m)), m).toEqual([]);
  });


  it('only src/backend asks tfjs which backend is running', () => {
    const asking = files.filter((f) => layerOf(f) !== 'backend' && /\bgetBackend\(\)/.test(fs.readFileSync(f, 'utf8'))).map(rel);
    expect(asking).toEqual([]);
  });
});
