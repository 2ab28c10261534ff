// safetensors reader (lazy: header first, each tensor read by offset on demand) and writer
// (streaming, atomic: temp file + rename). Format: u64 LE header length, JSON header, raw data.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { checkView, halfToFloatTensor, nativeHostRelayout, nativeRelayout, relayoutHostTensors, relayoutTensors, setHalfTable, type RelayoutView } from '../backend/half-upload.ts';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'BOOL' | 'F64' | 'I8' | 'U8' | 'I16';

export const DTYPE_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  offsets: [number, number];
}

/** Host-side tensor data: float32 for floating dtypes, int32 for integer and bool dtypes. */
export interface HostTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Anything tensors can be loaded from by name (a safetensors file, a prefixed view, a map). */
export interface TensorSource {
  /** Every tensor name. */
  keys(): string[];
  /** Whether a tensor of this name exists. */
  has(key: string): boolean;
  /** The shape of a tensor, without reading it. */
  shape(key: string): number[];
  /** The tensor as a new tf tensor (owned by the caller); float dtypes as float32, integers as int32. Throws for an unknown name. */
  read(key: string): tf.Tensor;
  /** For a source that combines others: the source and key that hold `key` (lets readers use a file's raw bytes). */
  locate?(key: string): { source: TensorSource; key: string };
  /**
   * Float32 tensors of `key` in the given layouts, reading it once (a loader's fast path for weights that
   * are re-laid out at load; see nn/residency.ts). Absent: the loader reads the tensor and re-lays it with tf ops.
   */
  readViews?(key: string, views: readonly LayoutView[]): tf.Tensor[];
  /**
   * Like `readViews`, as host-resident float32 tensors (nn/kernels.ts TO_HOST) read straight into host
   * memory, never on the backend; null where the source or the backend has no such path (the loader then
   * reads the views and moves them with TO_HOST).
   */
  readHostViews?(key: string, views: readonly LayoutView[]): tf.Tensor[] | null;
}

/** Rows [start, start + count) of the first axis of a tensor, then (2-D only) transposed. */
export type LayoutView = RelayoutView;

/** `view` of `t` as a new tensor, with tf ops. */
export function relaid(t: tf.Tensor, view: LayoutView): tf.Tensor {
  // tfjs' slice does not check bounds on every backend (wasm reads past the end).
  checkView(t.shape, view);
  return tf.tidy(() => {
    let v = t;
    if (view.rows) {
      const [start, count] = view.rows;
      v = tf.slice(v, [start, ...v.shape.slice(1).map(() => 0)], [count, ...v.shape.slice(1)]);
    }
    if (view.transpose) {
      v = tf.transpose(v);
    }
    return v === t ? v.clone() : v;
  });
}

/** `views` of `key` from one read of the whole tensor, re-laid with tf ops (sources without a native path). */
export function readViewsWithOps(source: Pick<TensorSource, 'read'>, key: string, views: readonly LayoutView[]): tf.Tensor[] {
  const t = source.read(key);
  try {
    return views.map((v) => relaid(t, v));
  } finally {
    t.dispose();
  }
}

/** A malformed, truncated or unsupported safetensors file, or a missing tensor; the message names the file. */
export class SafetensorsError extends Error {}

/** Most dimensions a tensor may have: far more than any model uses; bounds the work on a hostile header. */
export const MAX_RANK = 64;
/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const MAX_NAME_SHOWN = 200;

function clipName(s: string): string {
  return s.length <= MAX_NAME_SHOWN ? s : `${s.slice(0, MAX_NAME_SHOWN)}… (${s.length} chars)`;
}

/** A header value for a message, bounded whatever its size or depth (never JSON.stringify of the value). */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(clipName(v));
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) {
    return v.length <= 8 && v.every((x) => typeof x === 'number') ? `[${v.join(', ')}]` : `an array of ${v.length} items`;
  }
  return v === undefined ? 'nothing' : 'an object';
}

