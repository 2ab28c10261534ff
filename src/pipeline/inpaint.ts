// Inpainting as the reference's front-end does it (audiox/inference/generation.py: the cut/paste of the
// init latents and `build_mask`; the mask then drives sample_k's shrinking binary mask). Positions are
// percentages of the generation window, as the Gradio sliders give them, or seconds.
import * as tf from '@tensorflow/tfjs';

/** A position in the generation window: a number is a percentage; `'25%'` and `'2.5s'` say which unit. */
export type WindowPosition = number | `${number}%` | `${number}s`;

/**
 * The reference's inpainting arguments (`mask_args`). The region from `maskStart` to `maskEnd` is
 * regenerated (mask 1); outside it the init audio is kept (mask 0). Softness widens the edges into a
 * half-Hann ramp; marination (0…1) lowers the whole mask, so the kept-versus-regenerated decision is
 * released earlier in the schedule. Crop/paste moves the init audio first (`cropFrom` of the init audio
 * lands at `pasteFrom`; nothing outside pasteFrom…pasteTo is kept), for outpainting.
 */
export interface InpaintOptions {
  maskStart: WindowPosition;
  maskEnd: WindowPosition;
  /** Left / right soft edge widths (default 0). */
  softnessL?: WindowPosition;
  softnessR?: WindowPosition;
  /** 0 … 1 (default 0). */
  marination?: number;
  /** Defaults 0, 0 and 100 %: the init audio stays where it is. */
  cropFrom?: WindowPosition;
  pasteFrom?: WindowPosition;
  pasteTo?: WindowPosition;
}

/** The reference's `mask_args`, all in percent of the window. */
export interface MaskArgs {
  maskStart: number;
  maskEnd: number;
  softnessL: number;
  softnessR: number;
  marination: number;
  cropFrom: number;
  pasteFrom: number;
  pasteTo: number;
}

/** Inpainting / continuation options that do not fit the window or each other; the message names the option. */
export class InpaintError extends Error {}

/** A window position in percent (`windowSeconds` converts seconds); throws on anything malformed. */
export function positionPercent(v: WindowPosition | string, windowSeconds: number, name: string): number {
  let pct: number;
  if (typeof v === 'number') pct = v;
  else {
    const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(%|s)?\s*$/i.exec(v);
    if (!m) throw new InpaintError(`${name} must be a percentage ("25%") or seconds ("2.5s" or "2.5"), got "${v}"`);
    const x = Number(m[1]);
    pct = m[2] === '%' ? x : (x / windowSeconds) * 100;
  }
  if (!Number.isFinite(pct) || pct < 0 || pct > 100 + 1e-9) {
    throw new InpaintError(
      `${name} must lie in the generation window (0…100 %, 0…${windowSeconds.toFixed(2)} s), got ${typeof v === 'number' ? `${v} %` : v}`,
    );
  }
  return Math.min(pct, 100);
}

/** Resolves and validates the options against a window of `windowSeconds`. */
export function resolveMaskArgs(o: InpaintOptions, windowSeconds: number): MaskArgs {
  const p = (v: WindowPosition | undefined, d: number, name: string) => (v === undefined ? d : positionPercent(v, windowSeconds, name));
  const a: MaskArgs = {
    maskStart: p(o.maskStart, NaN, 'inpaint start'),
    maskEnd: p(o.maskEnd, NaN, 'inpaint end'),
    softnessL: p(o.softnessL, 0, 'inpaint left softness'),
    softnessR: p(o.softnessR, 0, 'inpaint right softness'),
    marination: o.marination ?? 0,
    cropFrom: p(o.cropFrom, 0, 'inpaint crop-from'),
    pasteFrom: p(o.pasteFrom, 0, 'inpaint paste-from'),
    pasteTo: p(o.pasteTo, 100, 'inpaint paste-to'),
  };
  if (Number.isNaN(a.maskStart) || Number.isNaN(a.maskEnd)) throw new InpaintError('inpainting needs both a start and an end');
  if (!(a.maskEnd > a.maskStart)) {
    throw new InpaintError(`the inpaint end (${a.maskEnd.toFixed(2)} %) must come after its start (${a.maskStart.toFixed(2)} %)`);
  }
  if (!(a.marination >= 0 && a.marination < 1)) throw new InpaintError(`marination must be in [0, 1), got ${a.marination}`);
  if (!(a.pasteTo > a.pasteFrom)) {
    throw new InpaintError(`paste-to (${a.pasteTo.toFixed(2)} %) must come after paste-from (${a.pasteFrom.toFixed(2)} %)`);
  }
  return a;
}

