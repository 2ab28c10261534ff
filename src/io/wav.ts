// WAV writing (wav-encoder, atomic), the reference's int16 conversion, peak normalisation and header/data reading.
// Reference: docs/REFERENCE.md §7.9 and quirk 24.
import fs from 'node:fs';
import WavEncoder from 'wav-encoder';
import { MediaError, writeAtomically } from './ffmpeg.ts';

export type WavBitDepth = 16 | '32f';

/** 'writer': the reference demo's WAV writer (default); 'readme': its README script's truncation. */
export type Int16Recipe = 'writer' | 'readme';

export interface WavHeader {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** 'pcm' (integer) or 'float' (IEEE). */
  format: 'pcm' | 'float';
  /** Sample frames (samples per channel). */
  numFrames: number;
  /** numFrames / sampleRate. */
  duration: number;
  /** Byte offset and length of the data chunk. */
  dataOffset: number;
  dataBytes: number;
}

function checkChannels(channels: readonly ArrayLike<number>[], sampleRate: number): void {
  if (channels.length === 0) throw new MediaError('INVALID_ARGUMENT', 'Cannot write a WAV with zero channels.');
  const n = channels[0].length;
  for (let c = 1; c < channels.length; c++) {
    if (channels[c].length !== n) {
      throw new MediaError(
        'INVALID_ARGUMENT',
        `All channels must have the same length (channel 0 has ${n} samples, channel ${c} has ${channels[c].length}).`,
      );
    }
  }
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new MediaError('INVALID_ARGUMENT', `sampleRate must be a positive integer, got ${sampleRate}.`);
  }
}

function checkFinite(channels: readonly Float32Array[]): void {
  for (let c = 0; c < channels.length; c++) {
    const x = channels[c];
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i])) {
        throw new MediaError(
          'INVALID_ARGUMENT',
          `Audio channel ${c} contains ${x[i]} at sample ${i}; refusing to write a corrupt WAV ` +
            '(a silent output peak-normalised by 0 gives NaN — check the generation).',
        );
      }
    }
  }
}

/**
 * Writes `channels` (float, nominally [−1,1]) as a WAV file, atomically (temp file + rename).
 * bitDepth 16 (default): PCM through {@link toInt16}, the reference front-end's conversion. '32f': IEEE
 * float, values written as is.
 */
export async function writeWav(
  file: string,
  channels: readonly Float32Array[],
  sampleRate: number,
  opts: { bitDepth?: WavBitDepth } = {},
): Promise<void> {
  checkChannels(channels, sampleRate);
  checkFinite(channels);
  if ((opts.bitDepth ?? 16) === 16) return writeWavInt16(file, toInt16(channels), sampleRate);
  const buf = WavEncoder.encode.sync({ sampleRate, channelData: [...channels] }, { float: true });
  await writeAtomically(file, async (tmp) => fs.promises.writeFile(tmp, new Uint8Array(buf)));
}

/** Writes exact int16 sample values (e.g. from {@link toInt16}) as 16-bit PCM WAV, atomically. */
export async function writeWavInt16(file: string, channels: readonly Int16Array[], sampleRate: number): Promise<void> {
  checkChannels(channels, sampleRate);
  // wav-encoder maps v ≥ 0 to round(v·32767) and v < 0 to round(v·32768): invert that exactly.
  const asFloat = channels.map((ch) => {
    const f = new Float32Array(ch.length);
    for (let i = 0; i < ch.length; i++) f[i] = ch[i] < 0 ? ch[i] / 32768 : ch[i] / 32767;
    return f;
  });
  const buf = WavEncoder.encode.sync({ sampleRate, channelData: asFloat }, { bitDepth: 16 });
  await writeAtomically(file, async (tmp) => fs.promises.writeFile(tmp, new Uint8Array(buf)));
}

/**
 * The one float → int16 conversion (WAV writer, CLI, server, parity): clamp to [−1, 1], ×32768, round
 * down, clip to 32767 — the values the reference front-end's WAV writer (soundfile → libsndfile PCM_16)
 * actually stored in pipeline/postprocess: 639 of 640 samples are ⌊x·32768⌋ and the 640th is the peak
 * +1.0 clipped to 32767 (neither lrintf(x·32767) nor the README recipe's truncation of x·32767 fits).
 * The input is expected peak-normalised already ({@link peakNormalize}). NaN is refused.
 *
 * `recipe: 'readme'` is the other conversion the reference ships — its README's inference script:
 * ×32767 in float32, truncated toward zero (up to 2 steps apart from the writer's for negative samples).
 */
export function toInt16(channels: readonly Float32Array[], opts: { recipe?: Int16Recipe } = {}): Int16Array[] {
  const readme = opts.recipe === 'readme';
  return channels.map((x, c) => {
    const out = new Int16Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      if (Number.isNaN(v)) throw new MediaError('INVALID_ARGUMENT', `Audio channel ${c} contains NaN at sample ${i}; cannot convert to int16.`);
      const q = Math.min(1, Math.max(-1, v));
      out[i] = readme ? Math.trunc(Math.fround(q * 32767)) : Math.min(32767, Math.floor(q * 32768));
    }
    return out;
  });
}

/** max |x| over all channels. */
export function globalPeak(channels: readonly Float32Array[]): number {
  let peak = 0;
  for (const x of channels) {
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]);
      if (a > peak || Number.isNaN(a)) peak = a;
    }
  }
  return peak;
}

