// The bench's analytic FLOP counts (bench/flops.ts): the published rows keep their figures, and the new
// Synchformer / conditioning counts scale as their segments do.
import { describe, expect, it } from 'vitest';
import { condGflopWithoutSync, gflop, syncGflop } from '../../bench/flops.ts';

describe('bench FLOPs', () => {
  it('keeps the GFLOP of the rows in the README table', () => {
    expect([gflop('dit'), gflop('mmdit'), gflop('vae'), gflop('t5'), gflop('clip')].map(Math.round)).toEqual([1055, 2005, 1089, 22, 441]);
  });

  it('counts the Synchformer per 16-frame segment (every 8 frames): 30 segments for 250 frames', () => {
    const one = syncGflop(16);
    // One segment: ≈ 354 GFLOP of blocks + 3.7 of patch embedding + the spatial aggregation (PyTorch's profiler
    // counted 371 of matmul/bmm FLOPs for the baseline's segment, the Conv3d left out).
    expect(one).toBeGreaterThan(370);
    expect(one).toBeLessThan(380);
    expect(syncGflop(23)).toBeCloseTo(one, 9); // a partial segment is not run
    expect(syncGflop(24)).toBeCloseTo(2 * one, 9);
    expect(syncGflop(250)).toBeCloseTo(30 * one, 9);
    expect(gflop('sync')).toBeCloseTo(30 * one, 9);
    expect(gflop('sync', 16)).toBeCloseTo(one, 9);
  });

  it('counts the conditioning as the Synchformer plus CLIP, T5, the temporal transformer, mel and MAF', () => {
    const rest = condGflopWithoutSync();
    expect(rest).toBeGreaterThan(gflop('clip') + gflop('t5'));
    expect(gflop('cond')).toBeCloseTo(gflop('sync') + rest, 9);
    expect(gflop('cond', 16)).toBeCloseTo(syncGflop(16) + rest, 9);
  });
});
