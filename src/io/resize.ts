// Image resizing as torchvision does it on CPU (torch.nn.functional.interpolate with antialias=True,
// align_corners=False): separable float32 passes, width first, then height, an axis of unchanged size
// skipped. uint8 input is resized in float and rounded at the end (this reproduces the reference's uint8
// frames exactly, see the media fixtures). Float output is unclamped. Layout everywhere: planar [C, H, W].

export type ResizeFilter = 'bilinear' | 'bicubic';

interface Taps {
  /** First input index of each output pixel. */
  start: Int32Array;
  /** Number of taps of each output pixel. */
  count: Int32Array;
  /** Normalised weights, `stride` per output pixel. */
  weights: Float32Array;
  stride: number;
}

type Pixels = Uint8Array | Float32Array;

const f = Math.fround;

/** torch's antialiasing filters: triangle, and Keys' cubic with a = −0.5 (float32, as torch computes them). */
function filterValue(filter: ResizeFilter, x: number): number {
  const ax = Math.abs(f(x));
  if (filter === 'bilinear') return ax < 1 ? f(1 - ax) : 0;
  const a = -0.5;
  if (ax < 1) return f(f(f(f(f((a + 2) * ax) - (a + 3)) * ax) * ax) + 1);
  if (ax < 2) return f(f(f(f(f(f(a * ax) - 5 * a) * ax) + 8 * a) * ax) - 4 * a);
  return 0;
}

/** Tap ranges and weights of one axis (torch `_compute_index_ranges_weights` with antialias, in float32). */
function computeTaps(inSize: number, outSize: number, filter: ResizeFilter): Taps {
  const scale = f(inSize / outSize);
  const half = filter === 'bilinear' ? 1 : 2;
  const support = scale >= 1 ? f(half * scale) : half;
  const invScale = scale >= 1 ? f(1 / scale) : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = f(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    const xsize = Math.min(Math.trunc(f(center + support) + 0.5), inSize) - xmin;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = filterValue(filter, (f(j + xmin - center) + 0.5) * invScale);
      weights[i * stride + j] = w;
      total = f(total + w);
    }
    if (total !== 0) for (let j = 0; j < xsize; j++) weights[i * stride + j] = f(weights[i * stride + j] / total);
    start[i] = xmin;
    count[i] = xsize;
  }
  return { start, count, weights, stride };
}

// Sums are float32 with one rounding per tap (torch's kernel compiles to fused multiply-adds): the product of
// two float32 values is exact in a double, so fround(s + x·w) rounds once.

function resizeWidth(src: Float32Array, rows: number, w: number, outW: number, filter: ResizeFilter): Float32Array {
  const t = computeTaps(w, outW, filter);
  const out = new Float32Array(rows * outW);
  for (let row = 0; row < rows; row++) {
    for (let x = 0; x < outW; x++) {
      const off = x * t.stride;
      const x0 = row * w + t.start[x];
      let s = f(src[x0] * t.weights[off]);
      for (let j = 1; j < t.count[x]; j++) s = f(s + src[x0 + j] * t.weights[off + j]);
      out[row * outW + x] = s;
    }
  }
  return out;
}

function resizeHeight(src: Float32Array, c: number, h: number, w: number, outH: number, filter: ResizeFilter): Float32Array {
  const t = computeTaps(h, outH, filter);
  const out = new Float32Array(c * outH * w);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < outH; y++) {
      const off = y * t.stride;
      const dst = (ch * outH + y) * w;
      const r0 = (ch * h + t.start[y]) * w;
      const w0 = t.weights[off];
      for (let x = 0; x < w; x++) out[dst + x] = f(src[r0 + x] * w0);
      for (let j = 1; j < t.count[y]; j++) {
        const wt = t.weights[off + j];
        const rowBase = r0 + j * w;
        for (let x = 0; x < w; x++) out[dst + x] = f(out[dst + x] + src[rowBase + x] * wt);
      }
    }
  }
  return out;
}

/** Round half to even (torch.round), clamped to a byte. */
function toByte(v: number): number {
  if (v <= 0) return 0;
  if (v >= 255) return 255;
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Planar [C, H, W] → [C, outH, outW] with antialiasing (torchvision `Resize`, antialias=True). A same-size
 * axis is left untouched; the result is a new array of the input's type (uint8: rounded half to even, clamped).
 */
export function resizePlanar<T extends Pixels>(src: T, c: number, h: number, w: number, outH: number, outW: number, filter: ResizeFilter): T {
  if (src.length !== c * h * w) throw new Error(`resize: ${src.length} values is not [${c}, ${h}, ${w}]`);
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH >= 1 && outW >= 1)) {
    throw new Error(`resize: output size must be positive integers, got ${outH}×${outW}`);
  }
  if (outH === h && outW === w) return src.slice() as T;
  let cur: Float32Array = src instanceof Float32Array ? src : Float32Array.from(src);
  let cw = w;
  if (outW !== w) {
    cur = resizeWidth(cur, c * h, w, outW, filter);
    cw = outW;
  }
  if (outH !== h) cur = resizeHeight(cur, c, h, cw, outH, filter);
  if (src instanceof Float32Array) return cur as T;
  const out = new Uint8Array(cur.length);
  for (let i = 0; i < cur.length; i++) out[i] = toByte(cur[i]);
  return out as T;
}

