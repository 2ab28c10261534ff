// A vitest reporter: under CI=true a skipped test fails the run unless test/ci-allowed-skips.json lists it,
// so that CI's verdict cannot depend on what happened to install. Outside CI it only reports the skips.
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { readAllowedSkips, unlistedSkips } from './ci-skips.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

export default class CiSkipGate implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped: string[] = [];
    for (const m of modules) {
      const file = path.relative(ROOT, m.moduleId).split(path.sep).join('/');
      for (const t of m.children.allTests()) {
        if (t.result().state === 'skipped') skipped.push(`${file} > ${t.fullName}`);
      }
    }
    if (!skipped.length) return;
    const allowed = readAllowedSkips(process.env.AUDIOX_CI_ALLOWED_SKIPS ?? path.join(ROOT, 'test', 'ci-allowed-skips.json'));
    const bad = unlistedSkips(skipped, allowed);
    const ci = process.env.CI === 'true' || process.env.CI === '1';
    const lines = bad.map((n) => `  ${n}`).join('\n');
    if (bad.length && ci) {
      console.error(`\n[ci-skip-gate] ${bad.length} test(s) skipped that test/ci-allowed-skips.json does not allow (CI=true):\n${lines}\n` +
        'Install what they need in .ci/run, or add an entry with the reason skipping is legitimate.\n');
      process.exitCode = 1;
    } else if (bad.length) {
      console.warn(`\n[ci-skip-gate] ${bad.length} test(s) skipped (a failure under CI=true unless allow-listed):\n${lines}\n`);
    }
  }
}
