// The declared weight contract (src/nn/residency.ts): loading reads a derivation's views straight from a
// source, the result is the same as deriving from the torch-layout tensors, a parent's rewrite turns the
// shortcut off, and the memory planner counts exactly what the declarations say.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { MapSource, type LayoutView, type TensorSource } from '../../src/io/safetensors.ts';
import { Conv1d } from '../../src/nn/layers.ts';
import { Module } from '../../src/nn/module.ts';
import { viewOf, type WeightDerivation } from '../../src/nn/residency.ts';
import { residentWeightBytes } from '../../src/models/memory.ts';
import { SelfAttention } from '../../src/models/mmdit-blocks.ts';
import { TransposedLinear } from '../../src/nn/relaid-layers.ts';

class Holder extends Module {
  readonly a = this.module('a', new TransposedLinear(5, 6, { chunks: 3 }));
  readonly b = this.module('b', new TransposedLinear(4, 7, { bias: false }));
}

function weights(m: Module, seed: number): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  let i = 0;
  for (const [k, p] of m.namedTensors()) out[k] = tf.randomNormal(p.shape, 0, 1, 'float32', seed + i++);
  return out;
}

/** A source that reads views itself and records them (as a safetensors file does). */
class ViewSource extends MapSource {
  readonly requests: { key: string; views: readonly LayoutView[] }[] = [];
  readonly reads: string[] = [];
  override read(key: string): tf.Tensor {
    this.reads.push(key);
    return super.read(key);
  }
  readViews(key: string, views: readonly LayoutView[]): tf.Tensor[] {
    this.requests.push({ key, views });
    const t = super.read(key);
    const out = views.map((v) => viewOf(t, v));
    t.dispose();
    return out;
  }
}

async function outputs(m: Holder, x: tf.Tensor): Promise<number[][]> {
  const ys = tf.tidy(() => [...m.a.forwardChunks(x), m.b.forward(x.slice([0, 0], [x.shape[0], 4]))]);
  const out = await Promise.all(ys.map((y) => y.data()));
  tf.dispose(ys);
  return out.map((d) => Array.from(d));
}

describe('declared weight derivations', () => {
  it('loads TransposedLinear views straight from a source, equal to deriving from the torch layout', async () => {
    const w = weights(new Holder(), 1);
    const x = tf.randomNormal([2, 5], 0, 1, 'float32', 9);
    const n0 = tf.memory().numTensors;
    const plain = new Holder();
    plain.loadStateDict(new MapSource(w)); // no readViews: read, then re-laid with tf ops
    const viaViews = new Holder();
    const src = new ViewSource(w);
    const report = viaViews.loadStateDict(src);
    expect(src.reads).toEqual([]); // every tensor came through readViews, one request per tensor
    expect(src.requests.map((r) => r.key).sort()).toEqual(['a.bias', 'a.weight', 'b.weight']);
    expect(src.requests.find((r) => r.key === 'a.weight')!.views).toHaveLength(3);
    expect(report.loaded.sort()).toEqual(['a.bias', 'a.weight', 'b.weight']);
    expect(await outputs(viaViews, x)).toEqual(await outputs(plain, x));
    // Torch-layout tensors are not kept by either path.
    expect(viaViews.a.weight.loaded).toBe(false);
    plain.dispose();
    viaViews.dispose();
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([x, ...Object.values(w)]);
  });

  it("a parent's rewrite of a child's weights turns the view shortcut off (the rewrite runs first)", async () => {
    const m = new SelfAttention(8, 2);
    const w = weights(m, 3);
    const src = new ViewSource(w);
    m.loadStateDict(src);
    expect(src.requests).toEqual([]);
    expect(src.reads.sort()).toEqual(['qkv.bias', 'qkv.weight']);
    const ref = new SelfAttention(8, 2);
    ref.loadStateDict(new MapSource(w));
    const x = tf.randomNormal([1, 3, 8], 0, 1, 'float32', 4);
    const [a, b] = [m.qkv.forward(x), ref.qkv.forward(x)];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([a, b, x, ...Object.values(w)]);
    m.dispose();
    ref.dispose();
  });

  it('a failed view read names the module and leaves nothing half-installed', () => {
    const m = new Holder();
    const w = weights(m, 5);
    const bad: TensorSource = Object.assign(new MapSource(w), {
      readViews(key: string): tf.Tensor[] {
        throw new Error(`disk error on ${key}`);
      },
    });
    const n0 = tf.memory().numTensors;
    expect(() => m.loadStateDict(bad)).toThrow(/^a: reading its weights in the derived layout failed: disk error on a\.weight/);
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose(Object.values(w));
  });

  it('finishLoad runs only declared derivations, parents first', () => {
    const order: string[] = [];
    class Leaf extends Module {
      constructor(readonly tag: string) {
        super();
      }
      override derivation(): WeightDerivation {
        return { mode: 'computed', sources: [], derive: () => order.push(this.tag) };
      }
    }
    class Plain extends Module {
      readonly leaf = this.module('leaf', new Leaf('child'));
    }
    class Top extends Leaf {
      readonly inner = this.module('inner', new Plain());
    }
    new Top('parent').finishLoad();
    expect(order).toEqual(['parent', 'child']);
  });

  it('the planner counts one more copy for `copy` derivations and none for `replace`', () => {
    class Net extends Module {
      readonly lin = this.module('lin', new TransposedLinear(16, 32));
      readonly conv = this.module('conv', new Conv1d(4, 8, 3, { weightNorm: true }));
    }
    const n = new Net();
    const f32 = (s: number[]) => s.reduce((a, b) => a * b, 1) * 4;
    // weight_g [8,1,1] and weight_v [8,4,3] are the sources of the conv's filter.
    expect(residentWeightBytes(n)).toBe(n.parameterBytes() + f32([8, 1, 1]) + f32([8, 4, 3]));
    expect(residentWeightBytes(n.lin)).toBe(n.lin.parameterBytes());
  });
});
