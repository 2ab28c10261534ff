// Registers every WGSL kernel of ours on the running webgpu backend (AUDIOX_WEBGPU_KERNELS=1).
import { registerWebgpuAttention } from './webgpu-attention.ts';
import { registerWebgpuGemm } from './webgpu-gemm.ts';
import { registerWebgpuLayerNorm } from './webgpu-layernorm.ts';

export function registerWebgpuKernels(): void {
  if (!registerWebgpuGemm()) throw new Error('webgpu backend has no BatchMatMul/_FusedMatMul kernel to replace: is tfjs-backend-webgpu 4.22 installed?');
  registerWebgpuAttention();
  registerWebgpuLayerNorm();
}
