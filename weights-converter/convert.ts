// torch.save checkpoint (.ckpt/.pth zip format) → safetensors, streaming one tensor at a time.
import fs from 'node:fs';
import path from 'node:path';
import {
  DTYPE_SIZE,
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  isFloatDType,
  numel,
  writeSafetensors,
} from '../src/io/safetensors.ts';
import type { SafetensorsDType, WriteEntry } from '../src/io/safetensors.ts';
import { PyDict, clip, describeKey, typeName, unpickle } from './unpickler.ts';
import type { PyValue } from './unpickler.ts';
import { TorchTensor, fmtDims, torchPolicy } from './torch.ts';
import type { TorchStorage } from './torch.ts';
import { ZipError, ZipReader } from './zip.ts';

/** A checkpoint that cannot be converted (not a PyTorch archive, an unsupported record or dtype); the message names the tensor or record. */
export class ConvertError extends Error {}

/** Largest data.pkl read (a real one is a few MB: it indexes the tensors, their data lives elsewhere). */
export const MAX_PICKLE_BYTES = 1 << 30;

export type TargetDType = 'f32' | 'f16' | 'bf16';

export interface ConvertProgress {
  /** 1-based index of the tensor just written. */
  index: number;
  total: number;
  name: string;
  bytes: number;
}

export interface ConvertOptions {
  /** Cast floating tensors to this dtype; others keep their stored dtype. */
  dtype?: TargetDType;
  /** Removed from the start of every key that has it. */
  stripPrefix?: string;
  /**
   * Materialise views with more elements than their storage holds (stride-0 / overlapping
   * expansions such as `x.expand(...)`); refused by default. The output size cap still applies.
   */
  allowExpandedViews?: boolean;
  /**
   * Chooses what is written: given every tensor's key and shape, returns stored key → output name; keys it
   * leaves out are not written. It may throw to refuse the checkpoint (nothing is written then).
   * Applied instead of `stripPrefix`.
   */
  mapKeys?: (shapes: ReadonlyMap<string, readonly number[]>) => ReadonlyMap<string, string>;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  tensors: number;
  /** Entries that are not tensors (hyper-parameters, optimizer state...), by name. */
  skipped: string[];
  /** Size of the written safetensors file. */
  bytes: number;
}

const TARGET: Record<TargetDType, SafetensorsDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/**
 * The written tensor data may be at most this multiple of the checkpoint's size (plus OUTPUT_SLACK):
 * room for a float16 → float32 cast and tied weights (several views of one storage), not for a
 * view that turns a few bytes into gigabytes.
 */
export const MAX_OUTPUT_FACTOR = 8;
export const OUTPUT_SLACK = 1 << 20;

/** A torch checkpoint opened for reading: its tensors are read on demand. */
export interface TorchCheckpoint {
  /** Tensors of the state dict (or the top-level dict), in pickle order. */
  tensors: Map<string, TorchTensor>;
  skipped: string[];
  /** Raw, contiguous, little-endian bytes of one tensor in its stored dtype. */
  readTensor(t: TorchTensor): Promise<Uint8Array>;
  /** Size in bytes of the storage a tensor views (its archive entry); throws when it is missing. */
  storageBytes(t: TorchTensor): number;
  close(): void;
}