export interface SafetensorsHeader {
  entries: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/**
 * Validates a safetensors JSON header against a data section of `dataLen` bytes: known dtypes
 * (own properties only), non-negative integer shapes of rank ≤ MAX_RANK, byte counts that match
 * shape × dtype, and offsets that tile the data section exactly (sorted, contiguous, no overlap,
 * nothing left over). Errors are SafetensorsErrors prefixed with `where`.
 */
export function parseSafetensorsHeader(json: Uint8Array, dataLen: number, where: string): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${where}: ${msg}`);
  };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');
  const entries = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    const what = `tensor "${clipName(name)}"`;
    if (name === '__metadata__') {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) fail(`__metadata__ is ${show(v)}, expected an object of strings`);
      for (const [k, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== 'string') fail(`__metadata__ "${clipName(k)}" is ${show(mv)}, expected a string`);
      }
      metadata = v as Record<string, string>;
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what}: entry is ${show(v)}, expected an object`);
    const e = v as Record<string, unknown>;
    const dtype = Object.hasOwn(e, 'dtype') ? e.dtype : undefined;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, dtype)) {
      fail(`${what}: unknown dtype ${show(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    const shape = Object.hasOwn(e, 'shape') ? e.shape : undefined;
    if (!Array.isArray(shape)) return fail(`${what}: invalid shape ${show(shape)}, expected an array of dimensions`);
    if (shape.length > MAX_RANK) fail(`${what}: shape has ${shape.length} dimensions, more than the limit of ${MAX_RANK}`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${what}: invalid shape ${show(shape)}, dimensions must be non-negative integers`);
    }
    const offs = Object.hasOwn(e, 'data_offsets') ? e.data_offsets : undefined;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`${what}: invalid data_offsets ${show(offs)}, expected [begin, end]`);
    }
    const [b, en] = offs as [number, number];
    if (en < b || en > dataLen) fail(`${what}: data_offsets [${b}, ${en}] out of range (data section is ${dataLen} bytes)`);
    const dt = dtype as SafetensorsDType;
    const expected = numel(shape as number[]) * DTYPE_SIZE[dt];
    if (en - b !== expected) {
      fail(`${what}: shape ${show(shape)} × ${dt} needs ${expected} bytes but data_offsets span ${en - b}`);
    }
    entries.set(name, { dtype: dt, shape: shape as number[], offsets: [b, en] });
  }
  // Offsets must tile [0, dataLen): an empty tensor cannot hide an overlap, and no byte is unaccounted for.
  const sorted = [...entries.entries()].sort((x, y) => x[1].offsets[0] - y[1].offsets[0] || x[1].offsets[1] - y[1].offsets[1]);
  let pos = 0;
  let prev = '';
  for (const [n, e] of sorted) {
    const [b, en] = e.offsets;
    if (b < pos) fail(`tensors "${clipName(prev)}" and "${clipName(n)}" have overlapping data_offsets (${b} < ${pos})`);
    if (b > pos) fail(`bytes [${pos}, ${b}) of the data section belong to no tensor (before "${clipName(n)}")`);
    pos = en;
    prev = n;
  }
  if (pos !== dataLen) fail(`the tensors cover ${pos} of the ${dataLen} data bytes; the rest belongs to no tensor`);
  return { entries, metadata };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let f16Table: Float32Array | null = null;

/** Converts IEEE half floats (as uint16) to float32 (a 64 Ki-entry table: ~10× faster on GB-sized weights). */
/** The half → float table every widening uses (JavaScript and, through the backend, native). */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16Value(h);
    setHalfTable(f16Table);
  }
  return f16Table;
}

export function f16ToF32(src: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

/**
 * A float32 tensor of IEEE half `bits` (e.g. a streamed weight's host copy), widened by the native addon
 * straight into the backend's memory where it can (wasm, tensorflow), else in JavaScript; the same bits
 * either way (NaN payloads aside).
 */
export function halfBitsTensor(bits: Uint16Array, shape: readonly number[]): tf.Tensor {
  halfTable();
  const native = bits.length && nativeRelayout('F16') ? relayoutTensors(bits, shape, [{}]) : null;
  return native ? native[0] : tf.tensor(f16ToF32(bits), [...shape], 'float32');
}

/** Converts float32 to IEEE half (round to nearest even), as uint16. */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
  }
  return out;
}

export function bf16ToF32(src: Uint16Array): Float32Array {
  const u = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return new Float32Array(u.buffer);
}

/** float32 → bfloat16 with round-to-nearest-even (what torch's .to(bfloat16) does). */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    const lsb = (x >>> 16) & 1;
    out[i] = ((x + 0x7fff + lsb) >>> 16) & 0xffff;
  }
  return out;
}

