import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, f16ToF32 } from '../src/io/safetensors.ts';
import { ConvertError, convertCheckpoint } from '../weights-converter/convert.ts';
import { PickleError, unpickle } from '../weights-converter/unpickler.ts';
import { torchPolicy } from '../weights-converter/torch.ts';
import { startCli, runCli } from './cli/run-cli.ts';
import { diffSafetensors } from '../weights-converter/compare.ts';
import { ZipError, ZipReader } from '../weights-converter/zip.ts';
import { FIXTURES } from './helpers.ts';
import { OP, buildZip, dictPickle, floatCheckpoint, pk, tensorPickle, torchArchive } from './torch-archive.ts';

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
    const ns = Buffer.concat([pk.global('argparse', 'Namespace'), pk.str('id'), pk.ops(OP.TUPLE1, OP.REDUCE)]);
    fs.writeFileSync(input, floatCheckpoint({ w: new Float32Array([1, 2]) }, [['hparams', ns]]));
    const out = path.join(dir, 'out.safetensors');
    const r = await convertCheckpoint(input, out);
    expect(r).toMatchObject({ tensors: 1, skipped: ['hparams'] });
  });

  it('a checkpoint without tensors is an error, not an empty file (#13.10)', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'notensors-'));
    const input = path.join(dir, 'hp.ckpt');
    fs.writeFileSync(input, torchZip('archive', nestedCallPickle('numpy.core.multiarray', '_reconstruct')));
    await expect(convertCheckpoint(input, path.join(dir, 'out.safetensors'))).rejects.toThrow(
      /no tensors found: the checkpoint holds only non-tensor entries \(extra\)/,
    );
    expect(leftovers(dir)).toEqual([]);
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

/** Nested lists `L[i] = [L[i-1], L[i-1]]` (memoized, so each level references the next twice), L[levels] left on the stack. */
function sharedNest(levels: number): Buffer {
  const parts: Buffer[] = [pk.ops(OP.EMPTY_LIST), pk.put(0)];
  for (let i = 1; i <= levels; i++) {
    parts.push(pk.ops(OP.POP, OP.EMPTY_LIST, OP.MARK), pk.get(i - 1), pk.get(i - 1), pk.ops(OP.APPENDS), pk.put(i));
  }
  return Buffer.concat(parts);
}

/** `depth` lists nested by EMPTY_LIST … APPEND (no MARKs, no memo). */
function deepList(depth: number): Buffer {
  return Buffer.concat([Buffer.alloc(depth, OP.EMPTY_LIST), Buffer.alloc(depth - 1, OP.APPEND)]);
}

const ONE = { w: new Float32Array([1, 2, 3, 4]) };

async function convertHostile(name: string, ckpt: Buffer, opts: Parameters<typeof convertCheckpoint>[2] = {}) {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const input = path.join(dir, `${name}.ckpt`);
  fs.writeFileSync(input, ckpt);
  const out = path.join(dir, 'out.safetensors');
  const t0 = performance.now();
  const result = await convertCheckpoint(input, out, opts).then(
    (r) => ({ ok: true as const, r }),
    (e: Error) => ({ ok: false as const, e }),
  );
  return { dir, out, result, ms: performance.now() - t0 };
}

