// Optional WebGPU backend: @tensorflow/tfjs-backend-webgpu over the `webgpu` package's Dawn bindings in
// Node. Runs on any GPU Dawn drives (Vulkan / Metal / D3D12, or OpenGL(ES)) without a CUDA version lock.
// Opt-in: AUDIOX_BACKEND=webgpu. AUDIOX_DAWN_BACKEND passes a Dawn backend toggle (vulkan, opengl,
// opengles, …); on a machine with only a software OpenGL adapter use opengles and EGL_PLATFORM=surfaceless.
//
// tfjs' own factory cannot be used as is: it only registers when `navigator.gpu` exists at import time
// (Node 20 has no `navigator`), and it requests a core-feature-level adapter, which OpenGL adapters
// do not offer. So the adapter and device are created here and handed to the exported WebGPUBackend.
import * as tf from '@tensorflow/tfjs-core';

interface GpuAdapter {
  features: Set<string>;
  limits: Record<string, number>;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; backendType?: string };
  requestDevice(d?: Record<string, unknown>): Promise<unknown>;
}
interface Gpu {
  requestAdapter(o?: Record<string, unknown>): Promise<GpuAdapter | null>;
}

export interface WebgpuAdapterInfo {
  /** e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" */
  description: string;
  backend: string;
  featureLevel: 'core' | 'compatibility';
}

let gpu: Gpu | null = null;
let found: { adapter: GpuAdapter; featureLevel: 'core' | 'compatibility'; toggle: string } | null = null;

/**
 * Creates Dawn instances until one yields an adapter: the AUDIOX_DAWN_BACKEND toggle if set, else Dawn's
 * default choice and then OpenGL ES (headless: EGL_PLATFORM defaults to surfaceless without a display).
 */
async function findAdapter(): Promise<typeof found> {
  if (found) return found;
  const webgpu = (await import('webgpu' as string)) as { create: (flags: string[]) => Gpu; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals); // GPUBufferUsage, GPUMapMode, … used by the tfjs backend
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) process.env.EGL_PLATFORM ??= 'surfaceless';
  const toggles = process.env.AUDIOX_DAWN_BACKEND ? [process.env.AUDIOX_DAWN_BACKEND] : ['', 'opengles'];
  for (const toggle of toggles) {
    const g = webgpu.create(toggle ? [`backend=${toggle}`] : []);
    const a = await requestAdapter(g);
    if (a) {
      gpu = g;
      found = { ...a, toggle: toggle || 'default' };
      const nav = globalThis as unknown as { navigator?: Record<string, unknown> };
      if (!nav.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
      Object.defineProperty(nav.navigator!, 'gpu', { value: gpu, configurable: true });
      return found;
    }
  }
  return null;
}

/** A core adapter if there is one, else a compatibility-level one (OpenGL ES / software). */
async function requestAdapter(g: Gpu): Promise<{ adapter: GpuAdapter; featureLevel: 'core' | 'compatibility' } | null> {
  const core = await g.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (core) return { adapter: core, featureLevel: 'core' };
  const compat = await g.requestAdapter({ featureLevel: 'compatibility' }).catch(() => null);
  return compat ? { adapter: compat, featureLevel: 'compatibility' } : null;
}

/** Looks for an adapter without starting the backend (for `audiox doctor`); null when none is found. */
export async function probeWebgpuAdapter(): Promise<WebgpuAdapterInfo | null> {
  const f = await findAdapter();
  if (!f) return null;
  const i = f.adapter.info ?? {};
  return {
    description: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unknown adapter',
    backend: i.backendType ?? f.toggle,
    featureLevel: f.featureLevel,
  };
}

/**
 * Our own WGSL kernels (GEMM, fused attention, layer norm) are opt-in: AUDIOX_WEBGPU_KERNELS=1. They
 * pass every fixture, but on the only adapter measured so far (llvmpipe) they are not faster than tfjs'.
 */
function ownKernelsWanted(): boolean {
  const v = process.env.AUDIOX_WEBGPU_KERNELS;
  return v === '1' || v === 'true';
}

export async function initWebgpu(): Promise<WebgpuAdapterInfo> {
  const f = await findAdapter();
  if (!f) {
    throw new Error(
      'no WebGPU adapter found (set AUDIOX_DAWN_BACKEND=vulkan|opengl|opengles; headless OpenGL also needs EGL_PLATFORM=surfaceless)',
    );
  }
  const { adapter } = f;
  const { WebGPUBackend } = (await import('@tensorflow/tfjs-backend-webgpu' as string)) as {
    WebGPUBackend: new (device: unknown, info?: unknown) => tf.KernelBackend;
  };
  const limits = adapter.limits;
  const factory = async () => {
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: {
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    return new WebGPUBackend(device, adapter.info);
  };
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', factory, 3);
  if (!(await tf.setBackend('webgpu'))) throw new Error('webgpu backend failed to start');
  await tf.ready();
  if (ownKernelsWanted()) {
    const { registerWebgpuKernels } = await import('./webgpu-kernels.ts');
    registerWebgpuKernels();
  }
  return (await probeWebgpuAdapter())!;
}
