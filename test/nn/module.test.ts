import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { MapSource } from '../../src/io/safetensors.ts';
import { Activation, Linear } from '../../src/nn/layers.ts';
import { Module, ModuleList, Sequential, StateDictError } from '../../src/nn/module.ts';

class Block extends Module {
  readonly attn = this.module('attn', new Linear(4, 4, { bias: false }));
  readonly ff = this.module('ff', new Sequential(new Linear(4, 8), new Activation('gelu'), new Linear(8, 4)));
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => x.add(this.ff.forward(this.attn.forward(x))));
  }
}

class Tiny extends Module {
  readonly layers = this.module('layers', new ModuleList([new Block(), new Block()]));
  readonly scale = this.buffer('scale', [1]);
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.layers.items.reduce((h, b) => b.forward(h), x).mul(this.scale.value));
  }
}

class Root extends Module {
  readonly model = this.module('model', new Tiny());
}

function weightsFor(m: Module): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  let seed = 0;
  for (const [k, shape] of Object.entries(m.parameterManifest())) out.set(k, tf.randomNormal(shape, 0, 0.3, 'float32', seed++));
  return out;
}

describe('Module', () => {
  it('names parameters exactly like a torch state dict', () => {
    expect(new Root().parameterManifest()).toEqual({
      'model.scale': [1],
      'model.layers.0.attn.weight': [4, 4],
      'model.layers.0.ff.0.weight': [8, 4],
      'model.layers.0.ff.0.bias': [8],
      'model.layers.0.ff.2.weight': [4, 8],
      'model.layers.0.ff.2.bias': [4],
      'model.layers.1.attn.weight': [4, 4],
      'model.layers.1.ff.0.weight': [8, 4],
      'model.layers.1.ff.0.bias': [8],
      'model.layers.1.ff.2.weight': [4, 8],
      'model.layers.1.ff.2.bias': [4],
    });
    expect(new Root().getSubmodule('model.layers.1.ff').path).toBe('model.layers.1.ff');
  });

  it('builds a manifest without allocating tensors', () => {
    const before = tf.memory().numTensors;
    new Root().parameterManifest();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('strict loading reports every missing, unexpected and mis-shaped key at once', () => {
    const root = new Root();
    const w = weightsFor(root);
    w.delete('model.layers.0.attn.weight');
    w.get('model.layers.1.ff.0.bias')!.dispose();
    w.set('model.layers.1.ff.0.bias', tf.zeros([7]));
    w.set('model.extra.weight', tf.zeros([2]));
    let err: StateDictError | null = null;
    try {
      root.loadStateDict(new MapSource(w));
    } catch (e) {
      err = e as StateDictError;
    }
    expect(err).toBeInstanceOf(StateDictError);
    expect(err!.message).toContain('missing keys (1):\n  model.layers.0.attn.weight');
    expect(err!.message).toContain('unexpected keys (1):\n  model.extra.weight');
    expect(err!.message).toContain('model.layers.1.ff.0.bias: expected [8], found [7]');
    // nothing was loaded by the failed strict call
    expect([...root.namedTensors()].every(([, p]) => !p.loaded)).toBe(true);
    const report = root.loadStateDict(new MapSource(w), { strict: false });
    expect(report.missing).toEqual(['model.layers.0.attn.weight']);
    expect(report.loaded.length).toBe(9);
    root.dispose();
    for (const t of w.values()) t.dispose();
  });

  it('loads under a prefix and captures named module outputs during one forward', async () => {
    const w = weightsFor(new Root());
    // the same weights as a checkpoint would hold them, under an extra top-level prefix
    const prefixed = new Map<string, tf.Tensor>([...w].map(([k, v]) => [`ckpt.${k}`, v] as const));
    prefixed.set('other.weight', w.get('model.scale')!);
    const root = new Root();
    root.loadStateDict(new MapSource(prefixed), { prefix: 'ckpt.' });
    const x = tf.randomNormal([2, 4], 0, 1, 'float32', 42);
    const before = tf.memory().numTensors;
    const { result, captures } = await root.capture(['model.layers.0', 'model.layers.1.ff.0'], () => root.model.forward(x));
    expect(Object.keys(captures).sort()).toEqual(['model.layers.0', 'model.layers.1.ff.0']);
    const h0 = root.model.layers.at(0).forward(x);
    expect(Array.from(await captures['model.layers.0'].data())).toEqual(Array.from(await h0.data()));
    expect(captures['model.layers.1.ff.0'].shape).toEqual([2, 8]);
    tf.dispose([result, h0, ...Object.values(captures)]);
    expect(tf.memory().numTensors).toBe(before);
    await expect(root.capture(['model.nope'], () => 0)).rejects.toThrow(/no module "model.nope"/);
    root.dispose();
    x.dispose();
    for (const t of w.values()) t.dispose();
  });

  it('repeated calls of a captured module get .k suffixes', async () => {
    const root = new Root();
    const w = weightsFor(root);
    root.loadStateDict(new MapSource(w));
    const x = tf.ones([1, 4]);
    const { result, captures } = await root.capture(['model.layers.0.attn'], () =>
      tf.tidy(() => root.model.forward(root.model.forward(x))),
    );
    expect(Object.keys(captures).sort()).toEqual(['model.layers.0.attn', 'model.layers.0.attn.1']);
    tf.dispose([result, x, ...Object.values(captures)]);
    root.dispose();
    for (const t of w.values()) t.dispose();
  });
});
