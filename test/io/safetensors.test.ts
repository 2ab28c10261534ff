import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_RANK,
  SafetensorsError,
  SafetensorsFile,
  bf16ToF32,
  encodeHost,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  parseSafetensorsHeader,
  removePendingTempFiles,
  saveTensors,
  writeSafetensors,
} from '../../src/io/safetensors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-st-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Builds a safetensors file from a raw header object and data bytes (no validation). */
function rawFile(name: string, header: unknown, data: Uint8Array, lenOverride?: bigint): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(json.length));
  const p = path.join(dir, name);
  fs.writeFileSync(p, Buffer.concat([len, json, data]));
  return p;
}

describe('safetensors', () => {
  it('round-trips every supported dtype and reads lazily by name', async () => {
    const p = path.join(dir, 'rt.safetensors');
    const f = new Float32Array([1.5, -2.25, 3e-3, 65504]);
    await writeSafetensors(
      p,
      [
        { name: 'f32', dtype: 'F32', shape: [2, 2], bytes: () => encodeHost(f, 'F32') },
        { name: 'f16', dtype: 'F16', shape: [4], bytes: () => encodeHost(f, 'F16') },
        { name: 'bf16', dtype: 'BF16', shape: [4], bytes: () => encodeHost(f, 'BF16') },
        { name: 'i32', dtype: 'I32', shape: [3], bytes: () => encodeHost(new Int32Array([1, -2, 3]), 'I32') },
        { name: 'i64', dtype: 'I64', shape: [3], bytes: () => encodeHost(new Int32Array([7, -8, 9]), 'I64') },
        { name: 'b', dtype: 'BOOL', shape: [2], bytes: () => encodeHost(new Int32Array([1, 0]), 'BOOL') },
      ],
      { hello: 'world' },
    );
    const st = SafetensorsFile.open(p);
    expect(st.metadata).toEqual({ hello: 'world' });
    expect(st.keys().sort()).toEqual(['b', 'bf16', 'f16', 'f32', 'i32', 'i64']);
    expect(Array.from(st.readHost('f32').data)).toEqual(Array.from(f));
    expect(Array.from(st.readHost('f16').data)).toEqual([1.5, -2.25, 0.0030002593994140625, 65504]);
    expect(st.readHost('bf16').data[0]).toBe(1.5);
    expect(Array.from(st.readHost('i64').data)).toEqual([7, -8, 9]);
    expect(st.readHost('i64').dtype).toBe('int32');
    expect(Array.from(st.readHost('b').data)).toEqual([1, 0]);
    const t = st.read('f32');
    expect(t.shape).toEqual([2, 2]);
    t.dispose();
    st.close();
    // header is padded to a multiple of 8
    const hl = Number(fs.readFileSync(p).readBigUInt64LE(0));
    expect(hl % 8).toBe(0);
  });

  it('converts half and bfloat16 with round-to-nearest-even', () => {
    const x = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1e-8, -0, 70000, 2 ** -24]);
    expect(Array.from(f16ToF32(f32ToF16(x)))).toEqual([1, 1 + 2 ** -9, 0, -0, Infinity, 2 ** -24]);
    const y = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8]);
    expect(Array.from(bf16ToF32(f32ToBf16(y)))).toEqual([1, 1 + 2 ** -6]);
  });

  it('saveTensors writes tf tensors (F32 / I32)', async () => {
    const p = path.join(dir, 'tf.safetensors');
    const a = tf.tensor([[1, 2, 3]]);
    const b = tf.tensor([4, 5], [2], 'int32');
    await saveTensors(p, { a, b });
    const st = SafetensorsFile.open(p);
    expect(st.entry('a').dtype).toBe('F32');
    expect(st.entry('b').dtype).toBe('I32');
    st.close();
    tf.dispose([a, b]);
  });

  it('rejects a truncated file', () => {
    const p = path.join(dir, 'trunc.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    expect(() => SafetensorsFile.open(p)).toThrow(/trunc\.safetensors: file is 3 bytes, too short/);
  });

  it('rejects a header length beyond the file', () => {
    const p = rawFile('long.safetensors', {}, new Uint8Array(0), 1000n);
    expect(() => SafetensorsFile.open(p)).toThrow(/long\.safetensors: header length 1000 goes beyond the end of the file/);
  });

  it('rejects invalid JSON', () => {
    const p = path.join(dir, 'json.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(5n);
    fs.writeFileSync(p, Buffer.concat([len, Buffer.from('{"a":')]));
    expect(() => SafetensorsFile.open(p)).toThrow(/json\.safetensors: header is not valid JSON/);
  });

  it('rejects overlapping offsets', () => {
    const p = rawFile(
      'overlap.safetensors',
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    );
    expect(() => SafetensorsFile.open(p)).toThrow(/overlap\.safetensors: tensors "a" and "b" have overlapping data_offsets/);
  });

  it('rejects offsets out of range', () => {
    const p = rawFile('range.safetensors', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
    expect(() => SafetensorsFile.open(p)).toThrow(/range\.safetensors: tensor "a": data_offsets \[0, 16\] out of range/);
  });

  it('rejects a byte count that does not match shape × dtype', () => {
    const p = rawFile('count.safetensors', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(() => SafetensorsFile.open(p)).toThrow(/count\.safetensors: tensor "a": shape \[3\] × F32 needs 12 bytes but data_offsets span 8/);
  });

  it('rejects an unknown dtype', () => {
    const p = rawFile('dtype.safetensors', { a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(() => SafetensorsFile.open(p)).toThrow(/dtype\.safetensors: tensor "a": unknown dtype "C64"/);
  });

  it('rejects I64 values that do not fit in int32', () => {
    const big = new BigInt64Array([2n ** 40n]);
    const p = rawFile('i64.safetensors', { a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(big.buffer));
    const st = SafetensorsFile.open(p);
    expect(() => st.readHost('a')).toThrow(/does not fit in int32/);
    st.close();
  });

  it('a failed write leaves nothing behind', async () => {
    const p = path.join(dir, 'fail.safetensors');
    await expect(
      writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [4], bytes: () => new Uint8Array(3) }]),
    ).rejects.toThrow(/has 3 bytes, expected 16/);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('fail'))).toEqual([]);
  });

  it('rejects an overlap hidden behind an empty tensor (#13.12)', () => {
    const p = rawFile(
      'hidden.safetensors',
      {
        a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
        e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] },
        b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
      },
      new Uint8Array(16),
    );
    expect(() => SafetensorsFile.open(p)).toThrow(/tensors "a" and "e" have overlapping data_offsets/);
  });

  it('requires the offsets to tile the data section: no gaps, nothing left over', () => {
    const gap = rawFile(
      'gap.safetensors',
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      new Uint8Array(12),
    );
    expect(() => SafetensorsFile.open(gap)).toThrow(/bytes \[4, 8\) of the data section belong to no tensor/);
    const tail = rawFile('tail.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(12));
    expect(() => SafetensorsFile.open(tail)).toThrow(/the tensors cover 4 of the 12 data bytes/);
    // Empty tensors anywhere in the tiling, in any header order, are fine.
    const ok = rawFile(
      'empties.safetensors',
      {
        b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        e2: { dtype: 'F16', shape: [0, 3], data_offsets: [8, 8] },
        e1: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      },
      new Uint8Array(8),
    );
    const st = SafetensorsFile.open(ok);
    expect(st.keys().sort()).toEqual(['a', 'b', 'e1', 'e2']);
    st.close();
  });

  it('a 100k-deep shape is a SafetensorsError, not a RangeError', () => {
    const depth = 100_000;
    const json = Buffer.from(`{"a":{"dtype":"F32","shape":${'['.repeat(depth)}${']'.repeat(depth)},"data_offsets":[0,0]}}`);
    const err = (() => {
      try {
        parseSafetensorsHeader(json, 0, 'deep.safetensors');
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err!.message).toMatch(/deep\.safetensors: tensor "a": invalid shape an array of 1 items, dimensions must be non-negative integers/);
  });

  it('bounds the shape rank', () => {
    const shape = new Array(100_000).fill(1);
    const json = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape, data_offsets: [0, 4] } }));
    expect(() => parseSafetensorsHeader(json, 4, 'rank')).toThrow(
      new RegExp(`rank: tensor "a": shape has 100000 dimensions, more than the limit of ${MAX_RANK}`),
    );
  });

  for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
    it(`a dtype named ${dtype} is just an unknown dtype`, () => {
      const json = Buffer.from(`{"a":{"dtype":"${dtype}","shape":[1],"data_offsets":[0,4]}}`);
      expect(() => parseSafetensorsHeader(json, 4, 'x')).toThrow(
        new RegExp(`x: tensor "a": unknown dtype "${dtype}" \\(expected one of F64, F32`),
      );
    });
  }

  it('only own properties of an entry count (an inherited dtype/shape does not)', () => {
    const json = Buffer.from('{"a":{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}');
    expect(() => parseSafetensorsHeader(json, 4, 'x')).toThrow(/x: tensor "a": unknown dtype nothing/);
  });

  it('validates __metadata__ and caps long names in messages', () => {
    expect(() => parseSafetensorsHeader(Buffer.from('{"__metadata__":{"k":1}}'), 0, 'm')).toThrow(
      /m: __metadata__ "k" is 1, expected a string/,
    );
    expect(() => parseSafetensorsHeader(Buffer.from('{"__metadata__":[1]}'), 0, 'm')).toThrow(/__metadata__ is \[1\]/);
    const name = 'n'.repeat(50_000);
    const err = (() => {
      try {
        parseSafetensorsHeader(Buffer.from(JSON.stringify({ [name]: { dtype: 'X', shape: [], data_offsets: [0, 0] } })), 0, 'm');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message.length).toBeLessThan(500);
    expect(err?.message).toMatch(/n… \(50000 chars\)/);
    expect(() => parseSafetensorsHeader(Buffer.from([0x7b, 0xff, 0x7d]), 0, 'u')).toThrow(/u: header is not valid UTF-8/);
  });

  it('writes in progress can be cleaned up synchronously (for signal handlers)', async () => {
    const p = path.join(dir, 'pending.safetensors');
    let removed: string[] = [];
    await writeSafetensors(p, [
      {
        name: 'a',
        dtype: 'F32',
        shape: [1],
        bytes: () => {
          removed = removePendingTempFiles();
          return new Uint8Array(4);
        },
      },
    ]).catch(() => undefined);
    expect(removed.length).toBe(1);
    expect(removed[0]).toMatch(/pending\.safetensors\.tmp-\d+-\d+$/);
    expect(fs.existsSync(removed[0])).toBe(false);
    expect(removePendingTempFiles()).toEqual([]);
  });
});