describe('bounded work on hostile pickles (#13.7, #13.9)', () => {
  it('a dict key that is a shared 28-level nested list is named by its type, in milliseconds', async () => {
    const key = sharedNest(28);
    expect(key.length).toBeLessThan(800);
    const { result, ms } = await convertHostile('sharedkey', floatCheckpoint(ONE, [[key, pk.int(1)]]));
    expect(result.ok && result.r).toMatchObject({ tensors: 1, skipped: ['<list>'] });
    expect(ms).toBeLessThan(5000);
  }, 30_000);

  it('200k-deep nested lists (as key and as value) and dicts convert without a stack overflow', async () => {
    const deepDict = Buffer.concat([
      ...Array.from({ length: 200_000 }, () => Buffer.concat([pk.ops(OP.EMPTY_DICT), pk.str('k')])),
      pk.ops(OP.NONE),
      Buffer.alloc(200_000, OP.SETITEM),
    ]);
    const ckpt = floatCheckpoint(ONE, [
      [deepList(200_000), pk.int(1)],
      ['deep_list', deepList(200_000)],
      ['deep_dict', deepDict],
    ]);
    const { result } = await convertHostile('deep', ckpt);
    if (!result.ok) throw result.e;
    expect(result.r.skipped).toEqual(['<list>', 'deep_list', 'deep_dict']);
  });

  it('one APPENDS of 300k items', async () => {
    const items = Buffer.concat([pk.ops(OP.EMPTY_LIST, OP.MARK), Buffer.alloc(300_000, OP.NONE), pk.ops(OP.APPENDS)]);
    const { result } = await convertHostile('appends', floatCheckpoint(ONE, [['many', items]]));
    if (!result.ok) throw result.e;
    expect(result.r.skipped).toEqual(['many']);
  });

  it('long strings from the pickle are capped in names and messages', async () => {
    const longKey = 'k'.repeat(100_000);
    const { result } = await convertHostile('longkey', floatCheckpoint(ONE, [[longKey, pk.int(1)]]));
    if (!result.ok) throw result.e;
    expect(result.r.skipped[0].length).toBeLessThan(300);
    expect(result.r.skipped[0]).toMatch(/^k+… \(100000 chars\)$/);
    const refused = await convertHostile('longglobal', torchZip('a', callPickle(`evil${'x'.repeat(100_000)}`, 'system', 'id')));
    expect(refused.result.ok).toBe(false);
    const msg = (refused.result as { e: Error }).e.message;
    expect(msg).toMatch(/refusing to unpickle global "evilx+… \(100011 chars\)"/);
    expect(msg.length).toBeLessThan(1000);
  });

  it('a callable rebuilding a large shared object over and over runs out of budget', () => {
    // bytearray(<the same 1 MiB bytes>) 200 times: 200 MiB of copies from a 1 MiB pickle.
    const big = Buffer.alloc(1 << 20, 7);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(big.length);
    const call = Buffer.concat([pk.global('builtins', 'bytearray'), pk.get(0), pk.ops(OP.TUPLE1, OP.REDUCE, OP.POP)]);
    const pkl = Buffer.concat([
      pk.proto(),
      pk.ops(0x42), len, big, pk.put(0), pk.ops(OP.POP), // BINBYTES, memo 0
      ...Array.from({ length: 200 }, () => call),
      pk.ops(OP.NONE, OP.STOP),
    ]);
    expect(() => unpickle(pkl, torchPolicy(new Map()))).toThrow(PickleError);
    expect(() => unpickle(pkl, torchPolicy(new Map()))).toThrow(/more than \d+ units of work/);
  });

  // A quadratic LONG4 decode of 1 MiB (a BigInt shifted once per byte) takes minutes, so the test's timeout
  // is the bound; no assertion on time.
  it('a 1 MiB binary LONG4 is read in linear time; decimal ints over 4300 digits are refused', { timeout: 30_000 }, () => {
    const n = 1 << 20;
    const len = Buffer.alloc(4);
    len.writeInt32LE(n);
    const digits = Buffer.alloc(n, 0xff);
    const v = unpickle(Buffer.concat([pk.proto(), pk.ops(0x8b), len, digits, pk.ops(OP.STOP)]), torchPolicy(new Map()));
    expect(v).toBe(-1);
    const text = Buffer.from(`I${'9'.repeat(5000)}\n.`, 'latin1');
    expect(() => unpickle(text, torchPolicy(new Map()))).toThrow(/INT literal of 5000 digits exceeds the 4300-digit limit/);
    expect(unpickle(Buffer.from(`I${'9'.repeat(30)}\n.`, 'latin1'), torchPolicy(new Map()))).toBe(10n ** 30n - 1n);
  });
});

/** A checkpoint whose only tensor `w` views a storage of `storage` floats with the given shape/stride. */
function viewCheckpoint(storage: number, shape: number[], stride: number[]): Buffer {
  const data = new Float32Array(storage).map((_, i) => i + 1);
  return torchArchive(dictPickle([['w', tensorPickle({ key: '0', shape, stride }, storage)]]), {
    0: new Uint8Array(data.buffer),
  });
}

