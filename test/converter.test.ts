import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, f16ToF32 } from '../src/io/safetensors.ts';
import { convertCheckpoint } from '../weights-converter/convert.ts';
import { diffSafetensors } from '../weights-converter/compare.ts';
import { ZipReader } from '../weights-converter/zip.ts';
import { FIXTURES } from './helpers.ts';

const DIR = path.join(FIXTURES, 'convert');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-converter-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function expectIdentical(actualPath: string, expectedPath: string): void {
  const a = SafetensorsFile.open(actualPath);
  const e = SafetensorsFile.open(expectedPath);
  try {
    expect(diffSafetensors(a, e)).toEqual([]);
    expect(a.keys().length).toBe(e.keys().length);
  } finally {
    a.close();
    e.close();
  }
}

// ---- a minimal zip writer (stored or deflated entries) for hand-made torch archives ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function buildZip(files: [string, Uint8Array][], deflate = false): Buffer {
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

/** Protocol-2 pickle: GLOBAL module.name, REDUCE with one string argument, STOP. */
function callPickle(module: string, name: string, arg: string): Uint8Array {
  const s = Buffer.from(arg);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(s.length);
  return Buffer.concat([
    Buffer.from([0x80, 0x02]),
    Buffer.from(`c${module}\n${name}\n`, 'latin1'),
    Buffer.from([0x58]), len, s, // BINUNICODE
    Buffer.from([0x85, 0x52, 0x2e]), // TUPLE1 REDUCE STOP
  ]);
}

/** {'state_dict': {}, 'extra': <call>} — the hostile call hidden among Lightning-style extras. */
function nestedCallPickle(module: string, name: string): Uint8Array {
  const str = (t: string) => {
    const b = Buffer.from(t);
    return Buffer.concat([Buffer.from([0x8c, b.length]), b]); // SHORT_BINUNICODE
  };
  return Buffer.concat([
    Buffer.from([0x80, 0x02, 0x7d, 0x28]), // PROTO 2, EMPTY_DICT, MARK
    str('state_dict'), Buffer.from([0x7d]),
    str('extra'), Buffer.from(`c${module}\n${name}\n`, 'latin1'), str('id'), Buffer.from([0x85, 0x52]),
    Buffer.from([0x75, 0x2e]), // SETITEMS STOP
  ]);
}

function torchZip(archive: string, pkl: Uint8Array): Buffer {
  return buildZip([
    [`${archive}/data.pkl`, pkl],
    [`${archive}/version`, Buffer.from('3\n')],
  ]);
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes('out'));
}

describe('fixture pairs reproduce exactly', () => {
  const pairs = fs
    .readdirSync(DIR)
    .filter((f) => /\.(ckpt|pth)$/.test(f))
    .map((f) => [f, f.replace(/\.(ckpt|pth)$/, '.safetensors')] as const);

  it('finds all 7 pairs', () => {
    expect(pairs.length).toBe(7);
  });

  for (const [input, expected] of pairs) {
    it(input, async () => {
      const out = path.join(tmp, expected);
      const progress: number[] = [];
      const r = await convertCheckpoint(path.join(DIR, input), out, { onProgress: (p) => progress.push(p.index) });
      expectIdentical(out, path.join(DIR, expected));
      expect(r.tensors).toBe(progress.length);
      expect(progress).toEqual(Array.from({ length: r.tensors }, (_, i) => i + 1));
      expect(r.bytes).toBe(fs.statSync(out).size);
    });
  }

  it('lists skipped non-tensor entries', async () => {
    const a = await convertCheckpoint(path.join(DIR, 'plain_with_extras.pth'), path.join(tmp, 'pwe.safetensors'));
    expect(a.skipped.sort()).toEqual(['config', 'name', 'num_updates']);
    const b = await convertCheckpoint(path.join(DIR, 'lightning.ckpt'), path.join(tmp, 'l.safetensors'));
    expect(b.skipped).toEqual(expect.arrayContaining(['epoch', 'global_step', 'hyper_parameters', 'optimizer_states']));
    expect(b.skipped).not.toContain('state_dict');
  });

  it('reads DEFLATE-compressed entries too', async () => {
    const src = await ZipReader.open(path.join(DIR, 'views.pth'));
    const files: [string, Uint8Array][] = [];
    for (const n of src.names()) files.push([n, await src.read(n)]);
    src.close();
    const zipped = path.join(tmp, 'views_deflated.pth');
    fs.writeFileSync(zipped, buildZip(files, true));
    const out = path.join(tmp, 'views_deflated.safetensors');
    await convertCheckpoint(zipped, out);
    expectIdentical(out, path.join(DIR, 'views.safetensors'));
  });
});

