// VAE bottleneck (stable-audio-tools `bottleneck.py::VAEBottleneck`, docs/REFERENCE.md §5.4). No parameters.
import * as tf from '@tensorflow/tfjs';
import * as F from '../../nn/functional.ts';
import type { NoiseSource } from '../../nn/noise.ts';

export interface BottleneckEncodeOptions {
  /** Source of the reparameterisation noise (stream `vae`, one draw of the latents' shape). */
  noise?: NoiseSource;
  /** Return the posterior mean instead of a sample (deterministic; draws nothing). */
  meanOnly?: boolean;
}

/** Standard deviation of the posterior from the raw `scale` half: softplus(scale) + 1e-4. */
export function vaeStd(scale: tf.Tensor): tf.Tensor {
  return tf.tidy(() => F.softplus(scale).add(1e-4));
}

export class VAEBottleneck {
  /**
   * [B, 2D, L] encoder output → [B, D, L]: mean, scale = chunk(2, dim=1);
   * z = ε·(softplus(scale) + 1e-4) + mean with ε ~ N(0, I) drawn for the whole batch at once.
   * Quirk 11: encoding is stochastic and consumes randomness (also for silent inputs).
   */
  encode(x: tf.Tensor3D, opts: BottleneckEncodeOptions = {}): tf.Tensor3D {
    const [b, c2, l] = x.shape;
    if (c2 % 2 !== 0) throw new Error(`VAEBottleneck: channel count ${c2} is odd (expected mean ‖ scale)`);
    const d = c2 / 2;
    if (opts.meanOnly) return tf.slice(x, [0, 0, 0], [b, d, l]);
    if (!opts.noise) throw new Error('VAEBottleneck.encode: a NoiseSource is required (or meanOnly: true)');
    const eps = opts.noise.randn('vae', [b, d, l]);
    try {
      return tf.tidy(() => {
        const mean = tf.slice(x, [0, 0, 0], [b, d, l]);
        const std = vaeStd(tf.slice(x, [0, d, 0], [b, d, l]));
        return eps.mul(std).add(mean) as tf.Tensor3D;
      });
    } finally {
      eps.dispose();
    }
  }

  decode(z: tf.Tensor3D): tf.Tensor3D {
    return z.clone();
  }
}
