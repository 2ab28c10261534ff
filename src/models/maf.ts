// MAF_Block (audiox/models/MAF.py): multimodal fusion of the video/text/audio conditioning tokens
// through learned expert queries. docs/REFERENCE.md §1.4; state-dict prefix `maf_block.` in a full checkpoint.
import * as tf from '@tensorflow/tfjs';
import { Activation, LayerNorm, Linear, Module, Sequential, type Parameter } from '../nn/index.ts';
import { MultiheadAttention, TransformerEncoder, TransformerEncoderLayer } from '../nn/mha.ts';

/**
 * The reference's `gate_type_config` keys, plus `dim`: the reference wrapper hard-codes 768, which is the width
 * of the conditioning tokens it fuses (`conditioning.cond_dim`); the wrapper passes that (see wrapper.ts).
 */
export interface MAFConfig {
  dim?: number;
  num_experts_per_modality?: number;
  num_heads?: number;
  num_fusion_layers?: number;
  mlp_ratio?: number;
}

/** Refined tokens, each the same shape as the matching input. */
export interface MAFOutput {
  video: tf.Tensor;
  text: tf.Tensor;
  audio: tf.Tensor;
}

/** The dimension ConditionedDiffusionModelWrapper hard-codes for its MAF block (= cond_dim of the released models). */
export const MAF_DIM = 768;

export class MAFBlock extends Module {
  readonly gating_network: Sequential;
  readonly unifiedExperts: Parameter;
  readonly cross_attn: MultiheadAttention;
  readonly norm1: LayerNorm;
  readonly fusion_transformer: TransformerEncoder;
  readonly norm_v2: LayerNorm;
  readonly norm_t2: LayerNorm;
  readonly norm_a2: LayerNorm;
  readonly bypassGateV: Parameter;
  readonly bypassGateT: Parameter;
  readonly bypassGateA: Parameter;

  constructor(
    readonly dim: number,
    readonly numExpertsPerModality: number,
    readonly numHeads: number,
    readonly numFusionLayers: number,
    readonly mlpRatio = 4.0,
  ) {
    super();
    this.gating_network = this.module(
      'gating_network',
      new Sequential(new Linear(3 * dim, dim), new Activation('gelu'), new Linear(dim, 3), new Activation('sigmoid')),
    );
    this.unifiedExperts = this.param('unified_experts', [3 * numExpertsPerModality, dim]);
    this.cross_attn = this.module('cross_attn', new MultiheadAttention(dim, numHeads));
    this.norm1 = this.module('norm1', new LayerNorm(dim));
    const layers = Array.from(
      { length: numFusionLayers },
      () => new TransformerEncoderLayer(dim, numHeads, { dimFeedforward: Math.trunc(dim * mlpRatio), activation: 'gelu', normFirst: true }),
    );
    this.fusion_transformer = this.module('fusion_transformer', new TransformerEncoder(layers));
    this.norm_v2 = this.module('norm_v2', new LayerNorm(dim));
    this.norm_t2 = this.module('norm_t2', new LayerNorm(dim));
    this.norm_a2 = this.module('norm_a2', new LayerNorm(dim));
    this.bypassGateV = this.param('bypass_gate_v', []);
    this.bypassGateT = this.param('bypass_gate_t', []);
    this.bypassGateA = this.param('bypass_gate_a', []);
  }

  /** Builds the block from `gate_type_config` (reference defaults: 64 experts, 12 heads, 4 layers; dim 768). */
  static fromConfig(cfg: MAFConfig = {}): MAFBlock {
    return new MAFBlock(
      cfg.dim ?? MAF_DIM,
      cfg.num_experts_per_modality ?? 64,
      cfg.num_heads ?? 12,
      cfg.num_fusion_layers ?? 4,
      cfg.mlp_ratio ?? 4.0,
    );
  }

  /**
   * Slots as the reference names them: (video [B, Nv, D], text [B, Nt, D], audio [B, Na, D]).
   * NOTE the real call site passes (text, video, audio) — see getConditioningInputs (quirk 1).
   */
  forward(videoTokens: tf.Tensor, textTokens: tf.Tensor, audioTokens: tf.Tensor): MAFOutput {
    const inputs = [videoTokens, textTokens, audioTokens];
    for (const x of inputs) {
      if (x.rank !== 3 || x.shape[2] !== this.dim || x.shape[0] !== videoTokens.shape[0]) {
        throw new Error(`MAFBlock: expected three [B, N, ${this.dim}] token tensors with the same B, got ${inputs.map((t) => `[${t.shape}]`).join(', ')}`);
      }
    }
    const [video, text, audio] = tf.tidy(() => {
      const b = videoTokens.shape[0];
      const globals = tf.concat(inputs.map((x) => x.mean(1)), 1); // [B, 3D]
      const gates = this.gating_network.forward(globals); // [B, 3]
      const gated = inputs.map((x, i) => x.mul(gates.slice([0, i], [b, 1]).reshape([b, 1, 1])));
      const context = tf.concat(gated, 1); // [B, Nv+Nt+Na, D]

      const experts = tf.broadcastTo(this.unifiedExperts.value.expandDims(0), [b, 3 * this.numExpertsPerModality, this.dim]);
      const info = this.cross_attn.forward(experts, context, context);
      const updated = this.norm1.forward(experts.add(info));
      const fused = this.fusion_transformer.forward(updated); // [B, 3E, D]

      const e = this.numExpertsPerModality;
      const norms = [this.norm_v2, this.norm_t2, this.norm_a2];
      const bypass = [this.bypassGateV, this.bypassGateT, this.bypassGateA];
      return inputs.map((x, i) => {
        const refinement = fused.slice([0, i * e, 0], [b, e, this.dim]).mean(1); // [B, D]
        const alpha = tf.sigmoid(bypass[i].value);
        // The refinement vector is added to every token of the modality.
        return x.add(norms[i].forward(refinement).mul(alpha).expandDims(1));
      });
    });
    return { video, text, audio };
  }
}
