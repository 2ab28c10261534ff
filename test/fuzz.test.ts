// Property-based fuzzing of the readers that take untrusted bytes: the safetensors header parser,
// the unpickler and the zip reader (plus the whole converter on mutated checkpoints). Every input
// must either parse or throw our own error type, quickly and without blowing up memory — never a
// RangeError, a stack overflow, a TypeError or a hang. Fixed seeds: a failure prints its seed and
// counterexample and reproduces.
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError, SafetensorsFile, parseSafetensorsHeader, writeSafetensors } from '../src/io/safetensors.ts';
import { ConvertError, convertCheckpoint } from '../weights-converter/convert.ts';
import { torchPolicy } from '../weights-converter/torch.ts';
import { PickleError, unpickle } from '../weights-converter/unpickler.ts';
import { ZipError, ZipReader } from '../weights-converter/zip.ts';
import { FIXTURES } from './helpers.ts';
import { OP, buildZip, floatCheckpoint, pk } from './torch-archive.ts';

// AUDIOX_FUZZ_SEED / AUDIOX_FUZZ_RUNS (a multiplier) explore further; the suite always uses the fixed ones.
const SEED = Number(process.env.AUDIOX_FUZZ_SEED ?? 1313);
const RUNS = Number(process.env.AUDIOX_FUZZ_RUNS ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * RUNS));
const CONVERT = path.join(FIXTURES, 'convert');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-fuzz-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An async parse that has not settled after this long is a hang (not a speed bound: no test asserts on time). */
const HANG_MS = 5000;
/** Heap growth allowed over a whole property. */
const MAX_HEAP_GROWTH = 512 << 20;

type ErrorClass = new (...args: never[]) => Error;

/** Our errors must be of an allowed class, with a bounded message that says something (no NaN/undefined/[object …]). */
function checkError(e: unknown, allowed: ErrorClass[]): void {
  if (!allowed.some((c) => e instanceof c)) throw e;
  const msg = (e as Error).message;
  expect(msg.length).toBeLessThan(2000);
  expect(msg).not.toMatch(/\bNaN\b|\bundefined\b|\[object /);
}

/** Runs `fn`; it must return or throw one of `allowed`. */
function expectContained(fn: () => unknown, allowed: ErrorClass[]): void {
  try {
    fn();
  } catch (e) {
    checkError(e, allowed);
  }
}

class Hang extends Error {}

async function expectContainedAsync(fn: () => Promise<unknown>, allowed: ErrorClass[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Hang(`no result after ${HANG_MS} ms (a hang)`)), HANG_MS);
  });
  try {
    await Promise.race([fn(), hang]);
  } catch (e) {
    if (e instanceof Hang) throw e;
    checkError(e, allowed);
  } finally {
    clearTimeout(timer);
  }
}

/** Accepted entries tile [0, dataLen) exactly. */
function expectTiling(entries: Map<string, { offsets: [number, number] }>, dataLen: number): void {
  const spans = [...entries.values()].map((e) => e.offsets).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let pos = 0;
  for (const [b, e] of spans) {
    expect(b).toBe(pos);
    pos = e;
  }
  expect(pos).toBe(dataLen);
}

function heapBound<T>(fn: () => T): T {
  const before = process.memoryUsage().heapUsed;
  const r = fn();
  expect(process.memoryUsage().heapUsed - before).toBeLessThan(MAX_HEAP_GROWTH);
  return r;
}

// ---- mutations of a valid input ----

const INTERESTING = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x2e, 0x28, 0x5d, 0x7d, 0x22, 0x5b, 0x7b, 0x30, 0x39];

type Mutation =
  | { kind: 'set'; pos: number; byte: number }
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'delete'; pos: number; len: number }
  | { kind: 'truncate'; pos: number }
  | { kind: 'duplicate'; pos: number; len: number };

const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...INTERESTING));
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), pos: fc.nat(), byte: byteArb }),
  fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant('truncate' as const), pos: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }),
);

