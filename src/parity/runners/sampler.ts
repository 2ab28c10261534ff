// `sampler` fixtures: sample_k / sample_rf over a tiny diffusion backbone whose params are stored
// in the fixture. The reference's random draws are fed: inputs/noise is the starting noise and
// intermediates/noise_<i> are the SDE draws in call order (spec §7.6, quirk 22).
import * as tf from '@tensorflow/tfjs';
import type { DiffusionCond, DiffusionModel } from '../../models/diffusion-types.ts';
import { DiTWrapper, type DiTConfig } from '../../models/dit.ts';
import { MMDiTWrapper, type MMDiTConfig } from '../../models/mmdit.ts';
import type { Module } from '../../nn/module.ts';
import { InjectedNoise } from '../../sampling/noise.ts';
import { sampleK, sampleKSigmas, sampleRf, sampleRfTimesteps } from '../../sampling/sample.ts';
import type { ComputedOutputs, Fixture, Runner } from '../types.ts';

interface SamplerArgs {
  objective?: string;
  sampler_type?: string;
  steps?: number;
  sigma_min?: number;
  sigma_max?: number;
  rho?: number;
  init_noise_level?: number;
  cfg_scale?: number;
  scale_phi?: number;
  batch_cfg?: boolean;
  rescale_cfg?: boolean;
}

/** The backbone named by `config.diffusion.type`; its params are the inner model's (`model.model.*`). */
function buildBackbone(fx: Fixture): { model: DiffusionModel & Module; inner: Module } {
  const diffusion = (fx.config.diffusion ?? {}) as { type?: string; config?: Record<string, unknown> };
  if (diffusion.type === 'mmdit') {
    const w = MMDiTWrapper.fromConfig((diffusion.config ?? {}) as MMDiTConfig);
    return { model: w, inner: w.model };
  }
  if (diffusion.type === undefined || diffusion.type === 'dit') {
    const w = DiTWrapper.fromConfig((diffusion.config ?? {}) as DiTConfig);
    return { model: w, inner: w.model };
  }
  throw new Error(`sampler runner: unsupported diffusion.type "${diffusion.type}"`);
}

async function run(fx: Fixture): Promise<ComputedOutputs> {
  const a = fx.args as SamplerArgs;
  const diffusion = (fx.config.diffusion ?? {}) as { diffusion_objective?: string };
  const objective = a.objective ?? diffusion.diffusion_objective ?? (fx.reference.includes('sample_rf') ? 'rectified_flow' : 'v');

  const { model, inner } = buildBackbone(fx);
  const owned: tf.Tensor[] = [];
  const input = (name: string) => {
    if (!fx.has(`inputs/${name}`)) return undefined;
    const t = fx.tensor(`inputs/${name}`);
    owned.push(t);
    return t;
  };
  try {
    inner.loadStateDict(fx.params);
    const noise = input('noise');
    if (!noise) throw new Error('sampler runner: the fixture has no inputs/noise');
    const initData = input('init_data');
    const mask = input('mask');
    const cond: DiffusionCond = {
      crossAttnCond: input('cross_attn_cond'),
      crossAttnMask: input('cross_attn_mask'),
      globalCond: input('global_cond') ?? input('global_embed'),
      cfgScale: a.cfg_scale ?? 1,
      scalePhi: a.scale_phi ?? 0,
      batchCfg: a.batch_cfg ?? true,
      rescaleCfg: a.rescale_cfg,
    };
    const common = { model, noise, initData, steps: a.steps, sigmaMax: a.sigma_max, initNoiseLevel: a.init_noise_level, cond };

    if (objective === 'rectified_flow') {
      const sample = await sampleRf(common);
      return { outputs: { sample, sigmas: tf.tensor1d(sampleRfTimesteps(common)) } };
    }
    if (objective !== 'v') throw new Error(`sampler runner: unsupported objective "${objective}"`);

    const sdeNames = fx
      .names('intermediates')
      .filter((n) => /^noise_\d+$/.test(n))
      .sort((p, q) => Number(p.slice(6)) - Number(q.slice(6)));
    const sde = sdeNames.map((n) => fx.tensor(`intermediates/${n}`));
    owned.push(...sde);
    const noiseSource = new InjectedNoise({ sde });
    const kOpts = { ...common, mask, samplerType: a.sampler_type, sigmaMin: a.sigma_min, rho: a.rho, noiseSource };
    const sample = await sampleK(kOpts);
    if (noiseSource.remaining('sde') !== 0) {
      sample.dispose();
      throw new Error(`sampler used ${sde.length - noiseSource.remaining('sde')} of the ${sde.length} recorded SDE draws`);
    }
    return { outputs: { sample, sigmas: tf.tensor1d(sampleKSigmas(kOpts)) } };
  } finally {
    tf.dispose(owned);
    model.dispose();
  }
}

export const runner: Runner = { component: 'sampler', run };
