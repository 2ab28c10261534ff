export * from './module.ts';
export * from './layers.ts';
export * from './residency.ts';
export * from './rotary.ts';
export * as F from './functional.ts';
export * from './noise.ts';
