// Runs the parity harness over every fixture in test/fixtures. A fixture whose component has no runner
// fails (as it does in `audiox parity`) unless it is a listed known gap.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findFixtureFiles, loadRunners, openFixture, runFixture } from '../../src/parity/harness.ts';
import { FIXTURES } from '../helpers.ts';

// Known gaps: fixtures listed (with the issue fixing them) in known-gaps.json are expected to fail until
// that issue lands; a listed fixture that passes fails the test, so the list cannot go stale.
const knownGaps = (
  JSON.parse(fs.readFileSync(new URL('./known-gaps.json', import.meta.url), 'utf8')) as { gaps: Record<string, number> }
).gaps;

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
  it('lists only fixtures that exist as known gaps', () => {
    const rels = new Set(cases.map((c) => c.rel.replace(/\.safetensors$/, '')));
    expect(Object.keys(knownGaps).filter((k) => !rels.has(k))).toEqual([]);
  });
  for (const c of cases) {
    const supported = runners.has(c.component);
    const gap = knownGaps[c.rel.replace(/\.safetensors$/, '')];
    const title = `${c.rel}${supported ? '' : ` (no runner for "${c.component}" yet)`}${gap ? ` (known gap, issue #${gap})` : ''}`;
    it(title, async () => {
      if (!supported) {
        expect(gap, `no parity runner for component "${c.component}" (${c.rel}): add one under src/parity/runners/, or list the fixture in test/parity/known-gaps.json with its issue`).toBeDefined();
        return;
      }
      const r = await runFixture(c.file, FIXTURES);
      expect(r, 'fixture result').not.toBeNull();
      console.log(`${r!.status.toUpperCase()} ${r!.path} max_abs=${r!.max_abs} max_rel=${r!.max_rel}`);
      if (gap) {
        expect(r!.status, `${c.rel} passes now: remove it from test/parity/known-gaps.json`).not.toBe('pass');
      } else {
        expect(r!.status, r!.message).toBe('pass');
      }
    });
  }
});
