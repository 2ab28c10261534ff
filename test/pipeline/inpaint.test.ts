// The reference's inpainting arguments: mask construction (build_mask), cut/paste, positions in percent
// or seconds, and clear errors for arguments the reference would crash on or silently misread.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildMask, cutPaste, cutPasteRange, InpaintError, positionPercent, resolveMaskArgs } from '../../src/pipeline/inpaint.ts';

const round = (m: Float32Array) => Array.from(m, (v) => Math.round(v * 1e6) / 1e6);

describe('inpainting mask (build_mask)', () => {
  it('regenerates the mask range (1) and keeps the rest (0), with half-Hann soft edges', () => {
    // The values the reference recorded for pipeline/inpaint_k_heun (L = 20, 30 %…80 %, softness 10 %/10 %).
    const a = resolveMaskArgs({ maskStart: 30, maskEnd: 80, softnessL: 10, softnessR: 10 }, 10);
    expect(round(buildMask(20, a))).toEqual([0, 0, 0, 0, 0, 0, 0, 0.75, 1, 1, 1, 1, 1, 1, 0.75, 0, 0, 0, 0, 0]);
  });

  it('hard edges without softness; floor at the start, ceil at the end', () => {
    const m = buildMask(10, resolveMaskArgs({ maskStart: 25, maskEnd: 55 }, 10));
    // start ⌊2.5⌋ = 2, end ⌈5.5⌉ = 6
    expect(Array.from(m)).toEqual([0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('marination scales the whole mask by 1 − marination', () => {
    const m = buildMask(10, resolveMaskArgs({ maskStart: 0, maskEnd: 50, marination: 0.25 }, 10));
    expect(Array.from(m)).toEqual([0.75, 0.75, 0.75, 0.75, 0.75, 0, 0, 0, 0, 0]);
  });

  it('soft edges that reach past the window are refused (the reference would crash or wrap around)', () => {
    expect(() => buildMask(20, resolveMaskArgs({ maskStart: 95, maskEnd: 100, softnessL: 20 }, 10))).toThrow(/reach past the window/);
  });
});

describe('inpainting positions', () => {
  it('a number or "x%" is a percentage; "x" with "s" or a plain string is seconds of the window', () => {
    expect(positionPercent(30, 10, 'start')).toBe(30);
    expect(positionPercent('30%', 10, 'start')).toBe(30);
    expect(positionPercent('2.5s', 10, 'start')).toBe(25);
    expect(positionPercent('2.5', 10, 'start')).toBe(25);
  });

  it('malformed, negative or out-of-window positions fail with the name of the argument', () => {
    expect(() => positionPercent('abc', 10, 'inpaint start')).toThrow(/inpaint start must be a percentage/);
    expect(() => positionPercent(-1, 10, 'inpaint start')).toThrow(/inpaint start must lie in the generation window/);
    expect(() => positionPercent('12s', 10, 'inpaint end')).toThrow(InpaintError);
    expect(() => resolveMaskArgs({ maskStart: 60, maskEnd: 40 }, 10)).toThrow(/must come after its start/);
    expect(() => resolveMaskArgs({ maskStart: 10, maskEnd: 40, marination: 1 }, 10)).toThrow(/marination/);
    expect(() => resolveMaskArgs({ maskStart: 10, maskEnd: 40, pasteFrom: 50, pasteTo: 50 }, 10)).toThrow(/paste-to/);
  });
});

describe('inpainting cut/paste', () => {
  it('moves init[cropFrom…] to pasteFrom, zeros elsewhere, clipped at the window end', () => {
    const a = resolveMaskArgs({ maskStart: 0, maskEnd: 10, cropFrom: 20, pasteFrom: 10, pasteTo: 70 }, 10);
    expect(cutPasteRange(10, a)).toEqual({ cropFrom: 2, pasteFrom: 1, n: 6 });
    const before = tf.memory().numTensors;
    const init = tf.tidy(() => tf.range(0, 10).reshape([1, 1, 10]));
    const out = cutPaste(init, a);
    expect(Array.from(out.dataSync())).toEqual([0, 2, 3, 4, 5, 6, 7, 0, 0, 0]);
    // crop near the end: the piece is clipped so it stays inside the window
    const b = resolveMaskArgs({ maskStart: 0, maskEnd: 10, cropFrom: 80, pasteFrom: 0, pasteTo: 100 }, 10);
    const out2 = cutPaste(init, b);
    expect(Array.from(out2.dataSync())).toEqual([8, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    tf.dispose([init, out, out2]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
