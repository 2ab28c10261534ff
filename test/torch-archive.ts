// Builders for hand-made torch.save archives in tests: a minimal zip writer and pickle fragments.
// Hostile checkpoints are generated with these at test time; none are committed.
import zlib from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip of stored (or deflated) entries, as torch.save writes them. */
export function buildZip(files: [string, Uint8Array][], deflate = false): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of files) {
    const nameBuf = Buffer.from(name);
    const body = deflate ? zlib.deflateRawSync(data) : Buffer.from(data);
    const crc = crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(deflate ? 8 : 0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(nameBuf.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(deflate ? 8 : 0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(nameBuf.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, nameBuf, body);
    centrals.push(ch, nameBuf);
    offset += lh.length + nameBuf.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/** Pickle opcodes used by the builders. */
export const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  NONE: 0x4e,
  NEWFALSE: 0x89,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  EMPTY_TUPLE: 0x29,
  APPEND: 0x61,
  APPENDS: 0x65,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  REDUCE: 0x52,
  BINPERSID: 0x51,
} as const;

export const pk = {
  proto: (v = 2): Buffer => Buffer.from([0x80, v]),
  ops: (...codes: number[]): Buffer => Buffer.from(codes),
  str(s: string): Buffer {
    const b = Buffer.from(s);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return Buffer.concat([Buffer.from([0x58]), len, b]); // BINUNICODE
  },
  int(n: number): Buffer {
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(n, 1);
    return b;
  },
  global: (module: string, name: string): Buffer => Buffer.from(`c${module}\n${name}\n`, 'latin1'),
  put(i: number): Buffer {
    const b = Buffer.alloc(5);
    b[0] = 0x72; // LONG_BINPUT
    b.writeUInt32LE(i, 1);
    return b;
  },
  get(i: number): Buffer {
    const b = Buffer.alloc(5);
    b[0] = 0x6a; // LONG_BINGET
    b.writeUInt32LE(i, 1);
    return b;
  },
  tuple: (...items: Buffer[]): Buffer => Buffer.concat([Buffer.from([OP.MARK]), ...items, Buffer.from([OP.TUPLE])]),
};

export interface TensorSpec {
  /** Storage key (the file name under `<archive>/data/`). */
  key: string;
  /** Storage class, e.g. FloatStorage. */
  storage?: string;
  /** Element count claimed by the persistent id (default: the data's float32 count). */
  numel?: number;
  offset?: number;
  shape: number[];
  stride: number[];
}

/** `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`. */
export function tensorPickle(t: TensorSpec, storageNumel: number): Buffer {
  const persid = pk.tuple(
    pk.str('storage'),
    pk.global('torch', t.storage ?? 'FloatStorage'),
    pk.str(t.key),
    pk.str('cpu'),
    pk.int(t.numel ?? storageNumel),
  );
  return Buffer.concat([
    pk.global('torch._utils', '_rebuild_tensor_v2'),
    pk.tuple(
      persid,
      pk.ops(OP.BINPERSID),
      pk.int(t.offset ?? 0),
      pk.tuple(...t.shape.map(pk.int)),
      pk.tuple(...t.stride.map(pk.int)),
      pk.ops(OP.NEWFALSE),
      pk.global('collections', 'OrderedDict'),
      pk.ops(OP.EMPTY_TUPLE, OP.REDUCE),
    ),
    pk.ops(OP.REDUCE),
  ]);
}

/** A top-level dict pickle `{key: <value pickle>, ...}`. */
export function dictPickle(items: [string | Buffer, Buffer][]): Buffer {
  return Buffer.concat([
    pk.proto(),
    pk.ops(OP.EMPTY_DICT, OP.MARK),
    ...items.flatMap(([k, v]) => [typeof k === 'string' ? pk.str(k) : k, v]),
    pk.ops(OP.SETITEMS, OP.STOP),
  ]);
}

/** A torch.save zip: `<archive>/data.pkl`, the storages under `<archive>/data/`, byteorder and version. */
export function torchArchive(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, archive = 'archive'): Buffer {
  return buildZip([
    [`${archive}/data.pkl`, pkl],
    [`${archive}/byteorder`, Buffer.from('little')],
    ...Object.entries(storages).map(([k, v]): [string, Uint8Array] => [`${archive}/data/${k}`, v]),
    [`${archive}/version`, Buffer.from('3\n')],
  ]);
}

/** A checkpoint of float32 tensors, each with its own storage, plus extra (non-tensor) entries. */
export function floatCheckpoint(tensors: Record<string, Float32Array>, extras: [string | Buffer, Buffer][] = []): Buffer {
  const storages: Record<string, Uint8Array> = {};
  const items: [string | Buffer, Buffer][] = [];
  let i = 0;
  for (const [name, data] of Object.entries(tensors)) {
    const key = String(i++);
    storages[key] = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    items.push([name, tensorPickle({ key, shape: [data.length], stride: [1] }, data.length)]);
  }
  return torchArchive(dictPickle([...items, ...extras]), storages);
}
