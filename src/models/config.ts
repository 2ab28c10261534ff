// The released config.json schema (the keys the inference path reads; same names as the reference).
import fs from 'node:fs';

export interface ConditionerConfigEntry {
  id: string;
  type: string;
  config: Record<string, unknown>;
}

export interface PretransformSection {
  type: string;
  config: Record<string, unknown>;
  scale?: number;
  iterate_batch?: boolean;
  chunked?: boolean;
  model_half?: boolean;
}

export interface DiffusionSection {
  type: 'dit' | 'mmdit';
  config: Record<string, unknown>;
  cross_attention_cond_ids?: string[];
  global_cond_ids?: string[];
  input_concat_ids?: string[];
  prepend_cond_ids?: string[];
  diffusion_objective?: 'v' | 'rectified_flow';
  gate?: boolean;
  gate_type?: string;
  gate_type_config?: { num_experts_per_modality?: number; num_heads?: number; num_fusion_layers?: number };
}

/** The model's config.json, as the reference writes it (snake_case keys; only what is used is typed). */
export interface AudioXConfig {
  /** The reference's model type (both are sampled the same way here). */
  model_type: 'diffusion_cond' | 'diffusion_cond_inpaint';
  /** Output samples per second (Hz). */
  sample_rate: number;
  /** Samples per generation window. */
  sample_size: number;
  /** Frames per second of video conditioning (default 5). */
  video_fps?: number;
  /** Output channels as the config states them (not read: the channel count comes from the VAE). */
  audio_channels?: number;
  /** The network: latent channels, the VAE (pretransform), the conditioners and the diffusion model. */
  model: {
    io_channels: number;
    pretransform: PretransformSection;
    conditioning: { cond_dim: number; configs: ConditionerConfigEntry[]; default_keys?: Record<string, string> };
    diffusion: DiffusionSection;
  };
  /** Settings of this project that the reference does not have (demo model, tokenizer location…). */
  audiox_ts?: { demo?: boolean; tokenizer?: string; t5?: Record<string, unknown>; synchformer?: Record<string, unknown> };
}

/** An unreadable, malformed or unsupported config.json; the message names the file and the key. */
export class ConfigError extends Error {}

function need(cond: boolean, what: string, where: string): void {
  if (!cond) throw new ConfigError(`${where}: ${what}`);
}

/** Checks the keys the inference path needs, with errors that name the key. */
export function validateConfig(raw: unknown, where = 'config.json'): AudioXConfig {
  need(!!raw && typeof raw === 'object', 'is not a JSON object', where);
  const c = raw as AudioXConfig;
  need(c.model_type === 'diffusion_cond' || c.model_type === 'diffusion_cond_inpaint',
    `model_type must be "diffusion_cond" (got ${JSON.stringify(c.model_type)})`, where);
  need(Number.isFinite(c.sample_rate) && c.sample_rate > 0, 'sample_rate must be a positive number', where);
  need(Number.isInteger(c.sample_size) && c.sample_size > 0, 'sample_size must be a positive integer', where);
  need(!!c.model && typeof c.model === 'object', 'missing "model" section', where);
  need(!!c.model.pretransform?.config, 'missing model.pretransform.config', where);
  need(Array.isArray(c.model.conditioning?.configs), 'missing model.conditioning.configs', where);
  need(Number.isInteger(c.model.conditioning.cond_dim), 'missing model.conditioning.cond_dim', where);
  for (const [i, e] of c.model.conditioning.configs.entries()) {
    need(typeof e.id === 'string' && typeof e.type === 'string', `model.conditioning.configs[${i}] needs "id" and "type"`, where);
  }
  need(c.model.diffusion?.type === 'dit' || c.model.diffusion?.type === 'mmdit',
    `model.diffusion.type must be "dit" or "mmdit" (got ${JSON.stringify(c.model.diffusion?.type)})`, where);
  need(!!c.model.diffusion.config, 'missing model.diffusion.config', where);
  if (c.model.diffusion.gate) {
    need(c.model.diffusion.gate_type === 'MAF',
      `model.diffusion.gate_type ${JSON.stringify(c.model.diffusion.gate_type)} is not supported (only "MAF" builds a module in the reference)`, where);
  }
  return c;
}

/**
 * Reads and validates a config.json.
 * @throws ConfigError when the file cannot be read, is not JSON, or fails validation.
 */
export function readConfig(file: string): AudioXConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return validateConfig(raw, file);
}

/** The shortest output that makes sense: one latent frame (downsampling_ratio / sample_rate seconds). */
export function minSeconds(cfg: AudioXConfig): number {
  return Number(cfg.model.pretransform?.config?.downsampling_ratio ?? 2048) / cfg.sample_rate;
}

/** Latent frames of a generation: sample_size // downsampling_ratio (485100 → 236). */
export function latentLength(cfg: AudioXConfig): number {
  const ratio = Number(cfg.model.pretransform.config.downsampling_ratio ?? 2048);
  return Math.floor(cfg.sample_size / ratio);
}