async function checkMagic(file: string): Promise<void> {
  let head: Buffer;
  try {
    const fh = await fs.promises.open(file, 'r');
    try {
      head = Buffer.alloc(4);
      const { bytesRead } = await fh.read(head, 0, 4, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    throw new ConvertError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return;
  if (head[0] === 0x80) {
    throw new ConvertError(
      `${file}: legacy (pre-1.6, non-zip) torch serialization is not supported; re-save it with torch.save() from torch >= 1.6`,
    );
  }
  throw new ConvertError(
    `${file}: not a PyTorch zip checkpoint (no zip signature; ${head.length} leading bytes). ` +
      'Is it truncated or not a .ckpt/.pth file? Re-download it.',
  );
}

/** Opens a torch.save zip checkpoint and unpickles its index (no tensor data is read). */
export async function openTorchCheckpoint(file: string): Promise<TorchCheckpoint> {
  await checkMagic(file);
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(file);
  } catch (e) {
    throw new ConvertError(`${(e as Error).message}. The file may be truncated; re-download it`);
  }
  try {
    const pkls = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new ConvertError(
        `${file}: expected exactly one "<archive>/data.pkl" entry (torch.save layout), found ${pkls.length}`,
      );
    }
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    if (zip.has(`${prefix}byteorder`)) {
      const order = (await zip.read(`${prefix}byteorder`)).toString('latin1').trim();
      if (order !== 'little') throw new ConvertError(`${file}: byteorder "${order}" is not supported (only little-endian)`);
    }
    const pklSize = zip.info(pkls[0]).size;
    if (pklSize > MAX_PICKLE_BYTES) {
      throw new ConvertError(`${file}: ${pkls[0]} is ${pklSize} bytes, over the ${MAX_PICKLE_BYTES >> 20} MiB limit for a checkpoint's index`);
    }
    const storages = new Map<string, TorchStorage>();
    const root = unpickle(await zip.read(pkls[0]), torchPolicy(storages));
    const { tensors, skipped } = collect(file, root);
    return {
      tensors,
      skipped,
      readTensor: (t) => readTensor(zip, `${prefix}data/`, t),
      storageBytes: (t) => storageEntry(zip, `${prefix}data/`, t).size,
      close: () => zip.close(),
    };
  } catch (e) {
    zip.close();
    if (e instanceof ConvertError) throw e;
    throw new ConvertError(`${file}: ${(e as Error).message}`);
  }
}

function collect(file: string, root: PyValue): { tensors: Map<string, TorchTensor>; skipped: string[] } {
  if (!(root instanceof PyDict)) {
    throw new ConvertError(`${file}: the checkpoint holds a ${typeName(root)}, expected a dict of tensors`);
  }
  const skipped: string[] = [];
  let dict = root;
  const sd = root.map.get('state_dict');
  if (sd instanceof PyDict) {
    dict = sd;
    for (const k of root.map.keys()) if (k !== 'state_dict') skipped.push(describeKey(k));
  }
  const tensors = new Map<string, TorchTensor>();
  for (const [k, v] of dict.map) {
    if (typeof k === 'string' && v instanceof TorchTensor) tensors.set(k, v);
    else skipped.push(describeKey(k));
  }
  return { tensors, skipped };
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expect) return false;
    expect *= shape[d];
  }
  return true;
}

