// Loading the 'host' placement straight from a safetensors file (nn/module.ts ViewLoad with host units,
// SafetensorsFile.readHostViews): the weight operands of the host units' re-laid products are widened and
// re-laid natively into host memory, never on the wasm heap. Compared bit for bit with the tensors the old
// path derived (upload the torch layout, derive with tf ops), on small random configs, f32, f16 and bf16
// files (bf16 has no native path: it takes the read-then-move fallback), incl. chunked (row-sliced and
// transposed) products; tensors, bytes and host bytes are those of the old path; the output is unchanged.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SafetensorsFile, saveTensors, type SafetensorsDType } from '../../src/io/safetensors.ts';
import { kernelRegistered, TO_HOST } from '../../src/nn/kernels.ts';
import { Module } from '../../src/nn/module.ts';
import { ChannelLastConv1d, TransposedLinear } from '../../src/nn/relaid-layers.ts';
import { hostBytes, loadStateDictStreamed } from '../../src/nn/streaming.ts';
import { hostableBytes } from '../../src/models/memory.ts';
import type { DiffusionModel } from '../../src/models/diffusion-types.ts';
import { TINY_FRAMES, tinyDiT, tinyDiTCond, tinyMMDiT, tinyMMDiTCond } from './tiny-diffusion.ts';

