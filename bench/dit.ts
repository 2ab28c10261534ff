// DiT forward benchmark at full width (1536, 24 heads, 64-d heads, context 768) with only 4 of the
// 24 layers and random weights: one CFG call as the sampler makes it (B = 1 → batch 2 inside),
// 236 latent frames (+1 prepended token), 471 context tokens (128 video + 128 text + 215 audio).
// Usage: npx tsx bench/dit.ts [--layers 4] [--runs 2]   (AUDIOX_BACKEND selects the backend)
import * as tf from '@tensorflow/tfjs';
import { activeBackend, initBackend } from '../src/backend/index.ts';
import { DiTWrapper } from '../src/models/dit.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const LAYERS = arg('layers', 4);
const RUNS = arg('runs', 2);
const T = 236;
const S = 128 + 128 + 215;

await initBackend();
const info = activeBackend();
const wrapper = DiTWrapper.fromConfig({
  io_channels: 64,
  embed_dim: 1536,
  depth: LAYERS,
  num_heads: 24,
  cond_token_dim: 768,
  global_cond_dim: 1536,
  project_cond_tokens: false,
  transformer_type: 'continuous_transformer',
});
let seed = 1;
wrapper.initWeights((key, p) =>
  key.endsWith('.beta') ? tf.zeros(p.shape) : tf.randomNormal(p.shape, 0, 0.7 / Math.sqrt(p.shape.at(-1) ?? 1), 'float32', seed++),
);
const dit = wrapper.model;
const x = tf.randomNormal([1, 64, T], 0, 1, 'float32', 100);
const t = tf.tensor1d([0.7]);
const c = tf.randomNormal([1, S, 768], 0, 1, 'float32', 101);

const time = async (fn: () => tf.Tensor): Promise<number> => {
  const t0 = performance.now();
  const y = fn();
  await y.data();
  y.dispose();
  return performance.now() - t0;
};

console.log(`backend ${info.name} (tf ${info.tfBackend}, ${info.threads} thread(s)); DiT 1536×${LAYERS} layers, B 1 + CFG → 2, T ${T}+1, context ${S}`);
await time(() => wrapper.forward(x, t, { crossAttnCond: c, cfgScale: 7 })); // warm-up
for (let r = 0; r < RUNS; r++) {
  const total = await time(() => wrapper.forward(x, t, { crossAttnCond: c, cfgScale: 7 }));
  console.log(`forward (CFG, ${LAYERS} layers): ${total.toFixed(0)} ms`);
}

// Per layer, on the batched residual stream [2, 237, 1536] with the embedded context [2, 471, 768].
const h = tf.randomNormal([2, T + 1, 1536], 0, 1, 'float32', 102) as tf.Tensor3D;
const context = tf.tidy(() => dit.toCondEmbed!.forward(tf.concat([c, tf.zerosLike(c)])) as tf.Tensor3D);
const rotary = await (async () => {
  const { rotateHalfTables } = await import('../src/nn/rotary.ts');
  return rotateHalfTables(dit.transformer.rotaryPosEmb!.freqs(T + 1), 64, { headsAfterLength: true });
})();
const perLayer: number[] = [];
for (const layer of dit.transformer.layers) {
  perLayer.push(await time(() => layer.forward(h, { context, rotary })));
}
const gflop = (2 * 2 * (T + 1) * 1536 * (3 * 1536 + 1536 + 1536 + 1536 + 12288 + 6144) + 2 * 2 * S * 768 * 1536 +
  2 * 2 * 2 * 24 * (T + 1) * 64 * (T + 1 + S)) / 1e9;
console.log(`per layer: ${perLayer.map((m) => m.toFixed(0)).join(', ')} ms (≈${gflop.toFixed(1)} GFLOP each → ` +
  `${(gflop / (perLayer.reduce((a, b) => a + b, 0) / perLayer.length / 1000)).toFixed(1)} GFLOP/s)`);
console.log(`extrapolated 24-layer forward: ≈${((perLayer.reduce((a, b) => a + b, 0) / perLayer.length) * 24 / 1000).toFixed(1)} s`);
tf.dispose([x, t, c, h, context, rotary.cos, rotary.sin, rotary.rotate]);
wrapper.dispose();
