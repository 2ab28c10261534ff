// `audiox params`: the manifest of each released config, built without weights, equals the reference's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, REPO } from './helpers.ts';

const audiox = (...args: string[]) =>
  execFileSync(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), ...args], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('audiox params', () => {
  it.each([
    ['AudioX.json', 'audiox'],
    ['AudioX-MAF.assumed.json', 'audiox-maf.assumed'],
    ['AudioX-MAF-MMDiT.assumed.json', 'audiox-maf-mmdit.assumed'],
  ])('--config configs/%s --json equals manifests/%s.json', (config, manifest) => {
    const out = JSON.parse(audiox('params', '--config', path.join('configs', config), '--json'));
    const want = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'manifests', `${manifest}.json`), 'utf8'));
    expect(out).toEqual(want);
    expect(Object.keys(out)).toEqual(Object.keys(want)); // same (sorted) order
  });

  it('prints a summary by part without --json', () => {
    const out = audiox('params', '--config', 'configs/AudioX.json');
    expect(out).toMatch(/model\.model\.transformer\s+363\s+1048\.3M\s+3\.91 GiB\s+1\.95 GiB/);
    expect(out).toMatch(/total\s+1357\s+1489\.2M/);
  });

  it('rejects a missing or doubled source with a clear message', () => {
    expect(() => audiox('params')).toThrow(/give exactly one of --config <config.json> or --model <name\|dir>/);
  });
});
