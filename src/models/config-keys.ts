// Which config.json keys this project reads, and which it deliberately ignores (with why). Keys are leaf
// paths; a conditioner entry is written `configs[<type>]`. Patterns: `*` = one path segment (or one
// conditioner type), `**` = any number of segments. test/models/config-keys.test.ts walks the released
// configs and fails on a key that is in neither list; README "Config keys we do not read" mirrors IGNORED.
import type { AudioXConfig } from './config.ts';

/** The pretransform sections: the model's own, and each audio conditioner's copy. */
const PRETRANSFORMS = ['model.pretransform', 'model.conditioning.configs[*].config.pretransform_config'];

function each(prefixes: string[], suffixes: string[], where: string): [string, string][] {
  return prefixes.flatMap((p) => suffixes.map((s): [string, string] => [`${p}.${s}`, where]));
}

/** Keys read, → where. */
export const CONFIG_KEYS_READ: Readonly<Record<string, string>> = Object.fromEntries([
  ['model_type', 'config.ts (validateConfig)'],
  ['sample_rate', 'wrapper.ts, pipeline (window, resampling)'],
  ['sample_size', 'load.ts (window length)'],
  ['video_fps', 'load.ts (AudioXModel.videoFps: CLIP frame rate)'],
  ['model.io_channels', 'wrapper.ts (latent channels)'],
  ...each(PRETRANSFORMS, ['type', 'scale', 'iterate_batch', 'chunked'], 'vae/pretransform.ts'),
  ...each(PRETRANSFORMS, ['model_half'], 'config-keys.ts (reported: we compute in float32)'),
  ...each(
    PRETRANSFORMS,
    ['config.encoder.type', 'config.encoder.config.*', 'config.decoder.type', 'config.decoder.config.*', 'config.bottleneck.type',
      'config.latent_dim', 'config.downsampling_ratio', 'config.io_channels'],
    'vae/pretransform.ts, vae/oobleck.ts',
  ),
  ['model.conditioning.cond_dim', 'conditioners/multi.ts (output_dim)'],
  ['model.conditioning.configs[*].id', 'conditioners/multi.ts'],
  ['model.conditioning.configs[*].type', 'conditioners/multi.ts'],
  ['model.conditioning.configs[t5].config.t5_model_name', 'load.ts (which text encoder to load), conditioners/text/t5.ts (width)'],
  ['model.conditioning.configs[t5].config.max_length', 'conditioners/text/t5.ts'],
  ['model.conditioning.configs[t5].config.project_out', 'conditioners/text/t5.ts'],
  ['model.conditioning.configs[t5].config.dim', 'conditioners/text/t5.ts (encoder width of tiny models)'],
  ['model.conditioning.configs[clip*].config.clip_model_name', 'conditioners/video/clip.ts (checked)'],
  ['model.conditioning.configs[clip*].config.video_fps', 'conditioners/video/clip.ts'],
  ['model.conditioning.configs[clip*].config._sizes.**', 'conditioners/multi.ts (sizes of tiny models)'],
  ['model.conditioning.configs[mel_spec].config.*', 'conditioners/audio/mel.ts'],
  ['model.conditioning.configs[audio_autoencoder*].config.sample_rate', 'conditioners/audio/autoencoder.ts'],
  ['model.conditioning.configs[audio_autoencoder*].config.pretransform_ckpt_path', 'conditioner-weights.ts (VAE.ckpt)'],
  ['model.conditioning.configs[audio_autoencoder_v2].config.latent_seq_len', 'conditioners/audio/autoencoder.ts'],
  ['model.conditioning.configs[audio_autoencoder_v2].config.mask_ratio_start', 'conditioners/audio/autoencoder.ts'],
  ['model.conditioning.configs[audio_autoencoder_v2].config.mask_ratio_end', 'conditioners/audio/autoencoder.ts'],
  ['model.diffusion.type', 'wrapper.ts'],
  ['model.diffusion.cross_attention_cond_ids', 'wrapper.ts'],
  ['model.diffusion.global_cond_ids', 'wrapper.ts'],
  ['model.diffusion.diffusion_objective', 'wrapper.ts'],
  ['model.diffusion.gate', 'wrapper.ts'],
  ['model.diffusion.gate_type', 'config.ts, wrapper.ts'],
  ['model.diffusion.gate_type_config.*', 'maf.ts'],
  ...['io_channels', 'embed_dim', 'depth', 'num_heads', 'cond_token_dim', 'global_cond_dim', 'project_cond_tokens', 'transformer_type',
    '_latent_seq_len', 'patch_size', 'global_cond_type'].map((k): [string, string] => [`model.diffusion.config.${k}`, 'dit.ts, mmdit.ts']),
]);

