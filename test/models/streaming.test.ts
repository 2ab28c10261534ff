// Weight streaming (src/nn/streaming.ts) and the memory plan of loadModel (src/models/memory.ts).
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MapSource, saveTensors } from '../../src/io/safetensors.ts';
import { Linear } from '../../src/nn/layers.ts';
import { kernelRegistered, TO_HOST } from '../../src/nn/kernels.ts';
import { Module, StateDictError } from '../../src/nn/module.ts';
import type { WeightDerivation } from '../../src/nn/residency.ts';
import { hostBytes, isStreamed, loadStateDictStreamed, offloadToHost, streamStats, withResident } from '../../src/nn/streaming.ts';
import { DEMO_DIR, demoWeight } from '../../src/models/demo.ts';
import { DiTWrapper } from '../../src/models/dit.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { hostableBytes, MemoryPlanError, planMemory, residentWeightBytes } from '../../src/models/memory.ts';
import { Synchformer } from '../../src/models/synchformer/synchformer.ts';
import { syncFeatureBytes } from '../../src/models/synchformer/features.ts';
import { budgetOf } from '../../src/backend/index.ts';
import { backendBytes } from '../../src/nn/runtime.ts';
import { MMDiTWrapper } from '../../src/models/mmdit.ts';
import { ChannelLastConv1d, TransposedLinear } from '../../src/nn/relaid-layers.ts';
import { OobleckDecoder } from '../../src/models/vae/oobleck.ts';
import { T5EncoderModel, type T5Config } from '../../src/models/t5.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';
import type { DiffusionModel } from '../../src/models/diffusion-types.ts';
import { TINY_FRAMES, tinyDiT, tinyDiTCond, tinyMMDiT, tinyMMDiTCond } from './tiny-diffusion.ts';

/** Random weights for every tensor of `m` (incl. optional buffers), owned by the caller. */
function randomWeights(m: Module, seed: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, p] of m.namedTensors()) {
    out[k] = p.dtype === 'int32' ? tf.zeros(p.shape, 'int32') : tf.randomNormal(p.shape, 0, 0.2, 'float32', seed++);
  }
  return out;
}

/** One CFG forward of a diffusion model (cfgScale 3) → its values. */
async function forwardOnce(m: Module, x: tf.Tensor, t: tf.Tensor, c: tf.Tensor): Promise<number[]> {
  const y = (m as unknown as DiffusionModel).forward(x, t, { crossAttnCond: c, cfgScale: 3 });
  const out = Array.from(await y.data());
  y.dispose();
  return out;
}

const blocksOf = (w: Module) => [...w.getSubmodule('model.transformer.layers').children.values()];

const T = TINY_FRAMES;
const CASES: { name: string; build: () => DiTWrapper | MMDiTWrapper; cond: () => tf.Tensor3D }[] = [
  {
    name: 'DiT',
    build: () => tinyDiT(3),
    cond: tinyDiTCond,
  },
  {
    name: 'MMDiT',
    build: () => tinyMMDiT(3),
    cond: tinyMMDiTCond,
  },
];

describe.each(CASES)('streamed $name', ({ build, cond }) => {
  it('gives exactly the resident output, leaks nothing and peaks lower on the backend', async () => {
    const x = tf.randomNormal([1, 4, T], 0, 1, 'float32', 3);
    const t = tf.tensor1d([0.4]);
    const c = cond();
    const weights = randomWeights(build(), 10);
    const src = new MapSource(weights);
    // Loads, runs one CFG forward (batch 2) → output, backend bytes after loading and the forward's peak (both above `m0`).
    const measure = async (streamBlocks: boolean) => {
      const m0 = tf.memory().numBytes;
      const m = build();
      const blocks = blocksOf(m);
      if (streamBlocks) {
        const report = loadStateDictStreamed(m, src, blocks);
        expect(report.loaded.length).toBe(Object.keys(weights).length);
        expect(blocks.every(isStreamed)).toBe(true);
        expect(hostBytes(m)).toBe(blocks.reduce((n, b) => n + b.parameterBytes(), 0));
      } else m.loadStateDict(src);
      const loaded = tf.memory().numBytes - m0;
      const n0 = tf.memory().numTensors;
      streamStats.reset();
      let y: tf.Tensor | null = null;
      const prof = await tf.profile(() => (y = (m as DiffusionModel).forward(x, t, { crossAttnCond: c, cfgScale: 3 })));
      expect(tf.memory().numTensors).toBe(n0 + 1);
      expect(streamStats.uploads).toBe(streamBlocks ? blocks.length : 0);
      const out = Array.from(await y!.data());
      y!.dispose();
      m.dispose();
      return { out, loaded, peak: prof.peakBytes - m0, sampledPeak: streamStats.peakBytes - m0 };
    };
    const n0 = tf.memory().numTensors;
    const resident = await measure(false);
    const streamed = await measure(true);
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([...Object.values(weights), x, t, c]);
    expect(streamed.out).toEqual(resident.out);
    expect(streamed.loaded).toBeLessThan(resident.loaded / 2);
    expect(streamed.peak).toBeLessThan(resident.peak);
    // Sampled while a block was resident: the other weights + one block + live activations.
    expect(streamed.sampledPeak).toBeGreaterThan(streamed.loaded);
    expect(streamed.sampledPeak).toBeLessThanOrEqual(streamed.peak);
  });
});

