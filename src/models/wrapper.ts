// ConditionedDiffusionModelWrapper (docs/REFERENCE.md §1): the module whose state dict is the released checkpoint's
// (`model.model.*`, `conditioner.conditioners.<id>.*`, `pretransform.model.*`, `maf_block.*`).
import * as tf from '@tensorflow/tfjs';
import { Module } from '../nn/module.ts';
import type { AudioXConfig } from './config.ts';
import { getConditioningInputs, type ConditionerOutputs, type ConditioningInputs } from './conditioning.ts';
import type { ConditionContext } from './conditioners/conditioner.ts';
import { MultiConditioner, type ConditionerInputs } from './conditioners/multi.ts';
import type { DiffusionModel } from './diffusion-types.ts';
import { DiTWrapper } from './dit.ts';
import { MAFBlock } from './maf.ts';
import { MMDiTWrapper } from './mmdit.ts';
import { AutoencoderPretransform } from './vae/pretransform.ts';

/**
 * The reference's ConditionedDiffusionModelWrapper: the checkpoint's root module, its children named as the
 * state dict's top-level keys (`model`, `conditioner`, `pretransform`, `maf_block`). Built without weights.
 */
export class ConditionedDiffusionModelWrapper extends Module {
  /** The diffusion network (`model.model.*`): DiT or MMDiT. */
  readonly model: (DiTWrapper | MMDiTWrapper) & DiffusionModel;
  /** The conditioners by id (`conditioner.conditioners.<id>.*`). */
  readonly conditioner: MultiConditioner;
  /** The VAE that maps audio to latents and back (`pretransform.*`). */
  readonly pretransform: AutoencoderPretransform;
  /** The MAF block of the MAF variants (null otherwise). */
  readonly maf_block: MAFBlock | null;

  /** Conditioner ids whose tokens go to cross-attention, in the config's order. */
  readonly crossAttnCondIds: string[];
  /** Conditioner ids pooled into the global conditioning vector. */
  readonly globalCondIds: string[];
  /** How the network is trained and sampled: v-prediction or rectified flow. */
  readonly diffusionObjective: 'v' | 'rectified_flow';
  /** Latent channels of the diffusion network. */
  readonly ioChannels: number;
  /** Output samples per second (Hz). */
  readonly sampleRate: number;

  /**
   * @param config A validated config (see validateConfig); the modules are built, the weights left empty.
   * @throws Error for a conditioner type that is not registered (see registerConditioner).
   */
  constructor(readonly config: AudioXConfig) {
    super();
    const m = config.model;
    const d = m.diffusion;
    // `video_fps` is popped from the diffusion config by the reference (quirk 25).
    const { video_fps: _videoFps, ...diffusionConfig } = d.config;
    this.model = this.module(
      'model',
      d.type === 'mmdit'
        ? MMDiTWrapper.fromConfig(diffusionConfig as Parameters<typeof MMDiTWrapper.fromConfig>[0])
        : DiTWrapper.fromConfig(diffusionConfig as Parameters<typeof DiTWrapper.fromConfig>[0]),
    );
    this.conditioner = this.module('conditioner', new MultiConditioner(m.conditioning.configs, m.conditioning.cond_dim));
    this.pretransform = this.module(
      'pretransform',
      AutoencoderPretransform.fromConfig(m.pretransform as Parameters<typeof AutoencoderPretransform.fromConfig>[0], {
        sampleRate: config.sample_rate,
      }),
    );
    this.maf_block =
      d.gate && d.gate_type === 'MAF'
        ? this.module('maf_block', MAFBlock.fromConfig({ ...(d.gate_type_config ?? {}), dim: mafDim(config) }))
        : null;
    this.crossAttnCondIds = d.cross_attention_cond_ids ?? [];
    this.globalCondIds = d.global_cond_ids ?? [];
    this.diffusionObjective = d.diffusion_objective ?? 'v';
    this.ioChannels = m.io_channels;
    this.sampleRate = config.sample_rate;
    // Ids without a conditioner are legal: their tensors must then be given precomputed.
  }

  /** Runs the conditioners (those not precomputed) → per-id (embedding, mask). Caller disposes. */
  condition(
    inputs: ConditionerInputs,
    ctx: ConditionContext,
    precomputed: ConditionerOutputs = {},
  ): ConditionerOutputs {
    return this.conditioner.forward(inputs, ctx, precomputed);
  }

  /** get_conditioning_inputs (docs/REFERENCE.md §1.3): concatenation in config order, the MAF path. Caller disposes. */
  conditioningInputs(cond: ConditionerOutputs): ConditioningInputs {
    return getConditioningInputs(cond, {
      crossAttnCondIds: this.crossAttnCondIds,
      globalCondIds: this.globalCondIds,
      mafBlock: this.maf_block ?? undefined,
    });
  }

  /** Latent frames of a generation of `sampleSize` samples. */
  latentLength(sampleSize: number): number {
    return Math.floor(sampleSize / this.pretransform.downsamplingRatio);
  }

  /** Frees conditioner outputs (embeddings and masks). */
  disposeCond(cond: ConditionerOutputs): void {
    for (const c of Object.values(cond)) tf.dispose([c.embedding, c.mask]);
  }
}

/**
 * The MAF width. The reference hard-codes 768, the width of the conditioning tokens the block fuses: every
 * conditioner gives cond_dim-wide tokens (768 in the released models), so it is `conditioning.cond_dim` here.
 * `gate_type_config.dim` (a project extension) still overrides it.
 */
export function mafDim(config: AudioXConfig): number {
  const dim = (config.model.diffusion.gate_type_config as { dim?: number } | undefined)?.dim;
  return dim ?? config.model.conditioning.cond_dim;
}

/** create_model_from_config for `diffusion_cond`. */
export function createModelFromConfig(config: AudioXConfig): ConditionedDiffusionModelWrapper {
  return new ConditionedDiffusionModelWrapper(config);
}
