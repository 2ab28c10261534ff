// A WAV written piece by piece (long-form generation): the samples go to a raw float32 temp file as they
// come, and finish() writes the WAV from it in chunks — peak-normalised over the whole file, as writeWav's
// callers normalise one generation — then renames it into place. Memory stays at one chunk; abort() (or a
// failure) leaves nothing behind.
import fs from 'node:fs';
import { MediaError, checkOutputDir, tempPathFor, writeAtomically } from './ffmpeg.ts';
import { toInt16, type WavBitDepth } from './wav.ts';

/** Sample frames per chunk of the final pass. */
const CHUNK_FRAMES = 1 << 16;

function wavHeader(frames: number, channels: number, sampleRate: number, bitDepth: WavBitDepth): Buffer {
  const bytes = bitDepth === 16 ? 2 : 4;
  const dataBytes = frames * channels * bytes;
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(bitDepth === 16 ? 1 : 3, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * bytes, 28);
  h.writeUInt16LE(channels * bytes, 32);
  h.writeUInt16LE(bytes * 8, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

export interface ProgressiveWavOptions {
  sampleRate: number;
  channels: number;
  /** 16 (default, the reference's int16 conversion) or '32f'. */
  bitDepth?: WavBitDepth;
}

export class ProgressiveWavWriter {
  readonly file: string;
  private readonly raw: string;
  private fd: number | null;
  private peak = 0;
  private written = 0;

  private constructor(
    file: string,
    private readonly o: Required<ProgressiveWavOptions>,
  ) {
    checkOutputDir(file);
    this.file = file;
    this.raw = `${tempPathFor(file)}.raw`;
    this.fd = fs.openSync(this.raw, 'w');
  }

  /** Starts a WAV at `file` (its directory must exist); nothing appears at `file` before finish(). */
  static open(file: string, o: ProgressiveWavOptions): ProgressiveWavWriter {
    if (!Number.isInteger(o.sampleRate) || o.sampleRate <= 0) {
      throw new MediaError('INVALID_ARGUMENT', `sampleRate must be a positive integer, got ${o.sampleRate}.`);
    }
    return new ProgressiveWavWriter(file, { bitDepth: 16, ...o });
  }

  /** Sample frames appended so far. */
  get frames(): number {
    return this.written;
  }

  /** Appends the next samples (one array per channel, all the same length). */
  append(channels: readonly Float32Array[]): void {
    if (this.fd === null) throw new Error('ProgressiveWavWriter: append after finish() or abort()');
    const C = this.o.channels;
    if (channels.length !== C) throw new MediaError('INVALID_ARGUMENT', `expected ${C} channels, got ${channels.length}`);
    const n = channels[0].length;
    const inter = new Float32Array(n * C);
    for (let c = 0; c < C; c++) {
      const x = channels[c];
      if (x.length !== n) throw new MediaError('INVALID_ARGUMENT', `channel ${c} has ${x.length} samples, channel 0 has ${n}`);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        if (!Number.isFinite(v)) {
          throw new MediaError('INVALID_ARGUMENT', `audio channel ${c} contains ${v} at sample ${this.written + i}; refusing to write a corrupt WAV`);
        }
        const a = Math.abs(v);
        if (a > this.peak) this.peak = a;
        inter[i * C + c] = v;
      }
    }
    fs.writeSync(this.fd, new Uint8Array(inter.buffer));
    this.written += n;
  }

  /**
   * Writes the WAV (atomically) and removes the temp file. `normalize` (default true): divide by the
   * peak over everything appended and clamp to [−1, 1], like peakNormalize (an all-zero file stays zero).
   */
  async finish(opts: { normalize?: boolean } = {}): Promise<{ frames: number; peak: number }> {
    if (this.fd === null) throw new Error('ProgressiveWavWriter: finish() after finish() or abort()');
    fs.closeSync(this.fd);
    this.fd = null;
    const { channels: C, sampleRate, bitDepth } = this.o;
    const scale = opts.normalize !== false && this.peak > 0;
    try {
      await writeAtomically(this.file, async (tmp) => {
        const out = fs.openSync(tmp, 'w');
        const src = fs.openSync(this.raw, 'r');
        try {
          fs.writeSync(out, wavHeader(this.written, C, sampleRate, bitDepth));
          const buf = new Float32Array(CHUNK_FRAMES * C);
          for (let done = 0; done < this.written; ) {
            const n = Math.min(CHUNK_FRAMES, this.written - done);
            const bytes = fs.readSync(src, new Uint8Array(buf.buffer, 0, n * C * 4), 0, n * C * 4, done * C * 4);
            if (bytes !== n * C * 4) throw new Error(`the temp file ${this.raw} was cut short`);
            const chunk = buf.subarray(0, n * C);
            if (scale) for (let i = 0; i < chunk.length; i++) chunk[i] = Math.min(1, Math.max(-1, chunk[i] / this.peak));
            const data = bitDepth === 16 ? toInt16([chunk])[0] : chunk;
            fs.writeSync(out, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
            done += n;
          }
        } finally {
          fs.closeSync(src);
          fs.closeSync(out);
        }
      });
    } finally {
      fs.rmSync(this.raw, { force: true });
    }
    return { frames: this.written, peak: this.peak };
  }

  /** Drops everything: no file at `file`, no temp file. Safe to call more than once. */
  abort(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    fs.rmSync(this.raw, { force: true });
  }
}
