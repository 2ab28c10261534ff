// `sampler` fixtures: sample_k / sample_rf over a tiny diffusion backbone whose params are stored
// in the fixture. The reference's random draws are fed: inputs/noise is the starting noise and
// intermediates/noise_<i> are the SDE draws in call order (docs/REFERENCE.md §7.6, quirk 22). Besides the
// outputs, the run's trace is checked: the number of model calls, σ at every callback and (for
// k-dpm-adaptive) every accept/reject decision of the step control.
import * as tf from '@tensorflow/tfjs';
import type { DiffusionCond, DiffusionModel } from '../../models/diffusion-types.ts';
import { DiTWrapper, type DiTConfig } from '../../models/dit.ts';
import { MMDiTWrapper, type MMDiTConfig } from '../../models/mmdit.ts';
import type { Module } from '../../nn/module.ts';
import { InjectedNoise } from '../../nn/noise.ts';
import { sampleK, sampleKSigmas, sampleRf, sampleRfTimesteps, type SampleProgress } from '../../sampling/sample.ts';
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

/** What a run did besides its result: model calls, and σ / step control at every callback. */
export interface Trace {
  modelCalls: number;
  sigmas: number[];
  accepted: boolean[];
}

function countCalls(model: DiffusionModel, trace: Trace): DiffusionModel {
  return {
    forward: (x, t, cond) => {
      trace.modelCalls++;
      return model.forward(x, t, cond);
    },
  };
}

function record(trace: Trace): (p: SampleProgress) => void {
  return (p) => {
    trace.sigmas.push(p.sigma);
    if (p.attempt) trace.accepted.push(p.attempt.accepted);
  };
}

function numbered(fx: Fixture, prefix: string): string[] {
  const re = new RegExp(`^${prefix}\\.(\\d+)$`);
  return fx
    .names('intermediates')
    .filter((n) => re.test(n))
    .sort((p, q) => Number(re.exec(p)![1]) - Number(re.exec(q)![1]));
}

/** Throws (naming the first difference) unless the run's trace is the reference's. */
export function checkTrace(fx: Fixture, trace: Trace): void {
  const host = (n: string) => Array.from(fx.file.readHost(`intermediates/${n}`).data, Number);
  if (fx.has('intermediates/adaptive_accept')) {
    const want = host('adaptive_accept').map(Boolean);
    const at = want.findIndex((a, i) => trace.accepted[i] !== a);
    if (at >= 0 || trace.accepted.length !== want.length) {
      const i = at >= 0 ? at : Math.min(want.length, trace.accepted.length);
      throw new Error(
        `k-dpm-adaptive step control differs from the reference at attempt ${i}: accepted ${trace.accepted.join(',')} ` +
          `vs ${want.join(',')} (${trace.accepted.length} vs ${want.length} attempts)`,
      );
    }
  }
  const calls = fx.has('intermediates/n_model_calls') ? host('n_model_calls')[0] : numbered(fx, 'model_in').length;
  if (calls > 0 && trace.modelCalls !== calls) throw new Error(`${trace.modelCalls} model calls, the reference made ${calls}`);
  const sigmas = numbered(fx, 'sigma').map((n) => host(n)[0]);
  if (sigmas.length > 0) {
    if (trace.sigmas.length !== sigmas.length) throw new Error(`${trace.sigmas.length} sampler callbacks, the reference made ${sigmas.length}`);
    // k-dpm-adaptive: the first attempts' error estimates (≈ 1e-5) are float32 rounding noise that
    // differs between backends, so the proposed h, and with it σ, drift (up to ~1% on wasm) while every
    // accept/reject decision stays the reference's (checked exactly above).
    const rtol = fx.has('intermediates/adaptive_accept') ? 2e-2 : 1e-5;
    const bad = sigmas.findIndex((e, i) => !(Math.abs(trace.sigmas[i] - e) <= rtol * Math.abs(e)));
    if (bad >= 0) throw new Error(`σ at callback ${bad} is ${trace.sigmas[bad]}, the reference's ${sigmas[bad]}`);
  }
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
    const trace: Trace = { modelCalls: 0, sigmas: [], accepted: [] };
    const common = {
      model: countCalls(model, trace),
      noise,
      initData,
      steps: a.steps,
      sigmaMax: a.sigma_max,
      initNoiseLevel: a.init_noise_level,
      cond,
      onProgress: record(trace),
    };

    if (objective === 'rectified_flow') {
      const sample = await sampleRf(common);
      checkOrDispose(fx, trace, sample);
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
    checkOrDispose(fx, trace, sample);
    const outputs: Record<string, tf.Tensor> = { sample, sigmas: tf.tensor1d(sampleKSigmas(kOpts)) };
    if (fx.has('outputs/n_model_calls')) outputs.n_model_calls = tf.tensor1d([trace.modelCalls], 'int32');
    return { outputs };
  } finally {
    tf.dispose(owned);
    model.dispose();
  }
}

function checkOrDispose(fx: Fixture, trace: Trace, sample: tf.Tensor): void {
  try {
    checkTrace(fx, trace);
  } catch (e) {
    sample.dispose();
    throw e;
  }
}

export const runner: Runner = { component: 'sampler', run };