const available = kernelRegistered(TO_HOST);
const memHost = () => (tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-host-load-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A unit mixing pure re-layouts (chunked: row slices, transposed; odd sizes for the edge tiles) and a conv fold. */
class Unit extends Module {
  readonly qkv = this.module('qkv', new TransposedLinear(67, 3 * 37, { chunks: 3 }));
  readonly proj = this.module('proj', new TransposedLinear(37, 67, { bias: false }));
  readonly conv = this.module('conv', new ChannelLastConv1d(5, 7, 3, 1));
}
class Holder extends Module {
  readonly units = [this.module('u0', new Unit()), this.module('u1', new Unit())];
  readonly head = this.module('head', new TransposedLinear(9, 4));
}

const T = TINY_FRAMES;
const CASES: { name: string; build: () => Module; units: (m: Module) => Module[]; cond?: () => tf.Tensor3D }[] = [
  { name: 'a unit of chunked products and a conv', build: () => new Holder(), units: (m) => (m as Holder).units },
  {
    name: 'DiT',
    build: () => tinyDiT(2),
    units: (m) => [...m.getSubmodule('model.transformer.layers').children.values()],
    cond: tinyDiTCond,
  },
  {
    name: 'MMDiT',
    build: () => tinyMMDiT(2),
    units: (m) => [...m.getSubmodule('model.transformer.layers').children.values()],
    cond: tinyMMDiTCond,
  },
];

/** A safetensors file of random weights for `m`, floats stored as `dtype`. */
async function weightsFile(m: Module, dtype: SafetensorsDType, seed: number): Promise<string> {
  const tensors: Record<string, tf.Tensor> = {};
  const dtypes: Record<string, SafetensorsDType> = {};
  for (const [k, p] of m.namedTensors()) {
    tensors[k] = p.dtype === 'int32' ? tf.zeros(p.shape, 'int32') : tf.randomNormal(p.shape, 0, 0.2, 'float32', seed++);
    if (p.dtype !== 'int32') dtypes[k] = dtype;
  }
  const file = path.join(dir, `${m.constructor.name}-${dtype}-${seed}.safetensors`);
  await saveTensors(file, tensors, undefined, dtypes);
  tf.dispose(Object.values(tensors));
  return file;
}

/** Every derived tensor of `m` (what each derivation exports, by module path and name), as raw bits. */
function derivedBits(m: Module): Map<string, { shape: number[]; bits: Uint32Array }> {
  const out = new Map<string, { shape: number[]; bits: Uint32Array }>();
  for (const [name, c] of m.namedModules()) {
    const d = c.derivation();
    if (!d?.exportDerived || (!d.hostable?.length && !d.views?.length)) continue;
    for (const [k, t] of Object.entries(d.exportDerived().tensors)) {
      const v = t.dataSync();
      out.set(`${name}:${k}`, { shape: t.shape, bits: new Uint32Array(v.buffer, v.byteOffset, v.length).slice() });
    }
  }
  return out;
}

/**
 * The old path's result: every torch-layout tensor widened in JavaScript (as `pin` uploaded it), set, then
 * derived with tf ops.
 */
function deriveOldWay(m: Module, file: SafetensorsFile): void {
  for (const [k, p] of m.namedTensors()) {
    if (!file.has(k)) continue;
    const h = file.readHost(k);
    p.set(tf.tensor(h.data, h.shape, h.dtype));
  }
  m.finishLoad();
}

describe.skipIf(!available)('host placement loaded straight from the file (wasm + native BLAS)', () => {
  for (const c of CASES) {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      it(`${c.name}, ${dtype} file: host tensors equal the old derivation bit for bit, with the same memory`, async () => {
        const file = SafetensorsFile.open(await weightsFile(c.build(), dtype, 10));
        try {
          const n0 = tf.memory().numTensors;
          const bytes0 = tf.memory().numBytes;
          const host0 = memHost();
          const ref = c.build();
          deriveOldWay(ref, file);
          const want = derivedBits(ref);
          const refMem = { tensors: tf.memory().numTensors - n0, bytes: tf.memory().numBytes - bytes0 };

          const m = c.build();
          const units = c.units(m);
          const direct = vi.spyOn(SafetensorsFile.prototype, 'readHostViews');
          const report = loadStateDictStreamed(m, file, units, { hostUnits: units });
          const natively = direct.mock.results.filter((r) => r.type === 'return' && r.value !== null).length;
          direct.mockRestore();
          expect(report.loaded.sort()).toEqual(file.keys().sort());
          expect(units.every((u) => u.placement === 'host')).toBe(true);
          // each product weight of the units was one native read into host memory (none for bf16: the fallback),
          // except those a parent rewrites at load (MMDiT's attention), which are uploaded and derived as before
          const rewritten = new Set([...m.namedModules()].flatMap(([, x]) => (x.derivation()?.mode === 'rewrite' ? x.derivation()!.sources : [])));
          const products = units
            .flatMap((u) => [...u.namedModules()])
            .filter(([, x]) => x instanceof TransposedLinear && !rewritten.has(x.weight)).length;
          expect(natively).toBe(dtype === 'BF16' ? 0 : products);
          expect(products).toBeGreaterThan(0);

          const got = derivedBits(m);
          expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
          for (const [k, w] of want) {
            const g = got.get(k)!;
            expect(g.shape, k).toEqual(w.shape);
            expect(g.bits.length, k).toBe(w.bits.length);
            expect(g.bits.every((v, i) => v === w.bits[i]), `${k} is not bit-exact`).toBe(true);
          }
          // same tensors and bytes as the old path; the hostable ones (and only those) in host memory
          const moved = memHost() - host0;
          expect(moved).toBe(units.reduce((n, u) => n + hostableBytes(u), 0));
          expect(hostBytes(m)).toBe(moved);
          expect(tf.memory().numTensors - n0 - refMem.tensors).toBe(refMem.tensors);
          expect(tf.memory().numBytes - bytes0 - refMem.bytes).toBe(refMem.bytes);

          if (c.cond) {
            const x = tf.randomNormal([1, 4, T], 0, 1, 'float32', 3);
            const t = tf.tensor1d([0.4]);
            const cond = c.cond();
            const run = (mm: Module) => {
              const y = (mm as unknown as DiffusionModel).forward(x, t, { crossAttnCond: cond, cfgScale: 3 });
              const v = Array.from(y.dataSync());
              y.dispose();
              return v;
            };
            expect(run(m)).toEqual(run(ref));
            tf.dispose([x, t, cond]);
          }
          ref.dispose();
          m.dispose();
          expect(tf.memory().numTensors).toBe(n0);
          expect(memHost()).toBe(host0);
        } finally {
          file.close();
        }
      });
    }
  }

  it('a failed read in a host unit leaks nothing', async () => {
    const file = SafetensorsFile.open(await weightsFile(new Holder(), 'F16', 20));
    try {
      const n0 = tf.memory().numTensors;
      const host0 = memHost();
      const m = new Holder();
      const orig = SafetensorsFile.prototype.readHostViews;
      const spy = vi.spyOn(SafetensorsFile.prototype, 'readHostViews').mockImplementation(function (this: SafetensorsFile, key, views) {
        if (key === 'u1.qkv.weight') throw new Error('disk on fire');
        return orig.call(this, key, views);
      });
      try {
        expect(() => loadStateDictStreamed(m, file, m.units, { hostUnits: m.units })).toThrow(/u1\.qkv.*disk on fire/);
      } finally {
        spy.mockRestore();
      }
      expect(tf.memory().numTensors).toBe(n0);
      expect(memHost()).toBe(host0);
    } finally {
      file.close();
    }
  });
});
