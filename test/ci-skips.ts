// The CI skip gate's decision: which skipped tests are not on the allow-list (test/ci-allowed-skips.json).
import fs from 'node:fs';

export interface AllowedSkip {
  /** The start of the test's full name ("file > describe > test"); the file path is relative to the repo. */
  test: string;
  /** Why skipping it in CI is legitimate (shown when the list is read). */
  reason: string;
}

export function readAllowedSkips(file: string): AllowedSkip[] {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { allowed?: unknown };
  if (!Array.isArray(raw.allowed)) throw new Error(`${file}: expected {"allowed": [{"test", "reason"}, …]}`);
  for (const a of raw.allowed as AllowedSkip[]) {
    if (typeof a?.test !== 'string' || !a.test || typeof a.reason !== 'string' || !a.reason.trim()) {
      throw new Error(`${file}: every entry needs a non-empty "test" and "reason" (${JSON.stringify(a)})`);
    }
  }
  return raw.allowed as AllowedSkip[];
}

/** The skipped tests (full names) that no allow-list entry covers. */
export function unlistedSkips(skipped: readonly string[], allowed: readonly AllowedSkip[]): string[] {
  return skipped.filter((name) => !allowed.some((a) => name.startsWith(a.test)));
}