describe.each(CASES)('streamed $name, derived tensors kept after the first call', ({ build, cond }) => {
  it('matches resident over several steps without deriving again, leaking nothing', async () => {
    const c = cond();
    const steps = [0.9, 0.5, 0.1].map((tv, i) => ({ x: tf.randomNormal([1, 4, T], 0, 1, 'float32', 20 + i), t: tf.tensor1d([tv]) }));
    const weights = randomWeights(build(), 30);
    const src = new MapSource(weights);
    const forward = (m: Module, x: tf.Tensor, t: tf.Tensor) => forwardOnce(m, x, t, c);
    const n0 = tf.memory().numTensors;
    const resident = build();
    resident.loadStateDict(src);
    const want: number[][] = [];
    for (const { x, t } of steps) want.push(await forward(resident, x, t));
    resident.dispose();

    const m = build();
    const blocks = blocksOf(m);
    loadStateDictStreamed(m, src, blocks);
    const host0 = hostBytes(m);
    // Counts the declared derivations that run (their `derive`), per step.
    let derives = 0;
    const counting = (proto: { derivation(): WeightDerivation }) => {
      const declared = proto.derivation;
      return vi.spyOn(proto, 'derivation').mockImplementation(function (this: unknown) {
        const d = declared.call(this);
        return { ...d, derive: () => (derives++, d.derive()) };
      });
    };
    const onLoads = [counting(TransposedLinear.prototype), counting(ChannelLastConv1d.prototype)];
    const finishLoads = blocks.map((b) => vi.spyOn(b, 'finishLoad'));
    const perStep: { bytes: number; onLoads: number; finishLoads: number; derived: number }[] = [];
    try {
      for (const [i, { x, t }] of steps.entries()) {
        streamStats.reset();
        for (const s of finishLoads) s.mockClear();
        derives = 0;
        const n1 = tf.memory().numTensors;
        expect(await forward(m, x, t)).toEqual(want[i]);
        expect(tf.memory().numTensors).toBe(n1);
        expect(streamStats.uploads).toBe(blocks.length);
        perStep.push({
          bytes: streamStats.uploadedBytes,
          onLoads: derives,
          finishLoads: finishLoads.reduce((n, s) => n + s.mock.calls.length, 0),
          derived: streamStats.derivedUploads,
        });
      }
    } finally {
      for (const s of [...onLoads, ...finishLoads]) s.mockRestore();
    }
    const [first, ...later] = perStep;
    expect(first.onLoads).toBeGreaterThan(0);
    expect(first.finishLoads).toBe(blocks.length);
    expect(first.derived).toBe(0);
    for (const s of later) {
      expect(s).toMatchObject({ onLoads: 0, finishLoads: 0, derived: blocks.length });
      // No onLoad work and no more bytes than the first call (the speed-up itself is measured in bench/,
      // not asserted on a wall clock here).
      expect(s.bytes).toBeLessThanOrEqual(first.bytes);
    }
    expect(hostBytes(m)).toBeLessThanOrEqual(host0);
    m.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([...Object.values(weights), c, ...steps.flatMap(({ x, t }) => [x, t])]);
  });
});

class DecoderHolder extends Module {
  readonly decoder = this.module('decoder', new OobleckDecoder({ channels: 4, latent_dim: 3, c_mults: [1, 2], strides: [2, 4], use_snake: true }));
}

