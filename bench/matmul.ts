// GEMM throughput of the active backend (best of N), for the lever table in the README.
// Run through `npm run bench -- --only matmul`, or directly: AUDIOX_WASM_THREADS=1 AUDIOX_BLAS=0 tsx bench/matmul.ts
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.ts';

/** [M, K, N]: a square GEMM and the DiT's hot shapes (474 = 2·237 tokens, width 1536, MLP 6144). */
export const MATMUL_SHAPES: [number, number, number][] = [
  [1024, 1024, 1024],
  [474, 1536, 1536],
  [474, 1536, 6144],
  [474, 6144, 1536],
];

export async function benchMatmul(reps = 5): Promise<{ shape: string; ms: number; gflops: number }[]> {
  const rows = [];
  for (const [m, k, n] of MATMUL_SHAPES) {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    tf.matMul(a, b).dispose(); // warm-up (kernel setup, heap growth)
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      best = Math.min(best, performance.now() - t0);
      c.dispose();
    }
    tf.dispose([a, b]);
    rows.push({ shape: `${m}x${k}x${n}`, ms: best, gflops: (2 * m * k * n) / best / 1e6 });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const info = await initBackend();
  const rows = await benchMatmul();
  console.log(JSON.stringify({ backend: info.probes.find((p) => p.name === info.name)?.reason, rows }));
}
