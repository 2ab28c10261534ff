// Result images for the web UI, rendered server-side so the page needs no audio decoding: a minimal PNG
// encoder (RGB, zlib from node:zlib), a log-magnitude spectrogram on a mel-spaced frequency axis and a
// min/max waveform, one lane per channel.
import zlib from 'node:zlib';

export interface RgbImage {
  width: number;
  height: number;
  /** Row-major RGB bytes, length width·height·3. */
  data: Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, body, CRC. */
export function pngChunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/** Encodes an RGB image as PNG (8-bit truecolour, filter 0 on every row). */
export function encodePng(img: RgbImage): Buffer {
  const { width, height, data } = img;
  if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
    throw new Error(`encodePng: expected ${width}×${height}×3 bytes, got ${data.length}`);
  }
  const stride = width * 3;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0;
    raw.set(data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(raw, { level: 6 })),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

// A magma-like colour map: control points at 0, .25, .5, .75, 1, linearly interpolated.
const MAP: [number, number, number][] = [
  [0, 0, 4],
  [81, 18, 124],
  [183, 55, 121],
  [252, 137, 97],
  [252, 253, 191],
];

function colour(v: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, v)) * (MAP.length - 1);
  const i = Math.min(MAP.length - 2, Math.floor(x));
  const f = x - i;
  const a = MAP[i];
  const b = MAP[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** In-place iterative radix-2 FFT of (re, im); length must be a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const nr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = nr;
      }
    }
  }
}

const hzToMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
const melToHz = (mel: number): number => 700 * (10 ** (mel / 2595) - 1);

export interface SpectrogramOptions {
  width?: number;
  height?: number;
  nFft?: number;
  /** Dynamic range shown, dB below the loudest bin. */
  rangeDb?: number;
}

/** Mono mix of the channels. */
function mixDown(channels: readonly Float32Array[]): Float32Array {
  const n = channels[0]?.length ?? 0;
  const out = new Float32Array(n);
  for (const ch of channels) for (let i = 0; i < n; i++) out[i] += ch[i] / channels.length;
  return out;
}

/** A spectrogram image: time left→right, mel-spaced frequency bottom→top, log magnitude coloured. */
export function renderSpectrogram(
  channels: readonly Float32Array[],
  sampleRate: number,
  opts: SpectrogramOptions = {},
): RgbImage {
  const width = opts.width ?? 800;
  const height = opts.height ?? 240;
  const nFft = opts.nFft ?? 2048;
  const rangeDb = opts.rangeDb ?? 80;
  const x = channels.length > 0 ? mixDown(channels) : new Float32Array(0);
  const bins = nFft / 2 + 1;
  const window = new Float64Array(nFft).map((_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft));
  // Magnitudes in dB, [width][bins].
  const db = new Float32Array(width * bins).fill(-200);
  const re = new Float64Array(nFft);
  const im = new Float64Array(nFft);
  let peak = -200;
  for (let col = 0; col < width && x.length > 0; col++) {
    const centre = Math.floor(((col + 0.5) / width) * x.length);
    re.fill(0);
    im.fill(0);
    for (let i = 0; i < nFft; i++) {
      const s = centre - nFft / 2 + i;
      if (s >= 0 && s < x.length) re[i] = x[s] * window[i];
    }
    fft(re, im);
    for (let k = 0; k < bins; k++) {
      const v = 10 * Math.log10(re[k] * re[k] + im[k] * im[k] + 1e-12);
      db[col * bins + k] = v;
      if (v > peak) peak = v;
    }
  }
  // Each image row covers a mel band; show the loudest FFT bin in it.
  const melMax = hzToMel(sampleRate / 2);
  const rowBins: [number, number][] = [];
  for (let row = 0; row < height; row++) {
    const lo = melToHz((row / height) * melMax);
    const hi = melToHz(((row + 1) / height) * melMax);
    const a = Math.min(bins - 1, Math.floor((lo / (sampleRate / 2)) * (bins - 1)));
    const b = Math.min(bins - 1, Math.max(a, Math.ceil((hi / (sampleRate / 2)) * (bins - 1)) - 1));
    rowBins.push([a, b]);
  }
  const data = new Uint8Array(width * height * 3);
  for (let row = 0; row < height; row++) {
    const [a, b] = rowBins[row];
    const y = height - 1 - row;
    for (let col = 0; col < width; col++) {
      let v = -200;
      for (let k = a; k <= b; k++) v = Math.max(v, db[col * bins + k]);
      const [r, g, bl] = colour((v - (peak - rangeDb)) / rangeDb);
      const o = (y * width + col) * 3;
      data[o] = r;
      data[o + 1] = g;
      data[o + 2] = bl;
    }
  }
  return { width, height, data };
}

/** A waveform image: one lane per channel, min..max of each pixel column filled. */
export function renderWaveform(channels: readonly Float32Array[], opts: { width?: number; height?: number } = {}): RgbImage {
  const width = opts.width ?? 800;
  const height = opts.height ?? 160;
  const data = new Uint8Array(width * height * 3);
  const bg: [number, number, number] = [24, 24, 32];
  const fg: [number, number, number] = [120, 200, 255];
  const axis: [number, number, number] = [70, 70, 90];
  const set = (x: number, y: number, c: [number, number, number]): void => {
    const o = (y * width + x) * 3;
    data[o] = c[0];
    data[o + 1] = c[1];
    data[o + 2] = c[2];
  };
  for (let y = 0; y < height; y++) for (let xx = 0; xx < width; xx++) set(xx, y, bg);
  const lanes = Math.max(1, channels.length);
  const laneH = Math.floor(height / lanes);
  channels.forEach((ch, c) => {
    const top = c * laneH;
    const mid = top + (laneH - 1) / 2;
    for (let xx = 0; xx < width; xx++) set(xx, Math.round(mid), axis);
    for (let xx = 0; xx < width && ch.length > 0; xx++) {
      const a = Math.floor((xx / width) * ch.length);
      const b = Math.max(a + 1, Math.floor(((xx + 1) / width) * ch.length));
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = a; i < b && i < ch.length; i++) {
        lo = Math.min(lo, ch[i]);
        hi = Math.max(hi, ch[i]);
      }
      const y0 = Math.round(mid - Math.min(1, Math.max(-1, hi)) * (laneH / 2 - 1));
      const y1 = Math.round(mid - Math.min(1, Math.max(-1, lo)) * (laneH / 2 - 1));
      for (let y = Math.max(top, y0); y <= Math.min(top + laneH - 1, y1); y++) set(xx, y, fg);
    }
  });
  return { width, height, data };
}
