// `mmdit` fixtures: MMDiTWrapper.forward(x, t, cross_attn_cond, cfg_scale, batch_cfg, scale_phi), with
// the params of the inner MMDiffusionTransformer (checkpoint prefix `model.model.`).
import type * as tf from '@tensorflow/tfjs';
import { MMDiTWrapper, type MMDiTConfig } from '../../models/mmdit.ts';
import type { ComputedOutputs, Fixture, Runner } from '../types.ts';

async function run(fx: Fixture): Promise<ComputedOutputs> {
  const diffusion = (fx.config.diffusion ?? {}) as { type?: string; config?: MMDiTConfig };
  if (diffusion.type !== undefined && diffusion.type !== 'mmdit') throw new Error(`mmdit runner: diffusion.type is "${diffusion.type}"`);
  const wrapper = MMDiTWrapper.fromConfig(diffusion.config ?? {});
  const names = ['x', 't', 'cross_attn_cond', 'negative_cross_attn_cond', 'negative_cross_attn_mask'];
  const inputs: Record<string, tf.Tensor> = {};
  for (const n of names) if (fx.has(`inputs/${n}`)) inputs[n] = fx.tensor(`inputs/${n}`);
  try {
    wrapper.model.loadStateDict(fx.params);
    const a = fx.args as { cfg_scale?: number; scale_phi?: number; batch_cfg?: boolean; rescale_cfg?: boolean };
    const output = wrapper.forward(inputs.x, inputs.t, {
      crossAttnCond: inputs.cross_attn_cond,
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

export const runner: Runner = { component: 'mmdit', run };
