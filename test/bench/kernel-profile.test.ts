// The per-kernel summary of the profilers (bench/kernel-profile.ts): pure, no model is run.
import { describe, expect, it } from 'vitest';
import { kernelGflop, summarizeKernels } from '../../bench/kernel-profile.ts';

type Rec = Parameters<typeof kernelGflop>[0];
const rec = (name: string, ms: number, inputShapes: number[][], outputShapes: number[][]): Rec =>
  ({ name, kernelTimeMs: ms, inputShapes, outputShapes, bytesAdded: 0, totalBytesSnapshot: 0, tensorsAdded: 0, totalTensorsSnapshot: 0, extraInfo: '' }) as unknown as Rec;

describe('summarizeKernels', () => {
  it('counts 2·m·n·k for products and convolutions, nothing for the rest', () => {
    expect(kernelGflop(rec('BatchMatMul', 1, [[2, 474, 1536], [1536, 4608]], [[2, 474, 4608]]))).toBeCloseTo((2 * 2 * 474 * 4608 * 1536) / 1e9, 9);
    // a transposed A ([k, m]) gives the same count
    expect(kernelGflop(rec('_FusedMatMul', 1, [[1536, 474], [1536, 8]], [[474, 8]]))).toBeCloseTo((2 * 474 * 8 * 1536) / 1e9, 12);
    expect(kernelGflop(rec('Conv2D', 1, [[1, 1, 237, 1536], [1, 3, 1536, 1536]], [[1, 1, 237, 1536]]))).toBeCloseTo((2 * 237 * 1536 * 3 * 1536) / 1e9, 9);
    expect(kernelGflop(rec('Add', 1, [[4, 4], [4, 4]], [[4, 4]]))).toBe(0);
  });

  it("sums per kernel, slowest first, skips ops' own records and totals the products", () => {
    const s = summarizeKernels([
      rec('Add', 2, [[8]], [[8]]),
      rec('BatchMatMul', 10, [[4, 8], [8, 2]], [[4, 2]]),
      rec('fusedMatMul__op', 99, [[4, 8]], [[4, 2]]),
      rec('BatchMatMul', 6, [[4, 8], [8, 2]], [[4, 2]]),
      rec('Add', 1, [[3]], [[3]]),
    ]);
    expect(s.rows.map(([n, r]) => [n, r.ms, r.calls])).toEqual([
      ['BatchMatMul', 16, 2],
      ['Add', 3, 2],
    ]);
    expect(s.total).toBe(19);
    expect(s.gemm).toEqual({ ms: 16, gflop: (2 * 2 * 4 * 2 * 8) / 1e9 });
    expect([...s.rows[1][1].shapes.entries()]).toEqual([['[8]', 2], ['[3]', 1]]);
  });
});
