export * from './module.ts';
export * from './layers.ts';
export * from './relaid-layers.ts';
export * from './residency.ts';
export * from './rotary.ts';
/** The functional ops (torch.nn.functional's counterparts: linear, layerNorm, conv1d, attention, activations). */
export * as F from './functional.ts';
export * from './noise.ts';
