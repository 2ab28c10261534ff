// A user's own model (--model-config/--ckpt-path): a training-style .ckpt converted into a temporary cache, cache
// hits and re-conversion, EMA choice, bad configs and mismatched checkpoints (nothing left in the cache), the
// cache listing and removal, and a text encoder the config names fetched from a mock hub.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SafetensorsFile, saveTensors } from '../../src/io/safetensors.ts';
import { listCachedModels, removeCachedModel, cachedGenerationModels } from '../../src/models/cache.ts';
import type { AudioXConfig } from '../../src/models/config.ts';
import { prepareCustomModel } from '../../src/models/custom.ts';
import { localModels } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { inspectModel } from '../../src/models/source.ts';
import { MockHub } from '../mock-hub.ts';
import { customConfig, modelTensors, trainingCheckpoint, writeTrainingCheckpoint } from './custom-model-files.ts';
import { writeT5Dir } from './tiny-model-dir.ts';

const saved = { AUDIOX_HOME: process.env.AUDIOX_HOME, HF_ENDPOINT: process.env.HF_ENDPOINT };
let tmp: string;
let home: string;
let configFile: string;
let ckpt: string;

function writeConfig(file: string, c: AudioXConfig | Record<string, unknown>): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(c));
  return file;
}

/** What the cache's models directory holds (temp directories included). */
function cacheEntries(): string[] {
  const root = path.join(home, 'models');
  return fs.existsSync(root) ? fs.readdirSync(root).sort() : [];
}