function mutate(base: Uint8Array, muts: Mutation[], from = 0): Buffer {
  let b = Buffer.from(base);
  for (const m of muts) {
    if (b.length <= from) break;
    const p = from + (m.pos % (b.length - from));
    switch (m.kind) {
      case 'set':
        b[p] = m.byte;
        break;
      case 'flip':
        b[p] ^= 1 << m.bit;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, p), m.bytes, b.subarray(p)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, p), b.subarray(p + m.len)]);
        break;
      case 'truncate':
        b = b.subarray(0, p);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, p + m.len), b.subarray(p)]);
        break;
    }
  }
  return b;
}

const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 6 });
/** Mutations that keep every offset in place (so a zip's structure mostly survives them). */
const inPlaceMutationsArb = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('set' as const), pos: fc.nat(), byte: byteArb }),
    fc.record({ kind: fc.constant('flip' as const), pos: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  ),
  { minLength: 1, maxLength: 4 },
);

// ---- safetensors ----

const DTYPES = ['F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F64'];
const WEIRD_KEYS = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf', '__metadata__', ''];

const dimArb = fc.oneof(
  fc.integer({ min: 0, max: 8 }),
  fc.integer({ min: -2, max: 2 ** 40 }),
  fc.constantFrom(1.5, -0, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1e308),
);
const offsetArb = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(-1, 0.5, 2 ** 53, 1e300));
const entryArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.constantFrom(...WEIRD_KEYS), fc.string()),
    shape: fc.oneof(fc.array(dimArb, { maxLength: 5 }), fc.array(fc.constant(1), { minLength: 60, maxLength: 70 })),
    data_offsets: fc.oneof(fc.tuple(offsetArb, offsetArb), fc.array(offsetArb, { maxLength: 3 })),
  }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const headerArb = fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...WEIRD_KEYS)), entryArb, { maxKeys: 6 });

describe('fuzz: safetensors header parser', () => {
  it('structured random headers parse or throw SafetensorsError', () => {
    heapBound(() =>
      fc.assert(
        fc.property(headerArb, fc.integer({ min: 0, max: 128 }), (header, dataLen) => {
          expectContained(() => {
            const { entries } = parseSafetensorsHeader(Buffer.from(JSON.stringify(header)), dataLen, 'h');
            expectTiling(entries, dataLen);
          }, [SafetensorsError]);
        }),
        { seed: SEED, numRuns: runs(1000) },
      ),
    );
  });

  it('arbitrary JSON and arbitrary bytes parse or throw SafetensorsError', () => {
    heapBound(() =>
      fc.assert(
        fc.property(
          fc.oneof(fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), fc.uint8Array({ maxLength: 256 })),
          (bytes) => expectContained(() => parseSafetensorsHeader(bytes, 16, 'h'), [SafetensorsError]),
        ),
        { seed: SEED, numRuns: runs(400) },
      ),
    );
  });

  it('mutated valid headers parse or throw SafetensorsError; what parses is consistent', async () => {
    const p = path.join(dir, 'base.safetensors');
    await writeSafetensors(
      p,
      [
        { name: 'a', dtype: 'F32', shape: [2, 2], bytes: () => new Uint8Array(16) },
        { name: 'b', dtype: 'F16', shape: [3], bytes: () => new Uint8Array(6) },
        { name: 'e', dtype: 'I64', shape: [0], bytes: () => new Uint8Array(0) },
      ],
      { note: 'fuzz' },
    );
    const file = fs.readFileSync(p);
    const hl = Number(file.readBigUInt64LE(0));
    const header = file.subarray(8, 8 + hl);
    const dataLen = file.length - 8 - hl;
    heapBound(() =>
      fc.assert(
        fc.property(mutationsArb, (muts) => {
          expectContained(() => {
            const { entries } = parseSafetensorsHeader(mutate(header, muts), dataLen, 'h');
            expectTiling(entries, dataLen);
          }, [SafetensorsError]);
        }),
        { seed: SEED, numRuns: runs(800) },
      ),
    );
  });

  it('mutated whole files open or throw SafetensorsError (length prefix included)', () => {
    const src = fs.readFileSync(path.join(CONVERT, 'views.safetensors'));
    const f = path.join(dir, 'mut.safetensors');
    fc.assert(
      fc.property(mutationsArb, (muts) => {
        fs.writeFileSync(f, mutate(src, muts));
        expectContained(() => {
          const st = SafetensorsFile.open(f);
          try {
            for (const k of st.keys()) st.readBytes(k);
          } finally {
            st.close();
          }
        }, [SafetensorsError]);
      }),
      { seed: SEED, numRuns: runs(200) },
    );
  });
});

