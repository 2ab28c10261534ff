// `convert` fixtures: X.safetensors holds the expected tensors of the sibling X.ckpt / X.pth.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { convertCheckpoint } from '../../../weights-converter/convert.ts';
import { diffSafetensors } from '../../../weights-converter/compare.ts';
import type { Fixture, Runner, SelfCheckedResult } from '../types.ts';

async function run(fx: Fixture): Promise<SelfCheckedResult> {
  const stem = fx.path.replace(/\.safetensors$/, '');
  const input = ['.ckpt', '.pth', '.pt', '.bin'].map((ext) => stem + ext).find((p) => fs.existsSync(p));
  if (!input) return { pass: false, message: `no checkpoint next to ${fx.path} (${stem}.ckpt / .pth)`, maxAbs: NaN, maxRel: NaN };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-convert-'));
  try {
    const out = path.join(dir, 'out.safetensors');
    const r = await convertCheckpoint(input, out);
    const actual = SafetensorsFile.open(out);
    try {
      const problems = diffSafetensors(actual, fx.file);
      return problems.length
        ? { pass: false, message: problems.join('; '), maxAbs: NaN, maxRel: NaN }
        : { pass: true, message: `${r.tensors} tensors identical, ${r.skipped.length} non-tensor entries skipped`, maxAbs: 0, maxRel: 0 };
    } finally {
      actual.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const runner: Runner = { component: 'convert', run };