/** Decodes raw little-endian bytes of a safetensors dtype into float32 / int32 host data. */
export function decodeBytes(bytes: Uint8Array, dtype: SafetensorsDType, where: string): HostTensor['data'] {
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  const n = aligned.byteLength / DTYPE_SIZE[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf.slice(off, off + aligned.byteLength));
    case 'F64':
      return Float32Array.from(new Float64Array(buf, off, n));
    case 'F16':
      return f16ToF32(new Uint16Array(buf, off, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buf, off, n));
    case 'I32':
      return new Int32Array(buf.slice(off, off + aligned.byteLength));
    case 'I16':
      return Int32Array.from(new Int16Array(buf, off, n));
    case 'I8':
      return Int32Array.from(new Int8Array(buf, off, n));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(new Uint8Array(buf, off, n));
    case 'I64': {
      const big = new BigInt64Array(buf, off, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = big[i];
        if (v > 2147483647n || v < -2147483648n) {
          throw new SafetensorsError(`${where}: I64 value ${v} at index ${i} does not fit in int32`);
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

export function isFloatDType(d: SafetensorsDType): boolean {
  return d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
}

/** A safetensors file opened lazily: only the header is read up front. */
export class SafetensorsFile implements TensorSource {
  /** The header's tensor entries (dtype, shape, byte offsets) by name. */
  readonly entries: Map<string, TensorEntry>;
  /** The header's `__metadata__` (string to string; {} when absent). */
  readonly metadata: Record<string, string>;
  private fd: number | null;
  private readonly dataStart: number;

  private constructor(
    /** The path the file was opened from. */
    readonly file: string,
    fd: number,
    entries: Map<string, TensorEntry>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.fd = fd;
    this.entries = entries;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  static open(file: string): SafetensorsFile {
    const fail = (msg: string): never => {
      throw new SafetensorsError(`${file}: ${msg}`);
    };
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) fail(`file is ${size} bytes, too short for the 8-byte header length`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(size - 8)) {
        fail(`header length ${headerLen} goes beyond the end of the file (${size} bytes)`);
      }
      const hl = Number(headerLen);
      if (hl > MAX_HEADER_BYTES) fail(`header length ${hl} is implausibly large (> 100 MB)`);
      const hb = Buffer.alloc(hl);
      let got = 0;
      while (got < hl) {
        const n = fs.readSync(fd, hb, got, hl - got, 8 + got);
        if (n <= 0) fail(`unexpected end of file in the header`);
        got += n;
      }
      const dataStart = 8 + hl;
      const { entries, metadata } = parseSafetensorsHeader(hb, size - dataStart, file);
      return new SafetensorsFile(file, fd, entries, metadata, dataStart);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * The header entry of one tensor.
   * @throws SafetensorsError when there is no tensor of that name.
   */
  entry(key: string): TensorEntry {
    const e = this.entries.get(key);
    if (!e) throw new SafetensorsError(`${this.file}: no tensor named "${key}"`);
    return e;
  }

  shape(key: string): number[] {
    return this.entry(key).shape;
  }

  /** Raw little-endian bytes of one tensor. */
  readBytes(key: string): Uint8Array {
    return this.readBytesInto(key, null);
  }

  /**
   * The bytes of `key` in a buffer this file reuses from call to call (fresh pages cost more than the read
   * itself for multi-GB loads), for a caller that is done with them before the next read.
   */
  private readScratch(key: string): Uint8Array {
    const len = this.entry(key).offsets[1] - this.entry(key).offsets[0];
    if (!this.scratch || this.scratch.byteLength < len) this.scratch = new Uint8Array(Math.max(len, 2 * (this.scratch?.byteLength ?? 0)));
    return this.readBytesInto(key, this.scratch.subarray(0, len));
  }
  private scratch: Uint8Array | null = null;

  private readBytesInto(key: string, into: Uint8Array | null): Uint8Array {
    const e = this.entry(key);
    if (this.fd === null) throw new SafetensorsError(`${this.file}: file is closed`);
    const len = e.offsets[1] - e.offsets[0];
    const out = into ?? new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(this.fd, out, done, len - done, this.dataStart + e.offsets[0] + done);
      if (n <= 0) throw new SafetensorsError(`${this.file}: unexpected end of file reading "${key}"`);
      done += n;
    }
    return out;
  }

  /** One tensor decoded into host memory (float32 or int32), without touching the backend. */
  readHost(key: string): HostTensor {
    return this.decode(key, this.entry(key), this.readBytes(key));
  }

  private decode(key: string, e: TensorEntry, bytes: Uint8Array): HostTensor {
    const data = decodeBytes(bytes, e.dtype, `${this.file}: tensor "${key}"`);
    return { dtype: data instanceof Float32Array ? 'float32' : 'int32', shape: e.shape, data };
  }

  read(key: string): tf.Tensor {
    const e = this.entry(key);
    if (e.dtype === 'F16') halfTable();
    const some = e.offsets[1] > e.offsets[0];
    if (e.dtype === 'F16' && some && nativeRelayout('F16')) {
      const bytes = this.readScratch(key);
      return relayoutTensors(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), e.shape, [{}])![0];
    }
    const bytes = this.readBytes(key);
    if (e.dtype === 'F16') {
      const native = halfToFloatTensor(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), e.shape);
      if (native) return native;
    }
    const h = this.decode(key, e, bytes);
    return tf.tensor(h.data, h.shape, h.dtype);
  }

  /**
   * Float32 tensors of `key` in the given layouts from one read: converted and re-laid natively by the
   * backend where it can (tfjs-node with the native addon: no full-layout tensor, no TensorFlow Cast), else
   * read as one tensor and re-laid with tf ops.
   */
  readViews(key: string, views: readonly LayoutView[]): tf.Tensor[] {
    const e = this.entry(key);
    if (e.dtype === 'F16') halfTable();
    if ((e.dtype === 'F16' || e.dtype === 'F32') && e.offsets[1] > e.offsets[0] && nativeRelayout(e.dtype)) {
      const bytes = this.readScratch(key);
      const data = e.dtype === 'F16' ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return relayoutTensors(data, e.shape, views)!;
    }
    return readViewsWithOps(this, key, views);
  }

  /**
   * `views` of `key` as host-resident tensors, widened (F16) and re-laid by the native addon from one read
   * straight into the host arrays that hold them (wasm with the addon); null for other dtypes or backends.
   */
  readHostViews(key: string, views: readonly LayoutView[]): tf.Tensor[] | null {
    const e = this.entry(key);
    if ((e.dtype !== 'F16' && e.dtype !== 'F32') || e.offsets[1] <= e.offsets[0] || !nativeHostRelayout()) return null;
    if (e.dtype === 'F16') halfTable();
    for (const v of views) checkView(e.shape, v);
    const bytes = this.readScratch(key);
    const data = e.dtype === 'F16' ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    return relayoutHostTensors(data, e.shape, views);
  }

  /** Closes the file; reads afterwards fail. Safe to call twice. */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.scratch = null;
  }
}

/** A view of a source restricted to keys under `prefix` (with the prefix removed). */
export class PrefixedSource implements TensorSource {
  constructor(
    private readonly inner: TensorSource,
    private readonly prefix: string,
  ) {}
  keys(): string[] {
    return this.inner
      .keys()
      .filter((k) => k.startsWith(this.prefix))
      .map((k) => k.slice(this.prefix.length));
  }
  has(key: string): boolean {
    return this.inner.has(this.prefix + key);
  }
  shape(key: string): number[] {
    return this.inner.shape(this.prefix + key);
  }
  read(key: string): tf.Tensor {
    return this.inner.read(this.prefix + key);
  }
}

/** An in-memory source (tests, synthetic weights). Tensors stay owned by the caller. */
export class MapSource implements TensorSource {
  constructor(private readonly map: Map<string, tf.Tensor> | Record<string, tf.Tensor>) {}
  private get m(): Map<string, tf.Tensor> {
    return this.map instanceof Map ? this.map : new Map(Object.entries(this.map));
  }
  keys(): string[] {
    return [...this.m.keys()];
  }
  has(key: string): boolean {
    return this.m.has(key);
  }
  shape(key: string): number[] {
    return this.m.get(key)!.shape;
  }
  read(key: string): tf.Tensor {
    const t = this.m.get(key);
    if (!t) throw new Error(`no tensor named "${key}"`);
    return t.clone();
  }
}

/** Temp files of writes in progress: removed by removePendingTempFiles() on interruption, and at exit. */
const pendingTemps = new Set<string>();
let exitHookInstalled = false;

/**
 * Deletes (synchronously) the temp files of safetensors writes still in progress and returns
 * their paths. For signal handlers: call it, then exit; the interrupted writes leave nothing.
 */
export function removePendingTempFiles(): string[] {
  const removed = [...pendingTemps];
  for (const t of removed) fs.rmSync(t, { force: true });
  pendingTemps.clear();
  return removed;
}

export interface WriteEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Produces the tensor's raw little-endian bytes; called once, in order, while writing. */
  bytes: () => Uint8Array | Promise<Uint8Array>;
}