/** The frame index of a percentage of `length` frames, rounded as the reference rounds that argument. */
const at = (pct: number, length: number, round: (x: number) => number) => round((pct / 100) * length);

/** Python's round(): to nearest, ties to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torch.hann_window(n, periodic=False). */
function hann(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let k = 0; k < n; k++) w[k] = n === 1 ? 1 : 0.5 - 0.5 * Math.cos((2 * Math.PI * k) / (n - 1));
  return w;
}

/**
 * The soft mask over `length` latent frames (`build_mask`): 1 inside maskStart…maskEnd (regenerated),
 * 0 outside (kept), half-Hann edges, scaled by (1 − marination).
 */
export function buildMask(length: number, a: MaskArgs): Float32Array {
  const start = at(a.maskStart, length, Math.floor);
  const end = at(a.maskEnd, length, Math.ceil);
  const sL = roundHalfEven((a.softnessL / 100) * length);
  const sR = roundHalfEven((a.softnessR / 100) * length);
  // The reference's slice assignments would fail (or wrap around) past the window's edges.
  if (start + sL > length || end - sR < 0) {
    throw new InpaintError(
      `the soft edges (left ${a.softnessL.toFixed(2)} %, right ${a.softnessR.toFixed(2)} %) reach past the window: ` +
        'make them narrower or move the inpaint range inwards',
    );
  }
  const mask = new Float64Array(length);
  mask.fill(1, start, end);
  const hL = hann(2 * sL);
  for (let k = 0; k < sL; k++) mask[start + k] = hL[k];
  const hR = hann(2 * sR);
  for (let k = 0; k < sR; k++) mask[end - sR + k] = hR[sR + k];
  const out = new Float32Array(length);
  for (let k = 0; k < length; k++) out[k] = a.marination > 0 ? Math.fround(mask[k]) * Math.fround(1 - a.marination) : mask[k];
  return out;
}

/** The frame ranges of the cut/paste: init[cropFrom, cropFrom + n) goes to [pasteFrom, pasteFrom + n). */
export function cutPasteRange(length: number, a: MaskArgs): { cropFrom: number; pasteFrom: number; n: number } {
  const cropFrom = at(a.cropFrom, length, Math.floor);
  const pasteFrom = at(a.pasteFrom, length, Math.floor);
  const pasteTo = at(a.pasteTo, length, Math.ceil);
  let n = pasteTo - pasteFrom;
  if (cropFrom + n > length) n = length - cropFrom;
  return { cropFrom, pasteFrom, n: Math.max(0, n) };
}

/** Applies the cut/paste to init latents [B, C, L] (zeros outside the pasted range). Returns a new tensor. */
export function cutPaste(init: tf.Tensor, a: MaskArgs): tf.Tensor {
  const [B, C, L] = init.shape as [number, number, number];
  const { cropFrom, pasteFrom, n } = cutPasteRange(L, a);
  return tf.tidy(() => {
    if (n === 0) return tf.zerosLike(init);
    const piece = tf.slice(init, [0, 0, cropFrom], [B, C, n]);
    return tf.pad(piece, [
      [0, 0],
      [0, 0],
      [pasteFrom, L - pasteFrom - n],
    ]);
  });
}
