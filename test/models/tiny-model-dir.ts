// Tiny model directories laid out like `audiox download` leaves them, for loading tests.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { saveTensors } from '../../src/io/safetensors.ts';
import type { AudioXConfig } from '../../src/models/config.ts';
import { DEMO_DIR, demoWeight } from '../../src/models/demo.ts';
import { T5EncoderModel, type T5Config } from '../../src/models/t5.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';

const TINY_VAE = {
  type: 'autoencoder',
  iterate_batch: true,
  config: {
    encoder: { type: 'oobleck', requires_grad: false, config: { in_channels: 2, channels: 4, c_mults: [1, 2], strides: [2, 4], latent_dim: 8, use_snake: true } },
    decoder: { type: 'oobleck', config: { out_channels: 2, channels: 4, c_mults: [1, 2], strides: [2, 4], latent_dim: 4, use_snake: true, final_tanh: false } },
    bottleneck: { type: 'vae' },
    latent_dim: 4,
    downsampling_ratio: 8,
    io_channels: 2,
  },
};

/** An AudioX-MAF-MMDiT-shaped toy (the pipeline/mmdit_v2 fixture's config): an audio_autoencoder_v2 audio prompt. */
export function tinyMMDiTConfig(audioPromptExtra: Record<string, unknown> = {}): AudioXConfig {
  return JSON.parse(
    JSON.stringify({
      model_type: 'diffusion_cond',
      sample_rate: 44100,
      sample_size: 128,
      video_fps: 5,
      audio_channels: 2,
      model: {
        io_channels: 4,
        pretransform: TINY_VAE,
        conditioning: {
          cond_dim: 768,
          configs: [
            {
              id: 'audio_prompt',
              type: 'audio_autoencoder_v2',
              config: { sample_rate: 44100, latent_seq_len: 20, pretransform_config: TINY_VAE, ...audioPromptExtra },
            },
          ],
        },
        diffusion: {
          type: 'mmdit',
          cross_attention_cond_ids: ['video_prompt', 'text_prompt', 'audio_prompt'],
          global_cond_ids: [],
          config: {
            io_channels: 4, embed_dim: 32, depth: 2, num_heads: 8, cond_token_dim: 32, global_cond_dim: 0,
            project_cond_tokens: false, transformer_type: 'continuous_transformer', _latent_seq_len: 17,
          },
        },
      },
    }),
  ) as AudioXConfig;
}

export const AUDIO_PROMPT_VAE = 'conditioner.conditioners.audio_prompt.pretransform.';

/**
 * Writes config.json and model.safetensors (deterministic demo weights of every tensor for which `keep`
 * is true, with `salt` mixed into the seeds). Returns the keys written.
 */
export async function writeModelDir(
  dir: string,
  config: AudioXConfig,
  opts: { keep?: (key: string) => boolean; salt?: string } = {},
): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const w = createModelFromConfig(config);
  try {
    const keep = opts.keep ?? (() => true);
    const tensors = Object.fromEntries(
      [...w.namedTensors()].filter(([k]) => keep(k)).map(([k, p]) => [k, demoWeight(`${opts.salt ?? ''}${k}`, p)]),
    );
    await saveTensors(path.join(dir, 'model.safetensors'), tensors);
    tf.dispose(Object.values(tensors));
    return Object.keys(tensors);
  } finally {
    w.dispose();
  }
}

/**
 * Writes the audio prompt's autoencoder weights as a separate file, keys renamed by `layout` from the
 * model keys' tail (`model.encoder.…`); the reference's layout (AutoencoderPretransform state dict) by default.
 */
export async function writeVaeFile(
  file: string,
  config: AudioXConfig,
  opts: { layout?: (rest: string) => string; salt?: string; drop?: number } = {},
): Promise<void> {
  const w = createModelFromConfig(config);
  try {
    const layout = opts.layout ?? ((r: string) => r);
    const entries = [...w.namedTensors()].filter(([k]) => k.startsWith(AUDIO_PROMPT_VAE)).slice(opts.drop ?? 0);
    const tensors = Object.fromEntries(entries.map(([k, p]) => [layout(k.slice(AUDIO_PROMPT_VAE.length)), demoWeight(`${opts.salt ?? 'vae:'}${k}`, p)]));
    await saveTensors(file, tensors);
    tf.dispose(Object.values(tensors));
  } finally {
    w.dispose();
  }
}

/** A tiny T5 snapshot directory (the demo's encoder and tokenizer) as a text encoder download leaves it. */
export async function writeT5Dir(dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const demo = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8')) as { audiox_ts: { t5: T5Config } };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(demo.audiox_ts.t5));
  fs.copyFileSync(path.join(DEMO_DIR, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const t5 = T5EncoderModel.fromConfig(demo.audiox_ts.t5);
  const tensors = Object.fromEntries([...t5.namedTensors()].map(([k, p]) => [k, demoWeight(k, p)]));
  await saveTensors(path.join(dir, 'model.safetensors'), tensors);
  tf.dispose(Object.values(tensors));
}
