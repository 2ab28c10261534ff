// A new modality needs no pipeline change: a conditioner type defined and registered here, named by a
// tiny config, flows through generate() (its input prepared, run, disposed; reused for a negative prompt
// because it does not read the prompt).
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioXConfig } from '../../src/models/config.ts';
import type { ConditionerOutput } from '../../src/models/conditioning.ts';
import type { Conditioner, ConditionerMedia, MediaField, PrepareOptions } from '../../src/models/conditioners/conditioner.ts';
import { buildConditioner, conditionerTypes, registerConditioner, unregisterConditioner } from '../../src/models/conditioners/registry.ts';
import { DEMO_DIR, initDemoWeights } from '../../src/models/demo.ts';
import { AudioXModel } from '../../src/models/load.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';
import { Module } from '../../src/nn/module.ts';
import { generate } from '../../src/pipeline/generate.ts';

const TYPE = 'toy-level';
const calls = { prepare: 0, condition: 0, dispose: 0 };

/** Conditions on one number per generation: two tokens filled with it. */
class ToyConditioner extends Module implements Conditioner<tf.Tensor> {
  readonly modality = 'level';
  readonly reads: readonly MediaField[] = ['byId'];
  constructor(readonly width: number) {
    super();
  }
  async prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<tf.Tensor> {
    calls.prepare++;
    const v = media.byId[opts.id];
    if (typeof v !== 'number') throw new Error(`toy conditioner "${opts.id}" needs a number`);
    return tf.fill([opts.batchSize], v);
  }
  condition(input: tf.Tensor): ConditionerOutput {
    calls.condition++;
    return tf.tidy(() => ({
      embedding: tf.broadcastTo(input.reshape([-1, 1, 1]), [input.shape[0], 2, this.width]),
      mask: tf.ones([input.shape[0], 2]),
    }));
  }
  disposeInput(input: tf.Tensor): void {
    calls.dispose++;
    input.dispose();
  }
  reuseKey(): null {
    return null;
  }
}

function toyConfig(): AudioXConfig {
  const config = JSON.parse(fs.readFileSync(`${DEMO_DIR}/config.json`, 'utf8')) as AudioXConfig;
  config.sample_size = 4 * 2048;
  config.model.conditioning.configs = [{ id: 'level', type: TYPE, config: {} }];
  const d = config.model.diffusion;
  d.cross_attention_cond_ids = ['level'];
  d.gate = false;
  delete d.gate_type;
  delete d.gate_type_config;
  return config;
}

let model: AudioXModel;

beforeAll(() => {
  registerConditioner(TYPE, (_entry, condDim) => new ToyConditioner(condDim));
  const config = toyConfig();
  const wrapper = createModelFromConfig(config);
  initDemoWeights(wrapper);
  model = new AudioXModel('toy', DEMO_DIR, config, wrapper, null, false);
});

afterAll(() => {
  model?.dispose();
  unregisterConditioner(TYPE);
});

describe('conditioner registry', () => {
  it('a conditioner type registered outside the project runs through generate()', async () => {
    expect(model.wrapper.conditioner.get('level')).toBeInstanceOf(ToyConditioner);
    const before = tf.memory().numTensors;
    const o = { steps: 3, seed: 1, normalize: false };
    const low = await generate(model, { ...o, conditionerInputs: { level: -2 } });
    const low2 = await generate(model, { ...o, conditionerInputs: { level: -2 } });
    const high = await generate(model, { ...o, conditionerInputs: { level: 2 } });
    expect(calls).toEqual({ prepare: 3, condition: 3, dispose: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(low.audio[0][0]).toEqual(low2.audio[0][0]);
    const diff = Math.max(...low.audio[0][0].map((v, i) => Math.abs(v - high.audio[0][0][i])));
    expect(diff).toBeGreaterThan(1e-6); // the conditioning reaches the model
  });

  it('a negative prompt reuses the output of a conditioner that does not read the prompt', async () => {
    const n = { ...calls };
    await generate(model, { steps: 2, seed: 1, prompt: 'a', negativePrompt: 'b', cfgScale: 3, conditionerInputs: { level: 1 } });
    expect(calls.prepare - n.prepare).toBe(1);
    expect(calls.condition - n.condition).toBe(1);
  });

  it("the conditioner's own input errors reach the caller; an unknown type lists the registered ones", async () => {
    await expect(generate(model, { steps: 2, seed: 1 })).rejects.toThrow('toy conditioner "level" needs a number');
    expect(conditionerTypes()).toEqual(expect.arrayContaining(['clip', 't5', 'audio_autoencoder', 'mel_spec', 'number', TYPE]));
    expect(() => registerConditioner(TYPE, () => new ToyConditioner(1))).toThrow(`conditioner type "${TYPE}" is already registered`);
    expect(() => buildConditioner({ id: 'x', type: 'nope', config: {} }, 8)).toThrow(/type "nope" is not supported \(supported: clip, .*toy-level\)/);
  });
});