function readTensor(file: string, key: string): Float32Array {
  const f = SafetensorsFile.open(file);
  try {
    const t = f.read(key);
    const v = t.dataSync() as Float32Array;
    t.dispose();
    return Float32Array.from(v);
  } finally {
    f.close();
  }
}

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-custom-'));
  home = path.join(tmp, 'home');
  process.env.AUDIOX_HOME = home;
  configFile = writeConfig(path.join(tmp, 'run', 'config.json'), customConfig());
  ckpt = path.join(tmp, 'run', 'checkpoints', 'model.ckpt');
  writeTrainingCheckpoint(ckpt, customConfig());
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('prepareCustomModel', () => {
  it('converts a training checkpoint once (EMA weights, leftovers named), hits the cache, re-converts an edited one', async () => {
    const first = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    expect(first.converted).toBe(true);
    expect(first.name).toBe('checkpoints-model');
    expect(first.notes.join('\n')).toMatch(/EMA copy for model\.\*/);
    expect(first.notes.join('\n')).toMatch(/not part of the model, left out: losses\.mrstft\.window/);
    const weights = path.join(first.dir, 'model.safetensors');
    const f = SafetensorsFile.open(weights);
    const keys = f.keys();
    f.close();
    expect(keys.some((k) => k.startsWith('diffusion.') || k.startsWith('diffusion_ema.'))).toBe(false);
    // model.* from the EMA copy, the rest (pretransform, conditioners) from diffusion.*.
    const ema = new Map(modelTensors(customConfig(), 'ema:').map((t) => [t.key, t.data]));
    const online = new Map(modelTensors(customConfig()).map((t) => [t.key, t.data]));
    const dit = keys.find((k) => k.startsWith('model.'))!;
    const vae = keys.find((k) => k.startsWith('pretransform.'))!;
    expect(readTensor(weights, dit)).toEqual(ema.get(dit));
    expect(readTensor(weights, vae)).toEqual(online.get(vae));

    const again = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    expect(again).toMatchObject({ name: first.name, converted: false });

    const later = new Date(Date.now() + 5000);
    fs.utimesSync(ckpt, later, later);
    const touched = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    expect(touched).toMatchObject({ name: first.name, converted: true });

    const noEma = await prepareCustomModel({ config: configFile, checkpoint: ckpt, ema: false });
    expect(noEma).toMatchObject({ name: first.name, converted: true });
    expect(noEma.notes[0]).toMatch(/online weights, --no-ema/);
    expect(readTensor(path.join(noEma.dir, 'model.safetensors'), dit)).toEqual(online.get(dit));
    expect(cacheEntries()).toEqual([first.name]);
  });

  it('takes a .safetensors checkpoint with training prefixes the same way', async () => {
    const file = path.join(tmp, 'run', 'tuned.safetensors');
    const tensors = Object.fromEntries(modelTensors(customConfig()).map((t) => [`diffusion.${t.key}`, tf.tensor(t.data, t.shape)]));
    await saveTensors(file, tensors);
    tf.dispose(Object.values(tensors));
    const r = await prepareCustomModel({ config: configFile, checkpoint: file });
    expect(r).toMatchObject({ name: 'tuned', converted: true });
    expect(r.notes[0]).toMatch(/weights: diffusion\.\* \(online weights\)/);
    const f = SafetensorsFile.open(path.join(r.dir, 'model.safetensors'));
    expect(f.keys().sort()).toEqual(modelTensors(customConfig()).map((t) => t.key).sort());
    f.close();
    expect((await prepareCustomModel({ config: configFile, checkpoint: file })).converted).toBe(false);
  });

  it('never names a conversion after a downloadable model or demo', async () => {
    for (const stem of ['AudioX', 't5-small', 'demo']) {
      const file = path.join(tmp, 'run', `${stem}.ckpt`);
      fs.copyFileSync(ckpt, file);
      expect((await prepareCustomModel({ config: configFile, checkpoint: file })).name).toBe(`${stem}-2`);
    }
  });

  it('refuses --ema for a checkpoint without an EMA copy, writing nothing', async () => {
    writeTrainingCheckpoint(ckpt, customConfig(), { ema: false });
    await expect(prepareCustomModel({ config: configFile, checkpoint: ckpt, ema: true })).rejects.toThrow(/--ema: the checkpoint has no EMA weights/);
    expect(cacheEntries()).toEqual([]);
  });

  it.each([
    ['an unknown model type', (c: AudioXConfig) => Object.assign(c, { model_type: 'autoencoder' }), /model_type must be "diffusion_cond"/],
    ['no diffusion section', (c: AudioXConfig) => delete (c.model as Partial<AudioXConfig['model']>).diffusion, /model\.diffusion\.type/],
    ['no pretransform', (c: AudioXConfig) => delete (c.model as Partial<AudioXConfig['model']>).pretransform, /missing model\.pretransform\.config/],
    [
      'a conditioner we do not implement',
      (c: AudioXConfig) => (c.model.conditioning.configs[0].type = 'clap_text'),
      /model\.conditioning\.configs\[0\]\.type \(conditioner "audio_prompt"\).*"clap_text" is not supported/,
    ],
    [
      'a text encoder we cannot load',
      (c: AudioXConfig) => c.model.conditioning.configs.push({ id: 'text_prompt', type: 't5', config: { t5_model_name: 't5-11b', dim: 32, max_length: 8 } }),
      /t5_model_name.*t5-11b/,
    ],
  ])('a config with %s fails naming the key, before the checkpoint is read, leaving the cache empty', async (_, edit, message) => {
    const c = customConfig();
    edit(c);
    writeConfig(configFile, c);
    fs.writeFileSync(ckpt, 'not a checkpoint'); // never opened: the config is refused first
    await expect(prepareCustomModel({ config: configFile, checkpoint: ckpt })).rejects.toThrow(message);
    expect(cacheEntries()).toEqual([]);
  });

  it('a checkpoint of another model size fails naming the mismatched keys, leaving the cache empty', async () => {
    writeTrainingCheckpoint(ckpt, customConfig({ embedDim: 96, numHeads: 3, depth: 2 }));
    const err = await prepareCustomModel({ config: configFile, checkpoint: ckpt }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/does not match the model its config describes/);
    expect((err as Error).message).toMatch(/shape mismatches \(\d+\): model\.\S+ \(config: \[\d+[,\d]*\], checkpoint: \[\d+[,\d]*\]\)/);
    expect((err as Error).message).toMatch(/in the checkpoint but not in the model \(\d+\): model\.model\.transformer\.layers\.1\./);
    expect((err as Error).message).toMatch(/Nothing was written to the cache/);
    expect(cacheEntries()).toEqual([]);
  });

  it('a missing checkpoint or config file is named', async () => {
    await expect(prepareCustomModel({ config: configFile, checkpoint: path.join(tmp, 'none.ckpt') })).rejects.toThrow(/--ckpt-path .*none\.ckpt: cannot read it \(ENOENT\)/);
    await expect(prepareCustomModel({ config: path.join(tmp, 'none.json'), checkpoint: ckpt })).rejects.toThrow(/--model-config .*none\.json: cannot read it/);
    expect(cacheEntries()).toEqual([]);
  });
});

