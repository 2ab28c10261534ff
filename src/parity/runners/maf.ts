// `maf` fixtures: the MAF block called directly (reference MAF_Block.forward) or as wired inside
// ConditionedDiffusionModelWrapper.get_conditioning_inputs (argument swap + concat order).
import type * as tf from '@tensorflow/tfjs';
import { MAFBlock, type MAFConfig } from '../../models/maf.ts';
import { getConditioningInputs, type ConditionerOutputs } from '../../models/conditioning.ts';
import { PrefixedSource } from '../../io/safetensors.ts';
import type { ComputedOutputs, Fixture, Runner } from '../types.ts';

interface WrapperConfig {
  diffusion?: { cross_attention_cond_ids?: string[]; gate?: boolean; gate_type?: string; gate_type_config?: MAFConfig };
  maf_block_dim?: number;
}

async function runDirect(fx: Fixture): Promise<ComputedOutputs> {
  const block = MAFBlock.fromConfig((fx.config.maf_block ?? {}) as MAFConfig);
  const inputs = ['video_tokens', 'text_tokens', 'audio_tokens'].map((n) => fx.tensor(`inputs/${n}`));
  try {
    block.loadStateDict(fx.params);
    const out = block.forward(inputs[0], inputs[1], inputs[2]);
    return { outputs: { video: out.video, text: out.text, audio: out.audio } };
  } finally {
    inputs.forEach((t) => t.dispose());
    block.dispose();
  }
}

async function runWrapper(fx: Fixture): Promise<ComputedOutputs> {
  const cfg = fx.config as WrapperConfig;
  const d = cfg.diffusion ?? {};
  const ids = d.cross_attention_cond_ids ?? [];
  const useMaf = d.gate === true && d.gate_type === 'MAF';
  const block = useMaf ? MAFBlock.fromConfig({ ...d.gate_type_config, dim: cfg.maf_block_dim }) : undefined;
  const created: tf.Tensor[] = [];
  try {
    block?.loadStateDict(new PrefixedSource(fx.params, 'maf_block.'));
    const cond: ConditionerOutputs = {};
    for (const id of ids) {
      const embedding = fx.tensor(`inputs/${id}`);
      const mask = fx.tensor(`inputs/${id}_mask`);
      created.push(embedding, mask);
      cond[id] = { embedding, mask };
    }
    if (fx.args.negative === true) {
      const r = getConditioningInputs(cond, { crossAttnCondIds: ids, mafBlock: block, negative: true });
      return { outputs: { negative_cross_attn_cond: r.negativeCrossAttnCond!, negative_cross_attn_mask: r.negativeCrossAttnMask! } };
    }
    const r = getConditioningInputs(cond, { crossAttnCondIds: ids, mafBlock: block });
    return { outputs: { cross_attn_cond: r.crossAttnCond!, cross_attn_mask: r.crossAttnMask! } };
  } finally {
    created.forEach((t) => t.dispose());
    block?.dispose();
  }
}

export const runner: Runner = {
  component: 'maf',
  async run(fx) {
    if (fx.reference.includes('get_conditioning_inputs')) return runWrapper(fx);
    if (fx.reference.includes('MAF_Block')) return runDirect(fx);
    throw new Error(`maf runner: unknown reference "${fx.reference}"`);
  },
};
