// ConditionedDiffusionModelWrapper.get_conditioning_inputs (docs/REFERENCE.md §1.3): turns the MultiConditioner's
// per-id (embedding, mask) pairs into the diffusion model's cross-attention / global conditioning.
import * as tf from '@tensorflow/tfjs';
import type { MAFBlock } from './maf.ts';

/** One conditioner's output: embedding [B, N, C] (or [B, C]) and its mask. */
export interface ConditionerOutput {
  /** The tokens [B, N, C] (or one vector per item, [B, C]). */
  embedding: tf.Tensor;
  /** Which tokens are valid, [B, N] (1 = valid), as the reference returns it. */
  mask: tf.Tensor;
}

/** The outputs of a model's conditioners, by conditioner id (before assembly into ConditioningInputs). */
export type ConditionerOutputs = Record<string, ConditionerOutput>;

export interface ConditioningOptions {
  /** `model.diffusion.cross_attention_cond_ids` (order matters). */
  crossAttnCondIds?: readonly string[];
  /** `model.diffusion.global_cond_ids`. */
  globalCondIds?: readonly string[];
  /** The wrapper's `maf_block` (gate=True, gate_type="MAF"); the ids are then read as (video, text, audio). */
  mafBlock?: MAFBlock;
  /** Return the negative_* names (for a negative prompt), as the reference does. */
  negative?: boolean;
}

/** Positive conditioning, named as in DiffusionCond. */
export interface ConditioningInputs {
  crossAttnCond?: tf.Tensor;
  crossAttnMask?: tf.Tensor;
  globalCond?: tf.Tensor;
}

/** Negative conditioning, named as in DiffusionCond. */
export interface NegativeConditioningInputs {
  negativeCrossAttnCond?: tf.Tensor;
  negativeCrossAttnMask?: tf.Tensor;
  negativeGlobalCond?: tf.Tensor;
}

/**
 * Assembles the conditioning. Returned tensors are new (the caller disposes them); the inputs are
 * left untouched. With `negative: true` the same assembly (including MAF) is returned under the
 * `negative*` names, so both results can be spread into one DiffusionCond.
 */
export function getConditioningInputs(cond: ConditionerOutputs, opts: ConditioningOptions & { negative: true }): NegativeConditioningInputs;
export function getConditioningInputs(cond: ConditionerOutputs, opts?: ConditioningOptions & { negative?: false }): ConditioningInputs;
export function getConditioningInputs(
  cond: ConditionerOutputs,
  opts: ConditioningOptions = {},
): ConditioningInputs | NegativeConditioningInputs {
  const { crossAttnCondIds = [], globalCondIds = [], mafBlock, negative = false } = opts;
  const get = (id: string): ConditionerOutput => {
    const c = cond[id];
    if (!c) throw new Error(`getConditioningInputs: no conditioning tensor for id "${id}" (have: ${Object.keys(cond).join(', ') || 'none'})`);
    return c;
  };

  const out = tf.tidy(() => {
    const res: ConditioningInputs = {};
    if (crossAttnCondIds.length > 0) {
      const xs: tf.Tensor[] = [];
      const ms: tf.Tensor[] = [];
      for (const id of crossAttnCondIds) {
        let { embedding: x, mask: m } = get(id);
        if (x.rank === 2) {
          // [B, C] → [B, 1, C]; the mask gets the same new axis.
          x = x.expandDims(1);
          m = m.expandDims(1);
        }
        xs.push(x);
        ms.push(m);
      }
      if (mafBlock) {
        if (xs.length !== 3) {
          throw new Error(`getConditioningInputs: the MAF gate needs exactly 3 cross-attention ids (video, text, audio), got ${crossAttnCondIds.length}: ${crossAttnCondIds.join(', ')}`);
        }
        // Quirk 1: MAF_Block.forward(video, text, audio) is called as maf_block(text, video, audio), and
        // the returned {video, text, audio} values are concatenated in that key order, so the sequence
        // is [refined text | refined video | refined audio] (text went through the "video" slot).
        const [video, text, audio] = xs;
        const refined = mafBlock.forward(text, video, audio);
        res.crossAttnCond = tf.concat([refined.video, refined.text, refined.audio], 1);
      } else {
        res.crossAttnCond = concatAxis1(xs, crossAttnCondIds, 'embedding');
      }
      // Masks stay in the original id order (the models ignore them anyway, quirk 2).
      res.crossAttnMask = concatAxis1(ms, crossAttnCondIds, 'mask');
    }
    if (globalCondIds.length > 0) {
      const gs = globalCondIds.map((id) => get(id).embedding);
      let g = gs.length === 1 ? gs[0].clone() : tf.concat(gs, -1);
      if (g.rank === 3 && g.shape[1] === 1) g = g.squeeze([1]); // torch squeeze(1)
      res.globalCond = g;
    }
    return res as Record<string, tf.Tensor>;
  }) as ConditioningInputs;

  if (!negative) return out;
  return { negativeCrossAttnCond: out.crossAttnCond, negativeCrossAttnMask: out.crossAttnMask, negativeGlobalCond: out.globalCond };
}

/** torch.cat(dim=1) with torch's dtype promotion (bool + float masks → float). */
function concatAxis1(ts: tf.Tensor[], ids: readonly string[], what: string): tf.Tensor {
  const rank = ts[0].rank;
  ts.forEach((t, i) => {
    if (t.rank !== rank || t.shape[0] !== ts[0].shape[0] || (rank === 3 && t.shape[2] !== ts[0].shape[2])) {
      throw new Error(
        `getConditioningInputs: cannot concatenate the ${what}s of ${ids.join(', ')} on the sequence axis: ` +
          ts.map((u, j) => `${ids[j]} [${u.shape}]`).join(', ') + ` (mismatch at ${ids[i]})`,
      );
    }
  });
  const allSame = ts.every((t) => t.dtype === ts[0].dtype);
  const parts = allSame ? ts : ts.map((t) => t.toFloat());
  return parts.length === 1 ? parts[0].clone() : tf.concat(parts, 1);
}