describe.each(CASES)('host-placed $name (weight operands in host memory, wasm + native BLAS)', ({ build, cond }) => {
  it.skipIf(!kernelRegistered(TO_HOST))('gives exactly the resident output on every call with no upload, leaking nothing', async () => {
    const x = tf.randomNormal([1, 4, T], 0, 1, 'float32', 3);
    const t = tf.tensor1d([0.4]);
    const c = cond();
    const weights = randomWeights(build(), 10);
    const src = new MapSource(weights);
    const run = (m: Module) => forwardOnce(m, x, t, c);
    const n0 = tf.memory().numTensors;
    const resident = build();
    resident.loadStateDict(src);
    const want = await run(resident);
    const residentBytes = backendBytes();
    resident.dispose();

    const m = build();
    const blocks = blocksOf(m);
    const host0 = (tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0;
    loadStateDictStreamed(m, src, blocks, { hostUnits: blocks });
    expect(blocks.every((b) => b.placement === 'host')).toBe(true);
    // Every block's products read their weights from host memory; what the plan counts is what moved.
    const moved = ((tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0) - host0;
    expect(moved).toBe(blocks.reduce((n, b) => n + hostableBytes(b), 0));
    expect(moved).toBeGreaterThan(0);
    expect(hostBytes(m)).toBe(moved);
    expect(backendBytes()).toBeLessThan(residentBytes - moved / 2);
    streamStats.reset();
    for (let i = 0; i < 2; i++) expect(await run(m)).toEqual(want);
    expect(streamStats.uploads).toBe(0);
    m.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    expect((tf.memory() as tf.MemoryInfo & { hostBytes?: number }).hostBytes ?? 0).toBe(host0);
    tf.dispose([...Object.values(weights), x, t, c]);
  });

  it('refuses host units that are not streamed units', () => {
    const m = build();
    const blocks = blocksOf(m);
    const weights = randomWeights(m, 10);
    expect(() => loadStateDictStreamed(m, new MapSource(weights), blocks.slice(1), { hostUnits: blocks.slice(0, 1) })).toThrow(
      /is not among the streamed units/,
    );
    m.dispose();
    tf.dispose(Object.values(weights));
  });
});

describe('streamed Oobleck decoder (weight-norm folds, polyphase transposed convs, SnakeBeta folds)', () => {
  it('gives the resident output on every call, only the first one deriving', async () => {
    const z = tf.randomNormal([1, 3, 5], 0, 1, 'float32', 40) as tf.Tensor3D;
    const weights = randomWeights(new DecoderHolder(), 41);
    const src = new MapSource(weights);
    const n0 = tf.memory().numTensors;
    const resident = new DecoderHolder();
    resident.loadStateDict(src);
    const y0 = resident.decoder.forward(z);
    const want = Array.from(await y0.data());
    tf.dispose(y0);
    resident.dispose();
    const m = new DecoderHolder();
    loadStateDictStreamed(m, src, [m.decoder]);
    const finishLoad = vi.spyOn(m.decoder, 'finishLoad');
    for (let i = 0; i < 3; i++) {
      streamStats.reset();
      const y = m.decoder.forward(z);
      expect(Array.from(await y.data())).toEqual(want);
      y.dispose();
      expect(streamStats.derivedUploads).toBe(i ? 1 : 0);
    }
    expect(finishLoad).toHaveBeenCalledTimes(1);
    finishLoad.mockRestore();
    m.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([z, ...Object.values(weights)]);
  });
});

class TwoLinear extends Module {
  readonly a = this.module('a', new Linear(3, 4));
  readonly b = this.module('b', new Linear(4, 2));
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.b.forward(this.a.forward(x)));
  }
}
class Root extends Module {
  readonly inner = this.module('inner', new TwoLinear());
}

