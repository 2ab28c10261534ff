// The audio prompt's autoencoder weights from VAE.safetensors (the config's pretransform_ckpt_path) when
// model.safetensors does not carry them; a clear error when no file does.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { MissingWeightsError, vaeFileCandidates } from '../../src/models/conditioner-weights.ts';
import type { AudioXConfig } from '../../src/models/config.ts';
import type { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { AutoencoderPretransform, type PretransformConfig } from '../../src/models/vae/pretransform.ts';
import { AUDIO_PROMPT_VAE, tinyMMDiTConfig, writeModelDir, writeVaeFile } from './tiny-model-dir.ts';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-vae-weights-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const notAudioPromptVae = (k: string) => !k.startsWith(AUDIO_PROMPT_VAE);
const x = () => tf.tidy(() => tf.sin(tf.range(0, 2 * 160).reshape([1, 2, 160]).mul(0.05)) as tf.Tensor3D);

/** encode (posterior mean) with the loaded model's audio prompt autoencoder. */
function promptEncode(m: AudioXModel): Float32Array {
  const pre = (m.wrapper.conditioner.conditioners.entries.get('audio_prompt') as unknown as { pretransform: AutoencoderPretransform }).pretransform;
  const input = x();
  const z = pre.encode(input, { meanOnly: true });
  const out = z.dataSync() as Float32Array;
  tf.dispose([input, z]);
  return out;
}

/** The same encode with a standalone autoencoder loaded from `file` (keys under `prefix`). */
function referenceEncode(config: AudioXConfig, file: string, prefix: string): Float32Array {
  const cfg = config.model.conditioning.configs[0].config.pretransform_config as PretransformConfig;
  const pre = AutoencoderPretransform.fromConfig(cfg);
  const f = SafetensorsFile.open(file);
  try {
    pre.loadStateDict(f, { prefix, strict: false });
  } finally {
    f.close();
  }
  const input = x();
  const z = pre.encode(input, { meanOnly: true });
  const out = z.dataSync() as Float32Array;
  tf.dispose([input, z]);
  pre.dispose();
  return out;
}

describe('the audio prompt autoencoder from VAE.safetensors', () => {
  it('takes the keys model.safetensors lacks from the file pretransform_ckpt_path names (converted), resident and streamed', async () => {
    const dir = path.join(tmp, 'AudioX-MAF-MMDiT');
    const config = tinyMMDiTConfig({ pretransform_ckpt_path: './model/VAE.ckpt' }); // as in the reference's checkout
    const written = await writeModelDir(dir, config, { keep: notAudioPromptVae });
    expect(written.some((k) => k.startsWith(AUDIO_PROMPT_VAE))).toBe(false);
    await writeVaeFile(path.join(dir, 'VAE.safetensors'), config);
    const want = referenceEncode(config, path.join(dir, 'VAE.safetensors'), '');

    const before = tf.memory().numTensors;
    const m = await loadModel(dir);
    expect(promptEncode(m)).toEqual(want);
    // The main VAE still comes from model.safetensors.
    expect(m.wrapper.pretransform.model.encoder).toBeDefined();
    m.dispose();
    const streamed = await loadModel(dir, { streamWeights: true });
    expect(promptEncode(streamed)).toEqual(want);
    streamed.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('model.safetensors wins where it has the keys (the reference copies model.ckpt over VAE.ckpt)', async () => {
    const dir = path.join(tmp, 'main-wins');
    const config = tinyMMDiTConfig({ pretransform_ckpt_path: 'VAE.ckpt' });
    await writeModelDir(dir, config);
    await writeVaeFile(path.join(dir, 'VAE.safetensors'), config, { salt: 'other:' });
    const m = await loadModel(dir);
    const got = promptEncode(m);
    m.dispose();
    expect(got).toEqual(referenceEncode(config, path.join(dir, 'model.safetensors'), AUDIO_PROMPT_VAE));
    expect(got).not.toEqual(referenceEncode(config, path.join(dir, 'VAE.safetensors'), ''));
  });

  it.each([
    ['a bare autoencoder state dict (encoder.*)', (r: string) => r.replace(/^model\./, '')],
    ['an autoencoder training checkpoint (autoencoder.*)', (r: string) => `autoencoder.${r.replace(/^model\./, '')}`],
    ['a full model checkpoint', (r: string) => `${AUDIO_PROMPT_VAE}${r}`],
  ])('reads %s, and VAE.safetensors without pretransform_ckpt_path', async (_what, layout) => {
    const dir = path.join(tmp, `layout-${Math.random().toString(36).slice(2)}`);
    const config = tinyMMDiTConfig();
    await writeModelDir(dir, config, { keep: notAudioPromptVae });
    await writeVaeFile(path.join(dir, 'VAE.safetensors'), config, { layout });
    await writeVaeFile(path.join(tmp, 'plain.safetensors'), config);
    const m = await loadModel(dir);
    expect(promptEncode(m)).toEqual(referenceEncode(config, path.join(tmp, 'plain.safetensors'), ''));
    m.dispose();
  });

  it('looks for the conversion of pretransform_ckpt_path, the file by its name in the model directory, then VAE.safetensors', () => {
    expect(vaeFileCandidates('/m', './model/VAE.ckpt')).toEqual([
      '/m/model/VAE.safetensors',
      '/m/model/VAE.ckpt',
      '/m/VAE.safetensors',
      '/m/VAE.ckpt',
    ]);
    expect(vaeFileCandidates('/m', '/abs/ae.safetensors')).toEqual(['/abs/ae.safetensors', '/m/ae.safetensors', '/m/VAE.safetensors']);
    expect(vaeFileCandidates('/m', undefined)).toEqual(['/m/VAE.safetensors']);
  });
});

describe('missing autoencoder weights', () => {
  const load = async (dir: string) => {
    const before = tf.memory().numTensors;
    const err = await loadModel(dir).catch((e: unknown) => e);
    expect(tf.memory().numTensors).toBe(before);
    expect(err).toBeInstanceOf(MissingWeightsError);
    return (err as Error).message;
  };

  it('names a few missing keys, their count, the files looked in and the command to run', async () => {
    const dir = path.join(tmp, 'missing', 'AudioX-MAF-MMDiT');
    const config = tinyMMDiTConfig({ pretransform_ckpt_path: 'VAE.ckpt' });
    await writeModelDir(dir, config, { keep: notAudioPromptVae });
    const w = (await import('../../src/models/wrapper.ts')).createModelFromConfig(config);
    const n = [...w.namedTensors()].filter(([k, p]) => k.startsWith(AUDIO_PROMPT_VAE) && !p.optional).length;
    w.dispose();
    const msg = await load(dir);
    expect(msg).toContain(`model "AudioX-MAF-MMDiT": the weights of the "audio_prompt" conditioner's autoencoder (its pretransform_ckpt_path is "VAE.ckpt") are missing`);
    expect(msg).toContain(`${n} keys are not in ${path.join(dir, 'model.safetensors')} (${AUDIO_PROMPT_VAE}model.`);
    expect(msg).toContain(`, … and ${n - 3} more)`);
    expect(msg).toContain(`looked in ${path.join(dir, 'VAE.safetensors')} (absent); ${path.join(dir, 'VAE.ckpt')} (absent)`);
    expect(msg).toMatch(/Run `audiox download AudioX-MAF-MMDiT` \(it fetches VAE\.ckpt and converts it to VAE\.safetensors\)\.$/);
  });

  it('an unconverted VAE.ckpt is pointed at `audiox convert`; a model of its own gets the convert command', async () => {
    const dir = path.join(tmp, 'unconverted');
    await writeModelDir(dir, tinyMMDiTConfig(), { keep: notAudioPromptVae });
    fs.writeFileSync(path.join(dir, 'VAE.ckpt'), 'not read');
    const cfg = tinyMMDiTConfig({ pretransform_ckpt_path: 'VAE.ckpt' });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    const msg = await load(dir);
    expect(msg).toContain(`${path.join(dir, 'VAE.ckpt')} (a PyTorch checkpoint: convert it with \`audiox convert ${path.join(dir, 'VAE.ckpt')} ${path.join(dir, 'VAE.safetensors')}\`)`);
    expect(msg).toContain(`Convert the autoencoder's checkpoint into the model directory: \`audiox convert VAE.ckpt ${path.join(dir, 'VAE.safetensors')}\``);
  });

  it('a VAE file that lacks some of the keys is reported with how many it has', async () => {
    const dir = path.join(tmp, 'partial');
    const config = tinyMMDiTConfig();
    await writeModelDir(dir, config, { keep: notAudioPromptVae });
    await writeVaeFile(path.join(dir, 'VAE.safetensors'), config, { drop: 2 });
    const msg = await load(dir);
    expect(msg).toMatch(new RegExp(`${path.join(dir, 'VAE.safetensors').replace(/[.]/g, '\\.')} \\(has (\\d+) of the \\d+ keys\\)`));
  });
});
