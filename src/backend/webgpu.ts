// Optional WebGPU backend over the `webgpu` package's Dawn bindings (Node). Opt-in via
// AUDIOX_BACKEND=webgpu; AUDIOX_DAWN_BACKEND selects a Dawn backend toggle (e.g. opengl, vulkan).
import * as tf from '@tensorflow/tfjs';

export async function initWebgpu(): Promise<void> {
  const webgpu = (await import('webgpu' as string)) as {
    create: (flags: string[]) => unknown;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, webgpu.globals);
  const dawn = process.env.AUDIOX_DAWN_BACKEND;
  const gpu = webgpu.create(dawn ? [`backend=${dawn}`] : []) as {
    requestAdapter: (o?: Record<string, unknown>) => Promise<unknown>;
  };
  Object.defineProperty(globalThis.navigator ?? (globalThis as Record<string, unknown>), 'gpu', {
    value: gpu,
    configurable: true,
  });
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' });
  if (!adapter) throw new Error('no WebGPU adapter found');
  await import('@tensorflow/tfjs-backend-webgpu' as string);
  if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend failed to start');
  await tf.ready();
}