/** Copies a strided view (element size `es`, strides in elements, base at 0) into row-major order. */
export function gather(src: Uint8Array, shape: number[], stride: number[], es: number): Uint8Array {
  const n = numel(shape);
  const out = new Uint8Array(n * es);
  if (n === 0) return out;
  const nd = shape.length;
  if (nd === 0) {
    out.set(src.subarray(0, es));
    return out;
  }
  const last = shape[nd - 1];
  const ls = stride[nd - 1];
  const idx = new Array<number>(nd - 1).fill(0);
  let o = 0;
  for (let r = 0; r < n / last; r++) {
    let base = 0;
    for (let d = 0; d < nd - 1; d++) base += idx[d] * stride[d];
    if (ls === 1) {
      out.set(src.subarray(base * es, (base + last) * es), o);
      o += last * es;
    } else {
      for (let j = 0; j < last; j++) {
        const s = (base + j * ls) * es;
        for (let b = 0; b < es; b++) out[o++] = src[s + b];
      }
    }
    for (let d = nd - 2; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

function storageEntry(zip: ZipReader, dataDir: string, t: TorchTensor): { entry: string; size: number } {
  const entry = `${dataDir}${t.storage.key}`;
  if (!zip.has(entry)) throw new ConvertError(`storage "${t.storage.key}" is missing from the archive (no entry ${clip(entry)})`);
  try {
    return { entry, size: zip.info(entry).size };
  } catch (e) {
    if (e instanceof ZipError) throw new ConvertError(e.message);
    throw e;
  }
}

async function readTensor(zip: ZipReader, dataDir: string, t: TorchTensor): Promise<Uint8Array> {
  const { storage, shape, stride, offset } = t;
  const dtype = storage.type.dtype;
  if (!dtype) throw new ConvertError(`tensors of type torch.${storage.type.name} cannot be stored in safetensors`);
  const es = DTYPE_SIZE[dtype];
  const n = numel(shape);
  if (n === 0) return new Uint8Array(0);
  const extent = 1 + shape.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
  const { entry, size } = storageEntry(zip, dataDir, t);
  if ((offset + extent) * es > size) {
    throw new ConvertError(
      `tensor view (offset ${offset}, shape ${fmtDims(shape)}, stride ${fmtDims(stride)}) ` +
        `reaches past the end of storage "${storage.key}" (${size} bytes)`,
    );
  }
  const raw = await zip.read(entry, offset * es, (offset + extent) * es);
  return isContiguous(shape, stride) ? raw : gather(raw, shape, stride, es);
}

function toF32(bytes: Uint8Array, from: SafetensorsDType): Float32Array {
  const b = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const n = b.byteLength / DTYPE_SIZE[from];
  switch (from) {
    case 'F32':
      return new Float32Array(b.buffer, b.byteOffset, n);
    case 'F64':
      return Float32Array.from(new Float64Array(b.buffer, b.byteOffset, n));
    case 'F16':
      return f16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(b.buffer, b.byteOffset, n));
    default:
      throw new ConvertError(`cannot convert ${from} as a floating dtype`);
  }
}

/** Casts raw floating bytes between F64/F32/F16/BF16 (round to nearest even). */
export function castFloat(bytes: Uint8Array, from: SafetensorsDType, to: SafetensorsDType): Uint8Array {
  if (from === to) return bytes;
  const f = toF32(bytes, from);
  const view = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (to === 'F32') return view(f);
  if (to === 'F16') return view(f32ToF16(f));
  if (to === 'BF16') return view(f32ToBf16(f));
  throw new ConvertError(`cannot cast to ${to}`);
}

/** Converts a torch checkpoint to safetensors. Nothing is written unless the whole conversion succeeds. */
export async function convertCheckpoint(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if (path.resolve(input) === path.resolve(output)) {
    throw new ConvertError(`output ${output} is the input file; choose another output path`);
  }
  if (opts.dtype && !(opts.dtype in TARGET)) {
    throw new ConvertError(`unknown dtype "${opts.dtype}"; use one of ${Object.keys(TARGET).join(', ')}`);
  }
  const ckpt = await openTorchCheckpoint(input);
  try {
    if (ckpt.tensors.size === 0) {
      const shown = ckpt.skipped.slice(0, 10).join(', ') + (ckpt.skipped.length > 10 ? `, … (${ckpt.skipped.length})` : '');
      throw new ConvertError(
        `${input}: no tensors found: the checkpoint holds only non-tensor entries (${shown || 'none'}). ` +
          'It is not a model state dict; nothing was written',
      );
    }
    const inputBytes = fs.statSync(input).size;
    const maxOutput = MAX_OUTPUT_FACTOR * inputBytes + OUTPUT_SLACK;
    let outputBytes = 0;
    const entries: WriteEntry[] = [];
    const names = new Map<string, string>();
    const mapped = opts.mapKeys?.(new Map([...ckpt.tensors].map(([k, t]) => [k, t.shape])));
    for (const [key, t] of ckpt.tensors) {
      if (mapped && !mapped.has(key)) continue;
      const name = mapped ? mapped.get(key)! : opts.stripPrefix && key.startsWith(opts.stripPrefix) ? key.slice(opts.stripPrefix.length) : key;
      if (!name) throw new ConvertError(`stripping "${opts.stripPrefix}" from "${clip(key)}" leaves an empty name`);
      const clash = names.get(name);
      if (clash !== undefined) {
        const how = mapped ? 'after renaming' : `after stripping "${opts.stripPrefix}"`;
        throw new ConvertError(`"${clip(clash)}" and "${clip(key)}" both become "${clip(name)}" ${how}`);
      }
      names.set(name, key);
      const stored = t.storage.type.dtype;
      if (!stored) throw new ConvertError(`${input}: "${clip(key)}" is a torch.${t.storage.type.name} tensor, which safetensors cannot hold`);
      const dtype = opts.dtype && isFloatDType(stored) ? TARGET[opts.dtype] : stored;
      const n = numel(t.shape);
      const held = Math.floor(ckpt.storageBytes(t) / DTYPE_SIZE[stored]);
      if (n > held && !opts.allowExpandedViews) {
        throw new ConvertError(
          `${input}: "${clip(key)}" is a view of ${n} elements (shape ${fmtDims(t.shape)}, stride ${fmtDims(t.stride)}) ` +
            `of a storage that holds only ${held}: writing it would expand repeated (stride-0 or overlapping) data. ` +
            'Pass --allow-expanded-views (allowExpandedViews) if you trust this checkpoint; nothing was written',
        );
      }
      outputBytes += n * DTYPE_SIZE[dtype];
      if (outputBytes > maxOutput) {
        throw new ConvertError(
          `${input}: the tensors would take at least ${outputBytes} bytes, over ${MAX_OUTPUT_FACTOR}× the ` +
            `checkpoint's ${inputBytes} bytes (+${OUTPUT_SLACK >> 20} MiB); its views repeat data far beyond what ` +
            'it stores. Refusing it; nothing was written',
        );
      }
      entries.push({
        name,
        dtype,
        shape: t.shape,
        bytes: async () => {
          try {
            return castFloat(await ckpt.readTensor(t), stored, dtype);
          } catch (e) {
            throw new ConvertError(`${input}: reading "${key}": ${(e as Error).message}`);
          }
        },
      });
    }
    // Report progress in the order writeSafetensors calls bytes() (sorted by name).
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let index = 0;
    const reported = entries.map((e) => ({
      ...e,
      bytes: async () => {
        const b = await e.bytes();
        opts.onProgress?.({ index: ++index, total: entries.length, name: e.name, bytes: b.byteLength });
        return b;
      },
    }));
    await writeSafetensors(output, reported);
    return { tensors: entries.length, skipped: ckpt.skipped, bytes: fs.statSync(output).size };
  } finally {
    ckpt.close();
  }
}