/**
 * Divides every channel by the global peak (max |x| over all channels, float32 arithmetic) and clamps to [−1,1],
 * like the reference's output normalisation (§7.9). Deviation: an all-zero input is returned unchanged
 * (the reference divides by 0 and produces NaN).
 */
export function peakNormalize(channels: readonly Float32Array[]): Float32Array[] {
  const peak = globalPeak(channels);
  return channels.map((x) => {
    const out = new Float32Array(x.length);
    if (peak === 0 || Number.isNaN(peak)) {
      out.set(x);
      return out;
    }
    for (let i = 0; i < x.length; i++) out[i] = Math.min(1, Math.max(-1, x[i] / peak));
    return out;
  });
}

/** Parses a RIFF/WAVE header (PCM, IEEE float and WAVE_FORMAT_EXTENSIBLE), skipping unknown chunks. */
export function readWavHeader(file: string): WavHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    throw new MediaError('FILE_NOT_FOUND', `WAV file "${file}" does not exist or is not readable.`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const n = fs.readSync(fd, b, 0, len, pos);
      return b.subarray(0, n);
    };
    const riff = read(0, 12);
    if (riff.length < 12 || riff.toString('ascii', 0, 4) !== 'RIFF' || riff.toString('ascii', 8, 12) !== 'WAVE') {
      throw new MediaError('NOT_MEDIA', `"${file}" is not a RIFF/WAVE file.`);
    }
    let pos = 12;
    let fmt: Buffer | null = null;
    while (pos + 8 <= size) {
      const h = read(pos, 8);
      const id = h.toString('ascii', 0, 4);
      const len = h.readUInt32LE(4);
      if (id === 'fmt ') fmt = read(pos + 8, Math.min(len, 64));
      else if (id === 'data') {
        if (!fmt || fmt.length < 16) throw new MediaError('NOT_MEDIA', `"${file}": data chunk before a valid fmt chunk.`);
        let formatTag = fmt.readUInt16LE(0);
        if (formatTag === 0xfffe && fmt.length >= 26) formatTag = fmt.readUInt16LE(24); // extensible: sub-format GUID
        const channels = fmt.readUInt16LE(2);
        const sampleRate = fmt.readUInt32LE(4);
        const blockAlign = fmt.readUInt16LE(12);
        const bitsPerSample = fmt.readUInt16LE(14);
        if (formatTag !== 1 && formatTag !== 3) {
          throw new MediaError('NOT_MEDIA', `"${file}": unsupported WAV format tag 0x${formatTag.toString(16)}.`);
        }
        const dataBytes = Math.min(len, size - (pos + 8));
        const numFrames = blockAlign > 0 ? Math.floor(dataBytes / blockAlign) : 0;
        return {
          sampleRate,
          channels,
          bitsPerSample,
          format: formatTag === 3 ? 'float' : 'pcm',
          numFrames,
          duration: sampleRate > 0 ? numFrames / sampleRate : 0,
          dataOffset: pos + 8,
          dataBytes,
        };
      }
      pos += 8 + len + (len & 1);
    }
    throw new MediaError('NOT_MEDIA', `"${file}": no data chunk found (truncated WAV?).`);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a 16/24/32-bit PCM or 32/64-bit float WAV into per-channel float32 (PCM scaled by 1/2^(bits−1)). */
export function readWav(file: string): { data: Float32Array[]; sampleRate: number; header: WavHeader } {
  const header = readWavHeader(file);
  const { channels, numFrames, bitsPerSample, format } = header;
  const bytes = bitsPerSample / 8;
  const buf = Buffer.alloc(numFrames * channels * bytes);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, header.dataOffset);
  } finally {
    fs.closeSync(fd);
  }
  const readSample = (off: number): number => {
    if (format === 'float') return bitsPerSample === 64 ? buf.readDoubleLE(off) : buf.readFloatLE(off);
    if (bitsPerSample === 16) return buf.readInt16LE(off) / 32768;
    if (bitsPerSample === 24) return buf.readIntLE(off, 3) / 8388608;
    if (bitsPerSample === 32) return buf.readInt32LE(off) / 2147483648;
    if (bitsPerSample === 8) return (buf.readUInt8(off) - 128) / 128;
    throw new MediaError('NOT_MEDIA', `"${file}": unsupported PCM bit depth ${bitsPerSample}.`);
  };
  const data = Array.from({ length: channels }, () => new Float32Array(numFrames));
  for (let i = 0, off = 0; i < numFrames; i++) {
    for (let c = 0; c < channels; c++, off += bytes) data[c][i] = readSample(off);
  }
  return { data, sampleRate: header.sampleRate, header };
}

/** Raw int16 sample values of a 16-bit PCM WAV (per channel), e.g. to check exact conversions. */
export function readWavInt16(file: string): Int16Array[] {
  const header = readWavHeader(file);
  if (header.format !== 'pcm' || header.bitsPerSample !== 16) {
    throw new MediaError('INVALID_ARGUMENT', `"${file}" is not 16-bit PCM (it is ${header.bitsPerSample}-bit ${header.format}).`);
  }
  const buf = Buffer.alloc(header.numFrames * header.channels * 2);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, buf.length, header.dataOffset);
  } finally {
    fs.closeSync(fd);
  }
  const out = Array.from({ length: header.channels }, () => new Int16Array(header.numFrames));
  for (let i = 0, off = 0; i < header.numFrames; i++) {
    for (let c = 0; c < header.channels; c++, off += 2) out[c][i] = buf.readInt16LE(off);
  }
  return out;
}
