// Random-access reader for the zip container torch.save writes (entries are usually STORED, so
// byte ranges are read straight from disk; DEFLATE entries are streamed and sliced).
import fs from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';

export class ZipError extends Error {}

/** DEFLATE cannot expand data more than ~1032×: an entry declaring more is corrupt (or a zip bomb). */
const MAX_DEFLATE_RATIO = 1032;

export interface ZipEntryInfo {
  name: string;
  size: number;
  compressed: boolean;
}

/**
 * The file as yauzl sees it. Every range is checked against the file size before it is read:
 * yauzl trusts zip64 offsets, and one past 2^53 made fs.read throw outside any callback (an
 * uncaught exception, or a read that never settles).
 */
class BoundedFileReader extends yauzl.RandomAccessReader {
  private closed = false;
  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > this.size) {
      const s = new PassThrough();
      process.nextTick(() => s.destroy(new Error(`byte range [${start}, ${end}) is outside the ${this.size}-byte file`)));
      return s;
    }
    // Positional reads of our own: an fs.ReadStream closes the shared fd when yauzl destroys it.
    const fd = this.fd;
    let pos = start;
    return new Readable({
      highWaterMark: 1 << 20,
      read(size: number): void {
        const n = Math.min(size, end - pos, 1 << 20);
        if (n <= 0) {
          this.push(null);
          return;
        }
        const buf = Buffer.allocUnsafe(n);
        fs.read(fd, buf, 0, n, pos, (err, got) => {
          if (err) return void this.destroy(err);
          if (got === 0) return void this.push(null); // the file ended early: yauzl reports the short read
          pos += got;
          this.push(got < n ? buf.subarray(0, got) : buf);
        });
      },
    });
  }

  override close(callback: (err: Error | null) => void): void {
    if (this.closed) return callback(null);
    this.closed = true;
    fs.close(this.fd, callback);
  }
}

async function openZip(file: string): Promise<ZipFile> {
  const fd = await new Promise<number>((resolve, reject) => fs.open(file, 'r', (e, d) => (e ? reject(e) : resolve(d))));
  let size: number;
  try {
    size = fs.fstatSync(fd).size;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const reader = new BoundedFileReader(fd, size);
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(reader, size, { lazyEntries: true, autoClose: false }, (err, zf) => {
      if (err || !zf) {
        reader.close(() => undefined);
        reject(err ?? new Error('unknown error'));
      } else resolve(zf);
    });
  });
}

function readEntries(zf: ZipFile): Promise<Map<string, Entry>> {
  return new Promise((resolve, reject) => {
    const out = new Map<string, Entry>();
    zf.on('entry', (e: Entry) => {
      out.set(e.fileName, e);
      zf.readEntry();
    });
    zf.once('end', () => resolve(out));
    zf.once('error', reject);
    zf.readEntry();
  });
}

function streamOf(zf: ZipFile, entry: Entry, range?: { start: number; end: number }): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const cb = (err: Error | null, s: Readable) => (err ? reject(err) : resolve(s));
    try {
      if (range) zf.openReadStream(entry, { decompress: null, decrypt: null, start: range.start, end: range.end }, cb);
      else zf.openReadStream(entry, cb);
    } catch (e) {
      reject(e);
    }
  });
}

export class ZipReader {
  private constructor(
    readonly file: string,
    private readonly zf: ZipFile,
    private readonly entryMap: Map<string, Entry>,
  ) {}

  static async open(file: string): Promise<ZipReader> {
    let zf: ZipFile;
    try {
      zf = await openZip(file);
    } catch (e) {
      throw new ZipError(`${file}: not a readable zip archive (${(e as Error).message})`);
    }
    try {
      const entries = await readEntries(zf);
      // Errors yauzl reports later belong to a read (which reports them itself); never let one go unhandled.
      zf.on('error', () => undefined);
      return new ZipReader(file, zf, entries);
    } catch (e) {
      zf.close();
      throw new ZipError(`${file}: corrupt zip central directory (${(e as Error).message})`);
    }
  }

  names(): string[] {
    return [...this.entryMap.keys()];
  }

  has(name: string): boolean {
    return this.entryMap.has(name);
  }

  info(name: string): ZipEntryInfo {
    const e = this.get(name);
    return { name, size: e.uncompressedSize, compressed: e.compressionMethod !== 0 };
  }

  private get(name: string): Entry {
    const e = this.entryMap.get(name);
    if (!e) throw new ZipError(`${this.file}: zip has no entry "${name}"`);
    if (e.isEncrypted()) throw new ZipError(`${this.file}: entry "${name}" is encrypted, which torch never writes`);
    if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
      throw new ZipError(`${this.file}: entry "${name}" uses unsupported compression method ${e.compressionMethod}`);
    }
    if (e.compressionMethod === 8 && e.uncompressedSize > e.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      throw new ZipError(
        `${this.file}: entry "${name}" claims ${e.uncompressedSize} bytes from ${e.compressedSize} compressed, more than DEFLATE can expand; the archive is corrupt`,
      );
    }
    return e;
  }

  /** Uncompressed bytes [start, end) of an entry (the whole entry by default). */
  async read(name: string, start = 0, end?: number): Promise<Buffer> {
    const e = this.get(name);
    const stop = end ?? e.uncompressedSize;
    if (start < 0 || stop < start || stop > e.uncompressedSize) {
      throw new ZipError(`${this.file}: range [${start}, ${stop}) is outside entry "${name}" (${e.uncompressedSize} bytes)`);
    }
    if (stop === start) return Buffer.alloc(0);
    const stored = e.compressionMethod === 0;
    let s: Readable;
    try {
      // Opened before allocating: yauzl checks that the entry's data lies inside the file.
      s = await streamOf(this.zf, e, stored ? { start, end: stop } : undefined);
    } catch (err) {
      throw new ZipError(`${this.file}: cannot read entry "${name}" (${(err as Error).message})`);
    }
    const out = Buffer.alloc(stop - start);
    // For stored entries the stream is exactly the range; for deflated ones skip to `start`.
    let pos = stored ? start : 0;
    let filled = 0;
    try {
      for await (const chunk of s as AsyncIterable<Buffer>) {
        const cStart = pos;
        pos += chunk.length;
        const a = Math.max(start, cStart);
        const b = Math.min(stop, pos);
        if (b > a) {
          chunk.copy(out, a - start, a - cStart, b - cStart);
          filled += b - a;
        }
        if (pos >= stop) {
          s.destroy();
          break;
        }
      }
    } catch (err) {
      throw new ZipError(`${this.file}: error reading entry "${name}" (${(err as Error).message}); the file may be truncated`);
    }
    if (filled !== out.length) {
      throw new ZipError(`${this.file}: entry "${name}" ended after ${filled} of ${out.length} bytes; the file may be truncated`);
    }
    return out;
  }

  close(): void {
    this.zf.close();
  }
}
