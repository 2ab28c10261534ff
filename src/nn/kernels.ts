// Custom kernels that nn ops may take as a fast path. nn only knows their names; a backend layer
// (src/backend/) registers an implementation for its backend through tfjs (`tf.registerKernel`) when it
// has one, and the op falls back to stock tf ops otherwise. nn never asks which backend runs.
import * as tf from '@tensorflow/tfjs-core';

/**
 * Channels-last SnakeBeta y = x + invB · sin(a·x)² in one pass: inputs `x` [..., C], `a`, `invB` [C]
 * (float32), output like `x`.
 */
export const SNAKE_BETA_NWC = 'AudioxSnakeBetaNWC';

/** Whether some backend layer registered `kernelName` for the backend now running tfjs ops. */
export function kernelRegistered(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.engine().backendName) !== undefined;
}
