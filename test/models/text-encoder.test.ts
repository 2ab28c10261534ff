// t5_model_name selects the text encoder that is downloaded and loaded; unsupported names are refused.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { preflightModel } from '../../src/cli/commands/generate.ts';
import { TEXT_ENCODERS, textEncoderModel, textEncoderNamesIn } from '../../src/hub/models.ts';
import type { AudioXConfig } from '../../src/models/config.ts';
import { T5Conditioner } from '../../src/models/conditioners/text/t5.ts';
import { ModelNotFoundError, textEncoders } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { tinyMMDiTConfig, writeModelDir, writeT5Dir } from './tiny-model-dir.ts';

let tmp: string;
const savedHome = process.env.AUDIOX_HOME;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-t5-select-'));
});
afterEach(() => {
  if (savedHome === undefined) delete process.env.AUDIOX_HOME;
  else process.env.AUDIOX_HOME = savedHome;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The tiny MMDiT toy plus a text conditioner (encoder width 32, like the demo's T5). */
function withText(t5ModelName: string | undefined): AudioXConfig {
  const c = tinyMMDiTConfig();
  const config: Record<string, unknown> = { dim: 32, max_length: 8 };
  if (t5ModelName !== undefined) config.t5_model_name = t5ModelName;
  c.model.conditioning.configs.push({ id: 'text_prompt', type: 't5', config });
  return c;
}

describe('textEncoders', () => {
  it('maps each t5_model_name to the encoder in the download cache (t5-base when absent)', () => {
    process.env.AUDIOX_HOME = '/cache';
    expect(textEncoders(withText('google/flan-t5-large'))).toEqual([
      { id: 'text_prompt', t5ModelName: 'google/flan-t5-large', name: 'flan-t5-large', dir: path.join('/cache', 'models', 'flan-t5-large') },
    ]);
    expect(textEncoders(withText(undefined))[0]).toMatchObject({ t5ModelName: 't5-base', name: 't5-base', dir: path.join('/cache', 'models', 't5-base') });
    expect(textEncoders(tinyMMDiTConfig())).toEqual([]);
    expect(textEncoders(withText('anything'), '/my/t5')).toEqual([{ id: 'text_prompt', t5ModelName: 'anything', name: 't5', dir: '/my/t5' }]);
  });

  it('refuses an unknown or unsupported encoder, listing the supported ones', () => {
    const supported = Object.keys(TEXT_ENCODERS).join(', ');
    expect(() => textEncoders(withText('bert-base'))).toThrow(ModelNotFoundError);
    expect(() => textEncoders(withText('bert-base'))).toThrow(
      `model.conditioning.configs[1] ("text_prompt"): t5_model_name "bert-base" is not supported; supported text encoders: ${supported}. Set t5_model_name`,
    );
    expect(() => textEncoders(withText('t5-3b'))).toThrow(/"t5-3b" is not supported; .*\(the reference accepts it, but its hub checkpoint is sharded or too large/);
  });

  it('every supported name is one the reference knows, with a downloadable model of the same width', () => {
    for (const [t5Name, model] of Object.entries(TEXT_ENCODERS)) {
      expect(textEncoderModel(t5Name)).toBe(model);
      expect(() => new T5Conditioner({ output_dim: 768, t5_model_name: t5Name })).not.toThrow();
    }
    expect(textEncoderModel(undefined)).toBe('t5-base');
    expect(textEncoderNamesIn(withText('t5-small'))).toEqual([{ name: 't5-small', where: 'model.conditioning.configs[1].config.t5_model_name' }]);
  });
});

describe('loading the selected encoder', () => {
  it('loads the encoder t5_model_name names from the cache, and says which download is missing', async () => {
    const home = path.join(tmp, 'home');
    process.env.AUDIOX_HOME = home;
    const dir = path.join(tmp, 'flan-model');
    await writeModelDir(dir, withText('google/flan-t5-small'));

    const before = tf.memory().numTensors;
    const err = await loadModel(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as Error).message).toBe(
      `model "flan-t5-small": ${path.join(home, 'models', 'flan-t5-small', 'model.safetensors')} is missing. Run \`audiox download flan-t5-small\` first.`,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(() => preflightModel(dir)).toThrow(/model "flan-t5-small": .* is missing\. Run `audiox download flan-t5-small` first\./);

    await writeT5Dir(path.join(home, 'models', 'flan-t5-small'));
    expect(preflightModel(dir).name).toBe('flan-model');
    const m = await loadModel(dir);
    const text = m.wrapper.conditioner.conditioners.entries.get('text_prompt') as T5Conditioner;
    const out = text.forward(['rain']);
    expect(out.embedding.shape).toEqual([1, 8, 768]);
    tf.dispose([out.embedding, out.mask]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('an unsupported t5_model_name fails preflight and loading before any weight is read', async () => {
    const dir = path.join(tmp, 'bad-t5');
    await writeModelDir(dir, withText('my-own-t5'));
    expect(() => preflightModel(dir)).toThrow(/t5_model_name "my-own-t5" is not supported; supported text encoders: t5-small, t5-base/);
    await expect(loadModel(dir)).rejects.toThrow(/t5_model_name "my-own-t5" is not supported/);
    // A released-style entry (no width override) is refused by name too, not by the conditioner's width table.
    const plain = tinyMMDiTConfig();
    plain.model.conditioning.configs.push({ id: 'text_prompt', type: 't5', config: { t5_model_name: 'my-own-t5' } });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(plain));
    await expect(loadModel(dir)).rejects.toThrow(/t5_model_name "my-own-t5" is not supported; supported text encoders: t5-small/);
  });
});
