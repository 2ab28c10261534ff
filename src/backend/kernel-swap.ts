// Replacing one of a backend's stock kernels by a wrapper that may fall back to it: how the backend layer
// installs its fast paths (the native BLAS kernels, the wasm layout workaround).
import * as tf from '@tensorflow/tfjs-core';

/**
 * Registers `make(stock)` in place of the `backendName` kernel `kernelName`; false (nothing changed) when
 * that backend has no such kernel.
 */
export function replaceKernel<F>(kernelName: string, backendName: string, make: (stock: F) => F): boolean {
  const k = tf.getKernel(kernelName, backendName);
  if (!k) return false;
  const wrapped = make(k.kernelFunc as unknown as F);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...k, kernelFunc: wrapped as unknown as tf.KernelFunc });
  return true;
}
