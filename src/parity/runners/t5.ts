// `t5` fixtures: HF T5EncoderModel(input_ids, attention_mask) → last_hidden_state, plus the
// T5Conditioner tail with an Identity proj_out (widths equal) and with a Linear one (params proj_out.*).
import * as tf from '@tensorflow/tfjs';
import { T5EncoderModel, type T5Config } from '../../models/t5.ts';
import { T5Conditioner } from '../../models/conditioners/text/t5.ts';
import type { ComputedOutputs, Fixture, Runner } from '../types.ts';

async function run(fx: Fixture): Promise<ComputedOutputs> {
  const cfg = fx.config.t5_config as T5Config | undefined;
  if (!cfg) throw new Error('t5 fixture: config has no "t5_config"');
  const encoder = T5EncoderModel.fromConfig(cfg);
  const identity = new T5Conditioner({ output_dim: cfg.d_model, dim: cfg.d_model });
  const projected = fx.params.has('proj_out.weight')
    ? new T5Conditioner({ output_dim: fx.params.shape('proj_out.weight')[0], dim: cfg.d_model, project_out: true })
    : null;
  try {
    encoder.loadStateDict(fx.params, { ignorePrefixes: ['proj_out.'] });
    projected?.loadStateDict(fx.params, { ignorePrefixes: ['shared.', 'encoder.'] });
    identity.attach(encoder);
    const ids = fx.tensor('inputs/input_ids') as tf.Tensor2D;
    const mask = fx.tensor('inputs/attention_mask') as tf.Tensor2D;
    try {
      const outputs: Record<string, tf.Tensor> = {};
      outputs.last_hidden_state = encoder.forward(ids, mask);
      const id = identity.forwardIds(ids, mask);
      id.mask.dispose();
      outputs.embeddings_identity = id.embedding;
      if (projected) outputs.embeddings_linear = projected.project(outputs.last_hidden_state as tf.Tensor3D, mask);
      return { outputs };
    } finally {
      ids.dispose();
      mask.dispose();
    }
  } finally {
    identity.dispose(); // also disposes the attached encoder
    encoder.dispose();
    projected?.dispose();
  }
}

export const runner: Runner = { component: 't5', run };