// ---- unpickler ----

const ARGLESS_OPS = [
  OP.MARK, OP.STOP, OP.POP, 0x31, 0x32, OP.NONE, 0x88, OP.NEWFALSE, OP.EMPTY_LIST, 0x6c, OP.APPEND, OP.APPENDS,
  OP.EMPTY_TUPLE, OP.TUPLE, OP.TUPLE1, OP.TUPLE2, 0x87, OP.EMPTY_DICT, 0x64, OP.SETITEM, OP.SETITEMS, 0x8f, 0x90,
  0x91, OP.REDUCE, 0x81, 0x92, 0x62, OP.BINPERSID, 0x94, 0x93,
];
const GLOBALS: [string, string][] = [
  ['torch._utils', '_rebuild_tensor_v2'],
  ['torch._utils', '_rebuild_parameter'],
  ['torch._tensor', '_rebuild_from_type_v2'],
  ['collections', 'OrderedDict'],
  ['torch', 'FloatStorage'],
  ['torch', 'HalfStorage'],
  ['torch', 'ComplexFloatStorage'],
  ['torch', 'Size'],
  ['torch', 'float32'],
  ['builtins', 'set'],
  ['builtins', 'bytearray'],
  ['_codecs', 'encode'],
  ['argparse', 'Namespace'],
  ['os', 'system'],
  ['torch.storage', '_load_from_bytes'],
];

function withLen(op: number, lenBytes: number, body: Uint8Array, signed = false): Buffer {
  const len = Buffer.alloc(lenBytes);
  if (lenBytes === 1) len[0] = body.length;
  else if (lenBytes === 4) (signed ? len.writeInt32LE(body.length) : len.writeUInt32LE(body.length));
  else len.writeBigUInt64LE(BigInt(body.length));
  return Buffer.concat([Buffer.from([op]), len, body]);
}

const chunkArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...ARGLESS_OPS).map((b) => Buffer.from([b])) },
  { weight: 2, arbitrary: fc.integer().map(pk.int) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }).map((n) => Buffer.from([0x4b, n])) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }).map((n) => Buffer.from([0x4d, n & 255, n >> 8])) },
  { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('storage', 'cpu', '0', 'state_dict', 'latin1')).map(pk.str) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => withLen(0x8c, 1, Buffer.from(s).subarray(0, 255))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => withLen(0x8a, 1, b)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => withLen(0x8b, 4, b, true)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => withLen(0x43, 1, b)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map((b) => withLen(0x8e, 8, b)) },
  { weight: 1, arbitrary: fc.double().map((d) => Buffer.concat([Buffer.from([0x47]), Buffer.from(new Float64Array([d]).buffer).reverse()])) },
  { weight: 1, arbitrary: fc.stringMatching(/^-?\d{0,30}$/).map((s) => Buffer.from(`I${s}\n`, 'latin1')) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 6 }).map(pk.get) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 6 }).map(pk.put) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 }).map((n) => Buffer.from([0x68, n])) },
  { weight: 3, arbitrary: fc.constantFrom(...GLOBALS).map(([m, n]) => pk.global(m, n)) },
  { weight: 1, arbitrary: fc.constant(Buffer.from([0x80, 0x02])) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b)) },
);
const programArb = fc.array(chunkArb, { maxLength: 60 }).map((cs) => Buffer.concat([pk.proto(), ...cs, pk.ops(OP.STOP)]));

async function fixturePickles(): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const f of ['views.pth', 'plain_with_extras.pth', 'lightning.ckpt']) {
    const z = await ZipReader.open(path.join(CONVERT, f));
    const name = z.names().find((n) => n.endsWith('/data.pkl'))!;
    out.push(await z.read(name));
    z.close();
  }
  return out;
}

