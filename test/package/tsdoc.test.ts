// Every export of the public entry points has a TSDoc comment where it is defined (following re-exports), and
// so do the public members of exported classes and the fields of exported interfaces: editors show these
// comments, and the shipped .d.ts files carry them. `npx tsx test/package/undocumented.ts` lists the gaps.
import { describe, expect, it } from 'vitest';
import { undocumentedExports } from './undocumented.ts';

describe('TSDoc on the public API', () => {
  it('every export of the entry points, public class member and interface field has a doc comment', () => {
    expect(undocumentedExports(), 'undocumented exports: add a /** … */ comment where each is defined').toEqual([]);
  }, 120_000);

  it('reports what is undocumented (the check can fail)', () => {
    expect(undocumentedExports(['test/package/fixtures/undocumented-entry.ts'])).toEqual([
      'test/package/fixtures/undocumented-entry.ts: Bare',
      'test/package/fixtures/undocumented-entry.ts: Bare.field',
      'test/package/fixtures/undocumented-entry.ts: Documented.method',
      'test/package/fixtures/undocumented-entry.ts: bare',
    ]);
  }, 120_000);
});
