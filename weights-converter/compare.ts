// Exact comparison of two safetensors files: same tensor names, dtypes, shapes and bytes.
import { SafetensorsFile } from '../src/io/safetensors.ts';

/** Differences between `actual` and `expected` (empty when identical; metadata is ignored). */
export function diffSafetensors(actual: SafetensorsFile, expected: SafetensorsFile, limit = 20): string[] {
  const problems: string[] = [];
  const a = new Set(actual.keys());
  const e = new Set(expected.keys());
  for (const k of e) if (!a.has(k)) problems.push(`missing tensor "${k}"`);
  for (const k of a) if (!e.has(k)) problems.push(`unexpected tensor "${k}"`);
  for (const k of e) {
    if (!a.has(k) || problems.length >= limit) continue;
    const ae = actual.entry(k);
    const ee = expected.entry(k);
    if (ae.dtype !== ee.dtype) problems.push(`"${k}": dtype ${ae.dtype}, expected ${ee.dtype}`);
    else if (ae.shape.join(',') !== ee.shape.join(',')) {
      problems.push(`"${k}": shape [${ae.shape}], expected [${ee.shape}]`);
    } else {
      const ab = actual.readBytes(k);
      const eb = expected.readBytes(k);
      const i = ab.findIndex((v, j) => v !== eb[j]);
      if (i >= 0) problems.push(`"${k}": bytes differ (first at byte ${i} of ${eb.length})`);
    }
  }
  return problems.slice(0, limit);
}
