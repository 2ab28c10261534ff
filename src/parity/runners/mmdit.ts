// `mmdit` fixtures: MMDiTWrapper.forward(x, t, cross_attn_cond, cfg_scale, batch_cfg, scale_phi), with
// the params of the inner MMDiffusionTransformer (checkpoint prefix `model.model.`).
import { MMDiTWrapper, type MMDiTConfig } from '../../models/mmdit.ts';
import { runBackboneFixture } from '../diffusion.ts';
import type { Runner } from '../types.ts';

export const runner: Runner = {
  component: 'mmdit',
  run: (fx) => runBackboneFixture(fx, 'mmdit', (c) => MMDiTWrapper.fromConfig(c as MMDiTConfig)),
};