describe('the model cache', () => {
  it('lists a custom conversion (variant, parameters, size, dtype, last used), offers it to pickers and removes it', async () => {
    const { name } = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    const listed = listCachedModels();
    expect(listed).toHaveLength(1);
    const params = modelTensors(customConfig()).reduce((n, t) => n + t.data.length, 0);
    expect(listed[0]).toMatchObject({ name, kind: 'custom', variant: 'dit', parameters: params, dtype: 'F32', lastUsed: null, source: ckpt });
    expect(listed[0].bytes).toBeGreaterThan(params * 4);
    expect(cachedGenerationModels()).toEqual([name]);
    expect(localModels()).toEqual(['demo', name]);
    expect(inspectModel(name).kind).toBe('custom');

    const m = await loadModel(name);
    m.dispose();
    expect(listCachedModels()[0].lastUsed).toBeInstanceOf(Date);

    expect(removeCachedModel(name).name).toBe(name);
    expect(listCachedModels()).toEqual([]);
    expect(() => removeCachedModel(name)).toThrow(/no cached model "checkpoints-model" .*cached: none/);
    expect(() => inspectModel(name)).toThrow(/unknown model "checkpoints-model".*--model-config/);
  });

  it('loadModel takes { config, checkpoint } and frees every tensor it made', async () => {
    const before = tf.memory().numTensors;
    const m = await loadModel({ config: configFile, checkpoint: ckpt });
    expect(m.name).toBe('checkpoints-model');
    expect(m.info()).toMatchObject({ variant: 'dit', synchformer: false });
    expect(m.info().conditioners).toEqual([{ id: 'audio_prompt', type: 'mel_spec' }]);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('a custom config that needs a text encoder', () => {
  const hub = new MockHub();
  let encoderDir: string;
  beforeAll(async () => {
    await hub.start();
    encoderDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-t5-'));
    await writeT5Dir(encoderDir);
  });
  afterAll(async () => {
    await hub.stop();
    fs.rmSync(encoderDir, { recursive: true, force: true });
  });

  it('downloads it once into the shared cache (as for the released models), then only reads it', async () => {
    process.env.HF_ENDPOINT = hub.hubUrl;
    hub.reset();
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      hub.serve('google-t5/t5-small', f, fs.readFileSync(path.join(encoderDir, f)), f === 'model.safetensors');
    }
    const c = customConfig({ t5ModelName: 't5-small' });
    writeConfig(configFile, c);
    writeTrainingCheckpoint(ckpt, c);
    const r = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    expect(r.downloaded).toEqual(['t5-small']);
    expect(fs.existsSync(path.join(home, 'models', 't5-small', 'model.safetensors'))).toBe(true);
    const gets = hub.gotten('hub').filter((l) => l.method === 'GET').length;
    expect(gets).toBeGreaterThan(0);

    const m = await loadModel({ config: configFile, checkpoint: ckpt });
    m.dispose();
    expect(hub.gotten('hub').filter((l) => l.method === 'GET').length).toBe(gets);
    expect(listCachedModels().map((x) => [x.name, x.kind])).toEqual([[r.name, 'custom'], ['t5-small', 'text-encoder']]);
  });

  it('a sync-feature video conditioner gets the Synchformer downloaded once into the shared cache', async () => {
    process.env.HF_ENDPOINT = hub.hubUrl;
    hub.reset();
    const synch = trainingCheckpoint([{ key: 'vfeat_extractor.patch_embed.proj.bias', data: new Float32Array(4), shape: [4] }]);
    hub.serve('HKUSTAudio/AudioX-MAF', 'synchformer_state_dict.pth', synch, true);
    const c = customConfig({ video: true });
    writeConfig(configFile, c);
    writeTrainingCheckpoint(ckpt, c);
    const r = await prepareCustomModel({ config: configFile, checkpoint: ckpt });
    expect(r.downloaded).toEqual(['synchformer']);
    const file = path.join(home, 'models', 'synchformer', 'synchformer.safetensors');
    expect(fs.existsSync(file)).toBe(true);
    expect(inspectModel(r.name).synchformerFile).toBe(file);
    expect(listCachedModels().map((x) => [x.name, x.kind])).toEqual([[r.name, 'custom'], ['synchformer', 'synchformer']]);
    const gets = hub.gotten('hub').length;
    expect((await prepareCustomModel({ config: configFile, checkpoint: ckpt })).downloaded).toEqual([]);
    expect(hub.gotten('hub').length).toBe(gets);
  });

  it('an unreachable hub fails with the encoder named and no model in the cache', async () => {
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9';
    const c = customConfig({ t5ModelName: 't5-small' });
    writeConfig(configFile, c);
    writeTrainingCheckpoint(ckpt, c);
    await expect(prepareCustomModel({ config: configFile, checkpoint: ckpt })).rejects.toThrow(/text encoder "t5-small" is not in the cache .*audiox download t5-small/);
    expect(cacheEntries().filter((n) => n !== 't5-small')).toEqual([]);
  });
});