/** Python's round() (half to even), as torchvision's center_crop uses it. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision CenterCrop(size) of a planar [C, H, W] image at least size × size. */
export function centerCropPlanar<T extends Pixels>(src: T, c: number, h: number, w: number, size: number): T {
  if (h < size || w < size) throw new Error(`center crop: ${h}×${w} is smaller than ${size}×${size}`);
  const top = centerCropOffset(h, size);
  const left = centerCropOffset(w, size);
  const out = (src instanceof Uint8Array ? new Uint8Array(c * size * size) : new Float32Array(c * size * size)) as T;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < size; y++) {
      const s = (ch * h + top + y) * w + left;
      out.set(src.subarray(s, s + size), (ch * size + y) * size);
    }
  }
  return out;
}

/** torchvision Resize(size) output size: the shorter side becomes `size`, the longer int(size·long/short). */
export function shorterSideSize(h: number, w: number, size: number): [number, number] {
  if (h <= w) return [size, Math.trunc((size * w) / h)];
  return [Math.trunc((size * h) / w), size];
}

/** Rows [r0, r0 + nh) × columns [c0, c0 + nw) of an image resized to outH × outW (crop after resize). */
export interface ResizeWindow {
  r0: number;
  c0: number;
  nh: number;
  nw: number;
}

/** Taps of output pixels [o0, o0 + n) only; identity (one tap, weight 1) when the size is unchanged. */
function windowTaps(inSize: number, outSize: number, o0: number, n: number, filter: ResizeFilter): Taps {
  if (inSize === outSize) {
    return { start: Int32Array.from({ length: n }, (_, i) => o0 + i), count: new Int32Array(n).fill(1), weights: new Float32Array(n).fill(1), stride: 1 };
  }
  const t = computeTaps(inSize, outSize, filter);
  return { start: t.start.slice(o0, o0 + n), count: t.count.slice(o0, o0 + n), weights: t.weights.slice(o0 * t.stride, (o0 + n) * t.stride), stride: t.stride };
}

/**
 * An interleaved RGB uint8 frame [H, W, 3] resized to outH × outW and cut to `win`, as planar uint8
 * [3, nh, nw]: the same values as resizePlanar followed by a crop (each output pixel is computed the same
 * way), without the layout conversion and without computing the pixels the crop drops.
 */
export function resizeHwcWindow(hwc: Uint8Array, H: number, W: number, outH: number, outW: number, win: ResizeWindow, filter: ResizeFilter): Uint8Array {
  const { r0, c0, nh, nw } = win;
  if (hwc.length !== H * W * 3) throw new Error(`resize: ${hwc.length} bytes is not [${H}, ${W}, 3]`);
  if (!(r0 >= 0 && c0 >= 0 && nh >= 1 && nw >= 1 && r0 + nh <= outH && c0 + nw <= outW)) {
    throw new Error(`resize: window ${nh}×${nw} at (${r0}, ${c0}) is outside ${outH}×${outW}`);
  }
  // Width pass (all input rows, the window's columns) → planar float [3, H, nw].
  const tw = windowTaps(W, outW, c0, nw, filter);
  const plane = H * nw;
  const tmp = new Float32Array(3 * plane);
  const { start: ws, count: wc, weights: ww, stride: wst } = tw;
  for (let y = 0; y < H; y++) {
    const rowBase = y * W * 3;
    const dst = y * nw;
    for (let x = 0; x < nw; x++) {
      const off = x * wst;
      let p = rowBase + ws[x] * 3;
      const w0 = ww[off];
      let s0 = f(hwc[p] * w0);
      let s1 = f(hwc[p + 1] * w0);
      let s2 = f(hwc[p + 2] * w0);
      for (let j = 1, n = wc[x]; j < n; j++) {
        p += 3;
        const wt = ww[off + j];
        s0 = f(s0 + hwc[p] * wt);
        s1 = f(s1 + hwc[p + 1] * wt);
        s2 = f(s2 + hwc[p + 2] * wt);
      }
      tmp[dst + x] = s0;
      tmp[plane + dst + x] = s1;
      tmp[2 * plane + dst + x] = s2;
    }
  }
  // Height pass (the window's rows) → uint8 [3, nh, nw].
  const th = windowTaps(H, outH, r0, nh, filter);
  const out = new Uint8Array(3 * nh * nw);
  const acc = new Float32Array(nw);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < nh; y++) {
      const off = y * th.stride;
      const base = c * plane + th.start[y] * nw;
      const w0 = th.weights[off];
      for (let x = 0; x < nw; x++) acc[x] = f(tmp[base + x] * w0);
      for (let j = 1; j < th.count[y]; j++) {
        const wt = th.weights[off + j];
        const b = base + j * nw;
        for (let x = 0; x < nw; x++) acc[x] = f(acc[x] + tmp[b + x] * wt);
      }
      const dst = (c * nh + y) * nw;
      for (let x = 0; x < nw; x++) out[dst + x] = toByte(acc[x]);
    }
  }
  return out;
}

/** CenterCrop's offset (Python round, half to even) of a `size` window in `n`. */
export function centerCropOffset(n: number, size: number): number {
  return roundHalfEven((n - size) / 2);
}