describe('expanded views and the output cap (#13.8)', () => {
  it('a stride-0 view of 4 floats as 4096×4096 is refused before anything is written', async () => {
    const { dir, result } = await convertHostile('stride0', viewCheckpoint(4, [4096, 4096], [0, 0]));
    expect(result.ok).toBe(false);
    const e = (result as { e: Error }).e;
    expect(e).toBeInstanceOf(ConvertError);
    expect(e.message).toMatch(/"w" is a view of 16777216 elements \(shape \[4096, 4096\], stride \[0, 0\]\) of a storage that holds only 4.*--allow-expanded-views/);
    expect(leftovers(dir)).toEqual([]);
  });

  it('allowExpandedViews materialises a modest expansion, but never past the output cap', async () => {
    const small = await convertHostile('expand', viewCheckpoint(4, [3, 4], [0, 1]), { allowExpandedViews: true });
    if (!small.result.ok) throw small.result.e;
    const st = SafetensorsFile.open(small.out);
    expect(Array.from(st.readHost('w').data)).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
    st.close();
    const huge = await convertHostile('expand-huge', viewCheckpoint(4, [16384, 16384], [0, 0]), { allowExpandedViews: true });
    expect(huge.result.ok).toBe(false);
    expect((huge.result as { e: Error }).e.message).toMatch(/would take at least 1073741824 bytes, over 8× the checkpoint's \d+ bytes/);
    expect(leftovers(huge.dir)).toEqual([]);
  });

  it('a broadcast buffer that fits its storage ([1, n] with stride [0, 1]) needs no flag', async () => {
    const { out, result } = await convertHostile('bcast', viewCheckpoint(4, [1, 4], [0, 1]));
    if (!result.ok) throw result.e;
    const st = SafetensorsFile.open(out);
    expect(Array.from(st.readHost('w').data)).toEqual([1, 2, 3, 4]);
    st.close();
  });

  it('many full views of one storage are capped at a multiple of the input size', async () => {
    const n = 1 << 16;
    const data = new Float32Array(n);
    const items = Array.from({ length: 40 }, (_, i): [string, Buffer] => [`t${i}`, tensorPickle({ key: '0', shape: [n], stride: [1] }, n)]);
    const ckpt = torchArchive(dictPickle(items), { 0: new Uint8Array(data.buffer) });
    const { dir, result } = await convertHostile('tied', ckpt);
    expect(result.ok).toBe(false);
    expect((result as { e: Error }).e.message).toMatch(/over 8× the checkpoint's/);
    expect(leftovers(dir)).toEqual([]);
    // Tied weights in sane numbers (3 views of one storage) are fine.
    const few = await convertHostile('tied3', torchArchive(dictPickle(items.slice(0, 3)), { 0: new Uint8Array(data.buffer) }));
    if (!few.result.ok) throw few.result.e;
    expect(few.result.r.tensors).toBe(3);
  });
});

describe('audiox convert (CLI)', () => {
  it('--allow-expanded-views lets a stride-0 view through', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'cli-expand-'));
    const input = path.join(dir, 'x.ckpt');
    fs.writeFileSync(input, viewCheckpoint(4, [3, 4], [0, 1]));
    const out = path.join(dir, 'out.safetensors');
    const refused = await runCli(['convert', input, out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds only 4.*--allow-expanded-views/);
    expect(fs.existsSync(out)).toBe(false);
    const ok = await runCli(['convert', input, out, '--allow-expanded-views']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(fs.existsSync(out)).toBe(true);
  });

  it('Ctrl-C during a conversion exits 130 and leaves no temp file (#13.11)', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'cli-sigint-'));
    const input = path.join(dir, 'big.ckpt');
    const tensors: Record<string, Float32Array> = {};
    for (let i = 0; i < 4000; i++) tensors[`layer.${i}.weight`] = new Float32Array(2048).fill(i);
    fs.writeFileSync(input, floatCheckpoint(tensors));
    const out = path.join(dir, 'out.safetensors');
    const { child, done } = startCli(['convert', input, out, '--dtype', 'f16']);
    const deadline = Date.now() + 60_000;
    let tmpSeen = '';
    while (!tmpSeen && Date.now() < deadline && child.exitCode === null) {
      tmpSeen = fs.readdirSync(dir).find((f) => f.includes('.tmp-')) ?? '';
      if (!tmpSeen) await new Promise((r) => setTimeout(r, 3));
    }
    expect(tmpSeen, 'the conversion finished before it could be interrupted').not.toBe('');
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted/);
    expect(fs.readdirSync(dir)).toEqual(['big.ckpt']);
  }, 120_000);
});

