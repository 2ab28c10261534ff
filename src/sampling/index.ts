// Sampling: schedules, denoiser wrappers, k-diffusion samplers and the sample_k / sample_rf drivers.
export * from './schedule.ts';
export * from './denoiser.ts';
export * from './samplers.ts';
export * from './dpm-solver.ts';
export * from './registry.ts';
export * from './sample.ts';
export * from '../nn/noise.ts';