describe('streaming primitives', () => {
  it('offloadToHost keeps the results, and withResident releases everything even when the forward throws', async () => {
    const r = new Root();
    const w = randomWeights(r, 1);
    r.loadStateDict(new MapSource(w));
    tf.dispose(Object.values(w));
    const x = tf.randomNormal([2, 3], 0, 1, 'float32', 5);
    const want = r.inner.forward(x);
    const n0 = tf.memory().numTensors;
    offloadToHost([r.inner]);
    expect(tf.memory().numTensors).toBe(n0 - 4);
    const got = r.inner.forward(x);
    expect(Array.from(await got.data())).toEqual(Array.from(await want.data()));
    expect(tf.memory().numTensors).toBe(n0 - 4 + 1);
    expect(() => withResident(r.inner, () => { throw new Error('boom'); })).toThrow('boom');
    expect(tf.memory().numTensors).toBe(n0 - 4 + 1);
    expect(() => offloadToHost([r.inner])).toThrow(/already streamed/);
    tf.dispose([x, want, got]);
  });

  it('refuses to offload a module whose derivation released its torch-layout tensors', () => {
    const m = CASES[0].build();
    const w = randomWeights(m, 1);
    m.loadStateDict(new MapSource(w));
    tf.dispose(Object.values(w));
    expect(() => offloadToHost([blocksOf(m)[0]])).toThrow(/not loaded \(released by its derivation\?\)/);
    m.dispose();
  });

  it('keeps the strict key check, and aborts over the byte limit without leaking', () => {
    const m = CASES[0].build();
    const w = randomWeights(m, 1);
    const n0 = tf.memory().numTensors;
    const { 'model.preprocess_conv.weight': _dropped, ...rest } = w;
    expect(() => loadStateDictStreamed(m, new MapSource(rest), blocksOf(m))).toThrow(StateDictError);
    expect(() => loadStateDictStreamed(m, new MapSource(w), blocksOf(m), { maxBackendBytes: tf.memory().numBytes + 1000 })).toThrow(
      /over the planned maximum/,
    );
    expect(tf.memory().numTensors).toBe(n0);
    expect(blocksOf(m).some(isStreamed)).toBe(false);
    tf.dispose(Object.values(w));
  });
});