describe('tensor rebuild arguments', () => {
  it('a negative storage offset is refused', async () => {
    const ckpt = torchArchive(dictPickle([['w', tensorPickle({ key: '0', offset: -1, shape: [1], stride: [1] }, 4)]]), {
      0: new Uint8Array(16),
    });
    const { result } = await convertHostile('negoffset', ckpt);
    expect(result.ok).toBe(false);
    expect((result as { e: Error }).e.message).toMatch(/negative storage offset -1/);
  });

  it('_rebuild_from_type_v2 only wraps tensor rebuilders (anything else would escape the work budget)', () => {
    const pkl = Buffer.concat([
      pk.proto(),
      pk.global('torch._tensor', '_rebuild_from_type_v2'),
      pk.tuple(pk.global('builtins', 'bytearray'), pk.ops(OP.NONE), pk.tuple(pk.str('x')), pk.ops(OP.EMPTY_DICT)),
      pk.ops(OP.REDUCE, OP.STOP),
    ]);
    expect(() => unpickle(pkl, torchPolicy(new Map()))).toThrow(/expected a torch\._utils\._rebuild_\* function/);
  });

  it('a data.pkl over the 1 GiB index limit is refused before it is read', async () => {
    // A sparse file: a stored 1.1 GiB entry costs no disk and, refused up front, no memory.
    const f = path.join(tmp, 'hugepkl.ckpt');
    const name = Buffer.from('a/data.pkl');
    const size = 1_181_116_006;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(size, 18);
    lh.writeUInt32LE(size, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(size, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    const cdStart = 30 + name.length + size;
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(1, 8);
    eocd.writeUInt16LE(1, 10);
    eocd.writeUInt32LE(46 + name.length, 12);
    eocd.writeUInt32LE(cdStart, 16);
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, Buffer.concat([lh, name]), 0, 30 + name.length, 0);
    fs.writeSync(fd, Buffer.concat([ch, name, eocd]), 0, 46 + name.length + 22, cdStart);
    fs.closeSync(fd);
    try {
      await expect(convertCheckpoint(f, path.join(tmp, 'hugepkl.safetensors'))).rejects.toThrow(
        /a\/data\.pkl is 1181116006 bytes, over the 1024 MiB limit/,
      );
    } finally {
      fs.rmSync(f);
    }
  });
});

describe('zip reader on hostile archives (found by the fuzzer)', () => {
  it('a zip64 locator pointing past 2^53 is a ZipError, not an uncaught exception', async () => {
    const zip = buildZip([['a/data.pkl', Buffer.from([0x80, 2, 0x7d, 0x2e])]]);
    const eocd = zip.length - 22;
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(2n ** 53n + 4096n, 8);
    loc.writeUInt32LE(1, 16);
    const f = path.join(tmp, 'zip64.zip');
    fs.writeFileSync(f, Buffer.concat([zip.subarray(0, eocd), loc, zip.subarray(eocd)]));
    await expect(ZipReader.open(f)).rejects.toThrow(ZipError);
    await expect(ZipReader.open(f)).rejects.toThrow(/zip64\.zip: not a readable zip archive/);
  }, 10_000);

  it('a deflated entry claiming more than DEFLATE can expand is refused before allocating', async () => {
    const zip = buildZip([['a/data.pkl', Buffer.alloc(64)]], true);
    const cd = zip.readUInt32LE(zip.length - 22 + 16);
    zip.writeUInt32LE(0xfffffff0, 22); // local header: uncompressed size
    zip.writeUInt32LE(0xfffffff0, cd + 24); // central directory: uncompressed size
    const f = path.join(tmp, 'bomb.zip');
    fs.writeFileSync(f, zip);
    const z = await ZipReader.open(f);
    try {
      await expect(z.read('a/data.pkl')).rejects.toThrow(/claims 4294967280 bytes from \d+ compressed, more than DEFLATE can expand/);
    } finally {
      z.close();
    }
  });
});
