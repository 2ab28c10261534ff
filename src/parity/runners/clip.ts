// `clip` fixtures: HF CLIPVisionModelWithProjection(pixel_values) → last_hidden_state, image_embeds.
import * as tf from '@tensorflow/tfjs';
import { CLIPVisionModelWithProjection, type CLIPVisionConfig } from '../../models/clip.ts';
import type { Fixture, Runner, RunnerResult } from '../types.ts';

async function run(fx: Fixture): Promise<RunnerResult> {
  const cfg = fx.config.clip_vision_config as Partial<CLIPVisionConfig> | undefined;
  if (!cfg) throw new Error('clip fixture without config.clip_vision_config');
  const model = CLIPVisionModelWithProjection.fromConfig(cfg);
  const pixels = fx.tensor('inputs/pixel_values') as tf.Tensor4D;
  try {
    model.loadStateDict(fx.params);
    const { lastHiddenState, imageEmbeds } = model.forward(pixels);
    return { outputs: { last_hidden_state: lastHiddenState, image_embeds: imageEmbeds } };
  } finally {
    pixels.dispose();
    model.dispose();
  }
}

export const runner: Runner = { component: 'clip', run };