describe('fuzz: unpickler', () => {
  const run = (bytes: Uint8Array) => expectContained(() => unpickle(bytes, torchPolicy(new Map())), [PickleError]);

  it('random bytes return or throw PickleError', () => {
    heapBound(() =>
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 128 }), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([pk.proto(), b]))), run),
        { seed: SEED, numRuns: runs(1000) },
      ),
    );
  });

  it('random opcode programs (real opcodes, real globals, wrong arguments) return or throw PickleError', () => {
    heapBound(() => fc.assert(fc.property(programArb, run), { seed: SEED, numRuns: runs(4000) }));
  });

  it('mutated torch.save pickles return or throw PickleError', async () => {
    const bases = await fixturePickles();
    heapBound(() =>
      fc.assert(
        fc.property(fc.constantFrom(...bases), mutationsArb, (base, muts) => run(mutate(base, muts))),
        { seed: SEED, numRuns: runs(1500) },
      ),
    );
  });
});

// ---- zip reader and the whole converter ----

async function entriesOf(zipBytes: Buffer): Promise<[string, Uint8Array][]> {
  const f = path.join(dir, `base-${zipBytes.length}.zip`);
  fs.writeFileSync(f, zipBytes);
  const z = await ZipReader.open(f);
  const out: [string, Uint8Array][] = [];
  for (const n of z.names()) out.push([n, await z.read(n)]);
  z.close();
  return out;
}

describe('fuzz: zip reader and converter', () => {
  const small = floatCheckpoint({ 'layer.weight': new Float32Array([1, 2, 3, 4, 5, 6]), bias: new Float32Array([7]) }, [
    ['epoch', pk.int(3)],
  ]);
  const bases = [small, fs.readFileSync(path.join(CONVERT, 'views.pth')), fs.readFileSync(path.join(CONVERT, 'plain_with_extras.pth'))];

  it('mutated archives open and read or throw ZipError', async () => {
    const f = path.join(dir, 'mut.zip');
    const deflated = await entriesOf(bases[1]).then((es) => buildZip(es, true));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...bases, deflated), fc.oneof(mutationsArb, inPlaceMutationsArb), async (base, muts) => {
        fs.writeFileSync(f, mutate(base, muts));
        await expectContainedAsync(async () => {
          const z = await ZipReader.open(f);
          try {
            for (const n of z.names()) {
              try {
                await z.read(n);
              } catch (e) {
                checkError(e, [ZipError]);
              }
            }
          } finally {
            z.close();
          }
        }, [ZipError]);
      }),
      { seed: SEED, numRuns: runs(300) },
    );
  });

  it('mutated checkpoints convert or throw ConvertError, and never leave a temp file', async () => {
    const f = path.join(dir, 'mut.ckpt');
    const out = path.join(dir, 'mut-out.safetensors');
    const archives = await Promise.all(bases.map(entriesOf));
    // Either the zip bytes are mutated, or a member (data.pkl most often) is and the zip is rebuilt around it.
    const inputArb = fc.oneof(
      fc.tuple(fc.constantFrom(...bases), fc.oneof(mutationsArb, inPlaceMutationsArb)).map(([b, m]) => mutate(b, m)),
      fc
        .tuple(fc.constantFrom(...archives), fc.nat(), fc.boolean(), mutationsArb, fc.boolean())
        .map(([entries, which, pkl, muts, deflate]) => {
          const i = pkl ? entries.findIndex(([n]) => n.endsWith('/data.pkl')) : which % entries.length;
          const changed = entries.map(([n, d], j): [string, Uint8Array] => [n, j === i ? mutate(d, muts) : d]);
          return buildZip(changed, deflate);
        }),
    );
    await fc.assert(
      fc.asyncProperty(inputArb, async (bytes) => {
        fs.rmSync(out, { force: true });
        fs.writeFileSync(f, bytes);
        await expectContainedAsync(() => convertCheckpoint(f, out), [ConvertError]);
        expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
        // Whatever converts is a file our reader accepts.
        if (fs.existsSync(out)) SafetensorsFile.open(out).close();
      }),
      { seed: SEED, numRuns: runs(400) },
    );
  });
});