/**
 * Streams tensors into a safetensors file: header first, then each tensor's bytes in name order.
 * Written to a temp file next to `file` and renamed on success, so a failure leaves nothing behind.
 */
export async function writeSafetensors(
  file: string,
  entries: WriteEntry[],
  metadata?: Record<string, string>,
): Promise<void> {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  const seen = new Set<string>();
  for (const e of sorted) {
    if (seen.has(e.name)) throw new SafetensorsError(`${file}: duplicate tensor name "${e.name}"`);
    seen.add(e.name);
    if (!(e.dtype in DTYPE_SIZE)) throw new SafetensorsError(`${file}: unknown dtype ${e.dtype} for "${e.name}"`);
    const len = numel(e.shape) * DTYPE_SIZE[e.dtype];
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + len] };
    off += len;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const hb = Buffer.from(json, 'utf8');
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  pendingTemps.add(tmp);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', removePendingTempFiles);
  }
  try {
    const lb = Buffer.alloc(8);
    lb.writeBigUInt64LE(BigInt(hb.length));
    fs.writeSync(fd, lb);
    fs.writeSync(fd, hb);
    for (const e of sorted) {
      const b = await e.bytes();
      const len = numel(e.shape) * DTYPE_SIZE[e.dtype];
      if (b.byteLength !== len) {
        throw new SafetensorsError(
          `${file}: tensor "${e.name}" has ${b.byteLength} bytes, expected ${len} for ${e.dtype} ${JSON.stringify(e.shape)}`,
        );
      }
      let done = 0;
      while (done < b.byteLength) done += fs.writeSync(fd, b, done, b.byteLength - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
    pendingTemps.delete(tmp);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true });
    pendingTemps.delete(tmp);
    throw e;
  }
}