/** Keys of the released configs that are not read, → why that does not matter (README lists the same). */
export const CONFIG_KEYS_IGNORED: Readonly<Record<string, string>> = {
  audio_channels: 'the reference does not read it either; the channel count comes from the VAE (io_channels 2: stereo)',
  '**.encoder.requires_grad': 'training only (freezes the VAE encoder); inference computes no gradients',
  'model.diffusion.config.video_fps': 'popped and discarded by the reference factory (quirk 25); the top-level video_fps sets the frame rate',
};

function toRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.+';
      i++;
    } else if (c === '*') re += '[^.\\[\\]]*';
    else re += c.replace(/[.[\]\\^$+?(){}|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const READ = Object.keys(CONFIG_KEYS_READ).map((p) => [p, toRegex(p)] as const);
const IGNORED = Object.keys(CONFIG_KEYS_IGNORED).map((p) => [p, toRegex(p)] as const);

/** Every leaf key path of a config (`configs[<type>]` for conditioner entries; arrays of values are leaves). */
export function configKeyPaths(config: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown, p: string, inConfigs: boolean): void => {
    if (Array.isArray(v) && inConfigs) {
      for (const e of v) walk(e, `${p}[${String((e as { type?: unknown })?.type ?? '?')}]`, false);
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, c] of Object.entries(v)) walk(c, p ? `${p}.${k}` : k, p === 'model.conditioning' && k === 'configs');
    } else out.add(p);
  };
  walk(config, '', false);
  return [...out];
}

export type KeyStatus = { status: 'read'; pattern: string } | { status: 'ignored'; pattern: string } | { status: 'unknown' };

/** The read and the ignored patterns a key matches (a key should match exactly one kind). */
export function matchingPatterns(key: string): { read: string[]; ignored: string[] } {
  return { read: READ.filter(([, re]) => re.test(key)).map(([p]) => p), ignored: IGNORED.filter(([, re]) => re.test(key)).map(([p]) => p) };
}

export function keyStatus(key: string): KeyStatus {
  const ignored = IGNORED.find(([, re]) => re.test(key));
  if (ignored) return { status: 'ignored', pattern: ignored[0] };
  const read = READ.find(([, re]) => re.test(key));
  return read ? { status: 'read', pattern: read[0] } : { status: 'unknown' };
}

/** Keys of `config` that are neither read nor known to be irrelevant (a custom config's extras). */
export function unreadKeys(config: unknown): string[] {
  return configKeyPaths(config).filter((k) => k !== 'audiox_ts' && !k.startsWith('audiox_ts.') && keyStatus(k).status === 'unknown');
}

/** Where config.json sets `model_half: true` (the reference's half-precision autoencoders). */
export function halfPrecisionKeys(config: AudioXConfig): string[] {
  const out: string[] = [];
  if (config.model.pretransform.model_half === true) out.push('model.pretransform.model_half');
  config.model.conditioning.configs.forEach((e, i) => {
    const pc = (e.config as { pretransform_config?: { model_half?: unknown } }).pretransform_config;
    if (pc?.model_half === true) out.push(`model.conditioning.configs[${i}].config.pretransform_config.model_half`);
  });
  return out;
}

/** One line on the compute precision of a model (for `audiox inspect` / `audiox doctor`). */
export function precisionNote(config: AudioXConfig): string {
  const half = halfPrecisionKeys(config);
  return half.length
    ? `precision: float32 everywhere; config.json asks for half precision (${half.join(', ')}), which is not applied`
    : 'precision: float32 everywhere (config.json sets no model_half)';
}

/** What `audiox inspect` / `audiox doctor` say about a config: precision, and keys nothing reads. */
export function configReport(config: AudioXConfig): string[] {
  const lines = [precisionNote(config)];
  const unread = unreadKeys(config);
  if (unread.length) lines.push(`config keys not read by audiox-ts: ${unread.join(', ')}`);
  return lines;
}