describe('--dtype', () => {
  // The fp16/bf16 fixtures are exact casts of the fp32 model (checked: round-to-nearest-even).
  it('f16 of the fp32 model equals model_fp16', async () => {
    const out = path.join(tmp, 'm16.safetensors');
    await convertCheckpoint(path.join(DIR, 'model.ckpt'), out, { dtype: 'f16' });
    expectIdentical(out, path.join(DIR, 'model_fp16.safetensors'));
  });

  it('bf16 of the fp32 model equals model_bf16', async () => {
    const out = path.join(tmp, 'mbf16.safetensors');
    await convertCheckpoint(path.join(DIR, 'model.ckpt'), out, { dtype: 'bf16' });
    expectIdentical(out, path.join(DIR, 'model_bf16.safetensors'));
  });

  it('f32 widens f16 exactly', async () => {
    const out = path.join(tmp, 'm32.safetensors');
    await convertCheckpoint(path.join(DIR, 'model_fp16.ckpt'), out, { dtype: 'f32' });
    const a = SafetensorsFile.open(out);
    const e = SafetensorsFile.open(path.join(DIR, 'model_fp16.safetensors'));
    try {
      for (const k of e.keys()) {
        expect(a.entry(k).dtype).toBe('F32');
        const eb = e.readBytes(k);
        const want = f16ToF32(new Uint16Array(eb.buffer, eb.byteOffset, eb.byteLength / 2));
        const ab = a.readBytes(k);
        expect(new Float32Array(ab.buffer, ab.byteOffset, ab.byteLength / 4)).toEqual(want);
      }
    } finally {
      a.close();
      e.close();
    }
  });

  it('leaves integer and bool tensors alone', async () => {
    const out = path.join(tmp, 'views16.safetensors');
    await convertCheckpoint(path.join(DIR, 'views.pth'), out, { dtype: 'f16' });
    const a = SafetensorsFile.open(out);
    const e = SafetensorsFile.open(path.join(DIR, 'views.safetensors'));
    try {
      for (const k of e.keys()) {
        const want = ['F32', 'F16'].includes(e.entry(k).dtype) ? 'F16' : e.entry(k).dtype;
        expect(a.entry(k).dtype, k).toBe(want);
        if (want === e.entry(k).dtype) expect(a.readBytes(k)).toEqual(e.readBytes(k));
      }
    } finally {
      a.close();
      e.close();
    }
  });
});

describe('--strip-prefix', () => {
  it('removes the prefix where present and keeps other names', async () => {
    const out = path.join(tmp, 'strip.safetensors');
    await convertCheckpoint(path.join(DIR, 'lightning.ckpt'), out, { stripPrefix: 'conditioner.' });
    const a = SafetensorsFile.open(out);
    const e = SafetensorsFile.open(path.join(DIR, 'lightning.safetensors'));
    try {
      expect(a.keys().length).toBe(e.keys().length);
      for (const k of e.keys()) {
        const name = k.startsWith('conditioner.') ? k.slice('conditioner.'.length) : k;
        expect(a.has(name), name).toBe(true);
        expect(a.readBytes(name)).toEqual(e.readBytes(k));
      }
    } finally {
      a.close();
      e.close();
    }
  });
});

describe('refuses hostile or broken input and writes nothing', () => {
  for (const [module, name] of [
    ['os', 'system'],
    ['posix', 'system'],
    ['subprocess', 'check_output'],
    ['builtins', 'eval'],
    ['__builtin__', 'getattr'],
    ['torch.storage', '_load_from_bytes'],
  ]) {
    it(`${module}.${name} via GLOBAL + REDUCE`, async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'hostile-'));
      const input = path.join(dir, 'evil.ckpt');
      fs.writeFileSync(input, torchZip('evil', callPickle(module, name, 'touch /tmp/pwned')));
      const out = path.join(dir, 'out.safetensors');
      await expect(convertCheckpoint(input, out)).rejects.toThrow(`"${module}.${name}"`);
      expect(leftovers(dir)).toEqual([]);
    });
  }

  it('a hostile global hidden in a non-tensor entry is still refused', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'hostile-'));
    const input = path.join(dir, 'evil.ckpt');
    fs.writeFileSync(input, torchZip('archive', nestedCallPickle('posix', 'system')));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/refusing.*"posix\.system"/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('unsupported tensor rebuild functions are refused rather than skipped', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'sparse-'));
    const input = path.join(dir, 'sparse.pth');
    fs.writeFileSync(input, torchZip('archive', callPickle('torch._utils', '_rebuild_sparse_tensor', 'x')));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/"torch\._utils\._rebuild_sparse_tensor".*not supported/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('unknown harmless classes in extras become inert placeholders', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'opaque-'));
    const input = path.join(dir, 'hp.ckpt');
    fs.writeFileSync(input, torchZip('archive', nestedCallPickle('argparse', 'Namespace')));
    const out = path.join(dir, 'out.safetensors');
    const r = await convertCheckpoint(input, out);
    expect(r).toMatchObject({ tensors: 0, skipped: ['extra'] });
  });

  it('a truncated checkpoint gives a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'trunc-'));
    const input = path.join(dir, 'model.ckpt');
    const full = fs.readFileSync(path.join(DIR, 'model.ckpt'));
    fs.writeFileSync(input, full.subarray(0, Math.floor(full.length / 2)));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/truncated/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a non-zip file gives a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'nonzip-'));
    const input = path.join(dir, 'model.ckpt');
    fs.writeFileSync(input, '<html>404 Not Found</html>');
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/not a PyTorch zip checkpoint/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a legacy (pre-1.6) pickle checkpoint is reported as such', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'legacy-'));
    const input = path.join(dir, 'old.pth');
    fs.writeFileSync(input, Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/legacy/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('a missing storage entry fails without output', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'nostorage-'));
    const src = await ZipReader.open(path.join(DIR, 'views.pth'));
    const files: [string, Uint8Array][] = [];
    for (const n of src.names()) if (!n.endsWith('/data/0')) files.push([n, await src.read(n)]);
    src.close();
    const input = path.join(dir, 'views.pth');
    fs.writeFileSync(input, buildZip(files));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(/storage "0" is missing/);
    expect(leftovers(dir)).toEqual([]);
  });
});