/** Bytes of a host array in a safetensors dtype (float32 → F32/F16/BF16; int32 → I32/I64/BOOL). */
export function encodeHost(data: Float32Array | Int32Array, dtype: SafetensorsDType): Uint8Array {
  const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'F32':
      return u8(data instanceof Float32Array ? data : Float32Array.from(data));
    case 'F16':
      return u8(f32ToF16(data instanceof Float32Array ? data : Float32Array.from(data)));
    case 'BF16':
      return u8(f32ToBf16(data instanceof Float32Array ? data : Float32Array.from(data)));
    case 'I32':
      return u8(data instanceof Int32Array ? data : Int32Array.from(data, (v) => Math.trunc(v)));
    case 'I64':
      return u8(BigInt64Array.from(data, (v) => BigInt(Math.trunc(v))));
    case 'BOOL':
      return Uint8Array.from(data, (v) => (v ? 1 : 0));
    default:
      throw new SafetensorsError(`encoding host data as ${dtype} is not supported`);
  }
}

/** Convenience: write tf tensors (float32 → F32, int32/bool → I32 unless dtypes says otherwise). */
export async function saveTensors(
  file: string,
  tensors: Record<string, tf.Tensor>,
  metadata?: Record<string, string>,
  dtypes: Record<string, SafetensorsDType> = {},
): Promise<void> {
  await writeSafetensors(
    file,
    Object.entries(tensors).map(([name, t]) => {
      const dtype = dtypes[name] ?? (t.dtype === 'float32' ? 'F32' : 'I32');
      return {
        name,
        dtype,
        shape: t.shape,
        bytes: async () => encodeHost((await t.data()) as Float32Array | Int32Array, dtype),
      };
    }),
    metadata,
  );
}
