// The CI skip gate: an unlisted skip fails a CI=true run; a listed one, or a run outside CI, does not.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAllowedSkips, unlistedSkips } from './ci-skips.ts';
import { REPO } from './helpers.ts';

describe('unlistedSkips', () => {
  it('keeps the skipped tests no entry is a prefix of', () => {
    const allowed = [{ test: 'test/a.test.ts > gpu', reason: 'no GPU here' }];
    expect(unlistedSkips(['test/a.test.ts > gpu > runs', 'test/b.test.ts > x'], allowed)).toEqual(['test/b.test.ts > x']);
  });
  it('the repository list reads, and every entry has a reason', () => {
    const list = readAllowedSkips(path.join(REPO, 'test', 'ci-allowed-skips.json'));
    expect(list.every((a) => a.reason.length > 10)).toBe(true);
  });
  it('an entry without a reason is refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-skips-'));
    try {
      fs.writeFileSync(path.join(dir, 'l.json'), JSON.stringify({ allowed: [{ test: 'x', reason: ' ' }] }));
      expect(() => readAllowedSkips(path.join(dir, 'l.json'))).toThrow(/non-empty "test" and "reason"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the reporter in a real vitest run', () => {
  const dir = path.join(REPO, 'test-artifacts', 'skip-gate');
  function run(ci: boolean, allowed: { test: string; reason: string }[]) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'x.test.ts'), "import { it, expect } from 'vitest';\nit('runs', () => expect(1).toBe(1));\nit.skip('needs a GPU', () => {});\n");
    fs.writeFileSync(path.join(dir, 'allowed.json'), JSON.stringify({ allowed }));
    fs.writeFileSync(
      path.join(dir, 'vitest.config.ts'),
      `export default { test: { include: ['x.test.ts'], reporters: ['default', ${JSON.stringify(path.join(REPO, 'test', 'ci-skip-gate.ts'))}] } };\n`,
    );
    const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: ci ? 'true' : '', AUDIOX_CI_ALLOWED_SKIPS: path.join(dir, 'allowed.json') },
    });
    return { code: r.status, out: r.stdout + r.stderr };
  }

  it('fails under CI=true naming the unlisted skip, passes once it is listed, warns outside CI', () => {
    try {
      const bad = run(true, []);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/1 test\(s\) skipped that test\/ci-allowed-skips\.json does not allow[\s\S]*x\.test\.ts > needs a GPU/);
      const listed = run(true, [{ test: 'test-artifacts/skip-gate/x.test.ts > needs a GPU', reason: 'no GPU on CI machines' }]);
      expect(listed.code, listed.out).toBe(0);
      const local = run(false, []);
      expect(local.code).toBe(0);
      expect(local.out).toMatch(/a failure under CI=true unless allow-listed/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
