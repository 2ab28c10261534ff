// Shared by the `dit` and `mmdit` runners: one guided backbone call with the fixture's inputs and args
// (the reference's DiTWrapper / MMDiTWrapper.forward keyword arguments), params under the inner model.
import type * as tf from '@tensorflow/tfjs';
import type { DiffusionModel } from '../models/diffusion-types.ts';
import type { Module } from '../nn/module.ts';
import type { ComputedOutputs, Fixture } from './types.ts';

const INPUTS = [
  'x',
  't',
  'cross_attn_cond',
  'cross_attn_mask',
  'global_cond',
  'global_embed',
  'negative_cross_attn_cond',
  'negative_cross_attn_mask',
];

export interface BackboneWrapper extends Module, DiffusionModel {
  readonly model: Module;
}

export async function runBackboneFixture(
  fx: Fixture,
  type: string,
  build: (config: Record<string, unknown>) => BackboneWrapper,
): Promise<ComputedOutputs> {
  const diffusion = (fx.config.diffusion ?? {}) as { type?: string; config?: Record<string, unknown> };
  if (diffusion.type !== undefined && diffusion.type !== type) throw new Error(`${type} runner: diffusion.type is "${diffusion.type}"`);
  const wrapper = build(diffusion.config ?? {});
  const inputs: Record<string, tf.Tensor> = {};
  try {
    for (const n of INPUTS) if (fx.has(`inputs/${n}`)) inputs[n] = fx.tensor(`inputs/${n}`);
    wrapper.model.loadStateDict(fx.params);
    const a = fx.args as { cfg_scale?: number; scale_phi?: number; batch_cfg?: boolean; rescale_cfg?: boolean };
    const output = wrapper.forward(inputs.x, inputs.t, {
      crossAttnCond: inputs.cross_attn_cond,
      crossAttnMask: inputs.cross_attn_mask,
      globalCond: inputs.global_cond ?? inputs.global_embed,
      negativeCrossAttnCond: inputs.negative_cross_attn_cond,
      negativeCrossAttnMask: inputs.negative_cross_attn_mask,
      cfgScale: a.cfg_scale ?? 1.0,
      scalePhi: a.scale_phi ?? 0,
      batchCfg: a.batch_cfg ?? true,
      rescaleCfg: a.rescale_cfg,
    });
    return { outputs: { output } };
  } finally {
    Object.values(inputs).forEach((t) => t.dispose());
    wrapper.dispose();
  }
}
