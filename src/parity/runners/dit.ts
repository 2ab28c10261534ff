// `dit` fixtures: DiTWrapper.forward(x, t, cross_attn_cond, cross_attn_mask, global_cond,
// negative_cross_attn_cond/_mask, cfg_scale, batch_cfg, rescale_cfg, scale_phi) with the params of the
// inner DiffusionTransformer (checkpoint prefix `model.model.`). The wrapper's `global_cond` is the DiT's
// `global_embed`; fixtures name it either way.
import { DiTWrapper, type DiTConfig } from '../../models/dit.ts';
import { runBackboneFixture } from '../diffusion.ts';
import type { Runner } from '../types.ts';

export const runner: Runner = {
  component: 'dit',
  run: (fx) => runBackboneFixture(fx, 'dit', (c) => DiTWrapper.fromConfig(c as DiTConfig)),
};
