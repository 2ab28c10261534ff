// Random-access reader for the zip container torch.save writes (entries are usually STORED, so
// byte ranges are read straight from disk; DEFLATE entries are streamed and sliced).
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import type { Readable } from 'node:stream';

export class ZipError extends Error {}

export interface ZipEntryInfo {
  name: string;
  size: number;
  compressed: boolean;
}

function openZip(file: string): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, zf) => {
      if (err || !zf) reject(err ?? new Error('unknown error'));
      else resolve(zf);
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
      return new ZipReader(file, zf, await readEntries(zf));
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
    return e;
  }

  /** Uncompressed bytes [start, end) of an entry (the whole entry by default). */
  async read(name: string, start = 0, end?: number): Promise<Buffer> {
    const e = this.get(name);
    const stop = end ?? e.uncompressedSize;
    if (start < 0 || stop < start || stop > e.uncompressedSize) {
      throw new ZipError(`${this.file}: range [${start}, ${stop}) is outside entry "${name}" (${e.uncompressedSize} bytes)`);
    }
    const out = Buffer.alloc(stop - start);
    if (out.length === 0) return out;
    const stored = e.compressionMethod === 0;
    let s: Readable;
    try {
      s = await streamOf(this.zf, e, stored ? { start, end: stop } : undefined);
    } catch (err) {
      throw new ZipError(`${this.file}: cannot read entry "${name}" (${(err as Error).message})`);
    }
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
