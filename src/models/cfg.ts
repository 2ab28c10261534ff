// Classifier-free guidance as the DiT / MMDiT forwards do it inside the model (docs/REFERENCE.md §2.3, quirk 3):
// one batched pass over [cond ; uncond], then uncond + (cond − uncond)·scale and the scale_phi rescale.
import * as tf from '@tensorflow/tfjs';

/**
 * The conditioning half-batches: [cond ; null] with null = zeros_like(cond), or [cond ; negative]
 * where the negative's positions whose mask is false are replaced by zeros.
 */
export function cfgCondBatch(cond: tf.Tensor, negative?: tf.Tensor | null, negativeMask?: tf.Tensor | null): tf.Tensor {
  return tf.tidy(() => {
    const nullEmbed = tf.zerosLike(cond);
    if (!negative) return tf.concat([cond, nullEmbed], 0);
    if (!tf.util.arraysEqual(negative.shape, cond.shape)) {
      throw new Error(`CFG: negative conditioning [${negative.shape}] must have the shape of the conditioning [${cond.shape}]`);
    }
    let neg = negative;
    if (negativeMask) {
      if (negativeMask.rank !== 2 || negativeMask.shape[0] !== cond.shape[0] || negativeMask.shape[1] !== cond.shape[1]) {
        throw new Error(`CFG: negative mask must be [${cond.shape.slice(0, 2)}], got [${negativeMask.shape}]`);
      }
      const keep = negativeMask.cast('bool').expandDims(2); // [B, S, 1]
      neg = tf.where(tf.broadcastTo(keep, cond.shape), negative, nullEmbed);
    }
    return tf.concat([cond, neg], 0);
  });
}

/** Duplicates a tensor along the batch axis: [x ; x]. */
export function doubleBatch(x: tf.Tensor): tf.Tensor {
  return tf.concat([x, x], 0);
}

/**
 * Splits the batched output [cond ; uncond] and combines it. If `scalePhi` ≠ 0, the guided output
 * is rescaled towards the conditional output's std over the channel axis (1, unbiased).
 */
export function combineCfg(batchOutput: tf.Tensor, cfgScale: number, scalePhi: number): tf.Tensor {
  return tf.tidy(() => {
    const [cond, uncond] = tf.split(batchOutput, 2, 0);
    const cfg = uncond.add(cond.sub(uncond).mul(cfgScale));
    if (scalePhi === 0) return cfg;
    const ratio = stdUnbiased(cond, 1).div(stdUnbiased(cfg, 1));
    return cfg.mul(ratio).mul(scalePhi).add(cfg.mul(1 - scalePhi));
  });
}

/** torch.std(x, dim, keepdim=True) with Bessel's correction. */
export function stdUnbiased(x: tf.Tensor, axis: number): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[axis];
    const dev = x.sub(x.mean(axis, true));
    return dev.square().sum(axis, true).div(n - 1).sqrt();
  });
}
