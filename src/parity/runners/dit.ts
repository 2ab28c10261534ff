// `dit` fixtures: DiTWrapper.forward(x, t, cross_attn_cond, cross_attn_mask, global_cond,
// negative_cross_attn_cond/_mask, cfg_scale, batch_cfg, rescale_cfg, scale_phi) with the params of the
// inner DiffusionTransformer (checkpoint prefix `model.model.`).
import type * as tf from '@tensorflow/tfjs';
import { DiTWrapper, type DiTConfig } from '../../models/dit.ts';
import type { ComputedOutputs, Fixture, Runner } from '../types.ts';

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

async function run(fx: Fixture): Promise<ComputedOutputs> {
  const diffusion = (fx.config.diffusion ?? {}) as { type?: string; config?: DiTConfig };
  if (diffusion.type !== undefined && diffusion.type !== 'dit') throw new Error(`dit runner: diffusion.type is "${diffusion.type}"`);
  const wrapper = DiTWrapper.fromConfig(diffusion.config ?? {});
  const inputs: Record<string, tf.Tensor> = {};
  try {
    for (const n of INPUTS) if (fx.has(`inputs/${n}`)) inputs[n] = fx.tensor(`inputs/${n}`);
    wrapper.model.loadStateDict(fx.params);
    const a = fx.args as { cfg_scale?: number; scale_phi?: number; batch_cfg?: boolean; rescale_cfg?: boolean };
    const output = wrapper.forward(inputs.x, inputs.t, {
      crossAttnCond: inputs.cross_attn_cond,
      crossAttnMask: inputs.cross_attn_mask,
      // The wrapper's `global_cond` is the DiT's `global_embed`; fixtures name it either way.
      globalCond: inputs.global_cond ?? inputs.global_embed,
      negativeCrossAttnCond: inputs.negative_cross_attn_cond,
      negativeCrossAttnMask: inputs.negative_cross_attn_mask,
      cfgScale: a.cfg_scale ?? 1,
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

export const runner: Runner = { component: 'dit', run };
