// Runs the parity harness over ../shared/fixtures for every component that has a runner. Components
// still without one are listed as skipped here (the CLI counts them as failures).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findFixtureFiles, loadRunners, openFixture, runFixture } from '../../src/parity/harness.ts';
import { FIXTURES } from '../helpers.ts';

const files = fs.existsSync(FIXTURES) ? findFixtureFiles(FIXTURES) : [];
const runners = await loadRunners();
const cases = files
  .map((f) => {
    const fx = openFixture(f, FIXTURES);
    fx?.file.close();
    return fx ? { file: f, rel: fx.rel, component: fx.component } : null;
  })
  .filter((c): c is { file: string; rel: string; component: string } => c !== null);

describe('parity fixtures', () => {
  it('finds the shared fixtures', () => {
    expect(cases.length).toBeGreaterThan(0);
  });
  for (const c of cases) {
    const supported = runners.has(c.component);
    it.skipIf(!supported)(`${c.rel}${supported ? '' : ` (no runner for "${c.component}" yet)`}`, async () => {
      const r = await runFixture(c.file, FIXTURES);
      expect(r, 'fixture result').not.toBeNull();
      console.log(`${r!.status.toUpperCase()} ${r!.path} max_abs=${r!.max_abs} max_rel=${r!.max_rel}`);
      expect(r!.status, r!.message).toBe('pass');
    });
  }
});