describe('loadModel memory plan', () => {
  let dir: string;
  let t5Dir: string;
  beforeAll(async () => {
    // A converted-model directory (config.json + model.safetensors) and a T5 snapshot, from the demo config.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-stream-'));
    dir = path.join(tmp, 'tiny');
    t5Dir = path.join(tmp, 't5');
    fs.mkdirSync(dir);
    fs.mkdirSync(t5Dir);
    const { audiox_ts: extra, ...config } = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const w = createModelFromConfig(config);
    const tensors = Object.fromEntries([...w.namedTensors()].map(([k, p]) => [k, demoWeight(k, p)]));
    await saveTensors(path.join(dir, 'model.safetensors'), tensors);
    tf.dispose(Object.values(tensors));
    fs.writeFileSync(path.join(t5Dir, 'config.json'), JSON.stringify(extra.t5));
    fs.copyFileSync(path.join(DEMO_DIR, 'tokenizer.json'), path.join(t5Dir, 'tokenizer.json'));
    const t5 = T5EncoderModel.fromConfig(extra.t5 as T5Config);
    const t5w = Object.fromEntries([...t5.namedTensors()].map(([k, p]) => [k, demoWeight(k, p)]));
    await saveTensors(path.join(t5Dir, 'model.safetensors'), t5w);
    tf.dispose(Object.values(t5w));
  });
  afterAll(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  const forward = async (m: Awaited<ReturnType<typeof loadModel>>) => {
    const x = tf.randomNormal([1, 8, 5], 0, 1, 'float32', 7);
    const t = tf.tensor1d([0.3]);
    const c = tf.randomNormal([1, 4, 32], 0, 1, 'float32', 8);
    const y = m.wrapper.model.forward(x, t, { crossAttnCond: c, cfgScale: 2 });
    const out = Array.from(await y.data());
    tf.dispose([x, t, c, y]);
    return out;
  };

  it("counts the Synchformer's frames and segment working set in the conditioning phase", () => {
    const { audiox_ts: _, ...config } = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8'));
    const w = createModelFromConfig(config); // built, never loaded: planning allocates nothing
    const s = new Synchformer();
    const n0 = tf.memory().numTensors;
    const extra = [{ module: s, streamable: [s.vfeat_extractor] }];
    const activations = syncFeatureBytes(s.vfeat_extractor.config, 250);
    const resident = planMemory(w, 'resident', { budget: budgetOf('wasm'), extra, inUse: 0 });
    expect(resident.phases[0]).toEqual({ name: 'conditioning', bytes: activations, detail: 'Synchformer over 250 frames' });
    // 250 frames at 224² are 150 MB per float copy, three of them while normalising (the segment working set is
    // smaller than two copies when the backend fuses the attention, see segmentWorkingBytes).
    expect(activations).toBeGreaterThanOrEqual(3 * 250 * 3 * 224 * 224 * 4);
    // Streamed, the extractor's upload comes on top of its activations.
    const streamed = planMemory(w, 'streamed', { budget: budgetOf('wasm'), extra, inUse: 0 });
    const sync = streamed.phases[0];
    expect(sync.detail).toBe('Synchformer over 250 frames');
    expect(sync.bytes).toBeGreaterThan(activations + s.vfeat_extractor.parameterBytes());
    expect(tf.memory().numTensors).toBe(n0);
  });

  it('keeps a model that fits resident, streams it under a small budget, with the same output', async () => {
    const b0 = tf.memory().numBytes;
    const resident = await loadModel(dir, { t5Dir });
    expect(resident.memoryPlan?.mode).toBe('resident');
    // The plan's weight bytes (incl. derived copies and T5) against what loading really allocated.
    const allocated = tf.memory().numBytes - b0;
    expect(resident.memoryPlan!.residentBytes).toBeGreaterThanOrEqual(allocated);
    expect(resident.memoryPlan!.residentBytes).toBeLessThan(allocated * 1.1);
    const want = await forward(resident);
    expect(residentWeightBytes(resident.wrapper)).toBeGreaterThan(resident.wrapper.parameterBytes()); // Conv1d filters counted
    resident.dispose();

    const forced = await loadModel(dir, { t5Dir, streamWeights: true });
    const streamedPeak = forced.memoryPlan!.peak;
    forced.dispose();
    expect(streamedPeak).toBeLessThan(resident.memoryPlan!.peak);
    const budget = Math.floor((streamedPeak + resident.memoryPlan!.peak) / 2);
    // Under that budget 'auto' takes the host placement where the backend offers it (wasm + addon), else streams.
    const streamed = await loadModel(dir, { t5Dir, memoryBudget: budget });
    expect(streamed.memoryPlan?.mode).toBe(kernelRegistered(TO_HOST) ? 'host' : 'streamed');
    expect(streamed.memoryPlan!.peak).toBeLessThanOrEqual(budget);
    expect(isStreamed(streamed.wrapper.pretransform.model.decoder)).toBe(true);
    expect(await forward(streamed)).toEqual(want);
    streamed.dispose();
  });

  it('refuses an impossible budget with the numbers and the alternatives, leaking nothing', async () => {
    const before = tf.memory().numTensors;
    const err = await loadModel(dir, { t5Dir, memoryBudget: 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryPlanError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/does not fit in memory/);
    expect(msg).toMatch(/resident: peak .* of the \w+ budget 1024 B/);
    expect(msg).toMatch(/streamed: peak/);
    expect(msg).toMatch(/Alternatives: .*backend with more memory/);
    expect(tf.memory().numTensors).toBe(before);
    const forced = await loadModel(dir, { t5Dir, streamWeights: false, memoryBudget: tf.memory().numBytes + 1000 }).catch((e: unknown) => e);
    expect((forced as Error).message).toMatch(/Alternatives: weight streaming \(AUDIOX_STREAM_WEIGHTS=1/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the demo model loads resident by default and streamed on request, with the same output', async () => {
    const demo = await loadModel('demo');
    expect(demo.memoryPlan?.mode).toBe('resident');
    expect(demo.info().parameters).toBeGreaterThan(0);
    const want = await forward(demo);
    demo.dispose();
    const before = tf.memory().numTensors;
    const streamed = await loadModel('demo', { streamWeights: true });
    expect(streamed.memoryPlan?.mode).toBe('streamed');
    expect(await forward(streamed)).toEqual(want);
    streamed.dispose();
    expect(tf.memory().numTensors).toBe(before);
    if (kernelRegistered(TO_HOST)) {
      const host = await loadModel('demo', { streamWeights: 'host' });
      expect(host.memoryPlan?.mode).toBe('host');
      expect(host.memoryPlan!.hostUnits.length).toBe(blocksOf(host.wrapper.model).length);
      expect(host.memoryPlan!.hostBytes).toBeGreaterThanOrEqual(hostBytes(host.wrapper));
      streamStats.reset();
      expect(await forward(host)).toEqual(want);
      expect(streamStats.uploads).toBe(0);
      host.dispose();
      expect(tf.memory().numTensors).toBe(before);
    } else {
      await expect(loadModel('demo', { streamWeights: 'host' })).rejects.toThrow(/host-resident weights need the wasm backend with the native BLAS addon/);
    }
  });
});
