// Per-kernel profile of the Synchformer's MotionFormer over `--segments` 16-frame segments (one per call, as
// encodeVideoWithSync runs them), random weights: time per tfjs kernel (tf.profile), its share, the GFLOP/s of
// the products, and the wall time per segment — where the conditioning's video branch spends its time.
//
//   npx tsx bench/profile-sync.ts [--segments 2] [--markdown]
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/index.ts';
import { Synchformer } from '../src/models/synchformer/synchformer.ts';
import { withResident } from '../src/nn/streaming.ts';
import { randomInit } from './workloads.ts';
import { summarizeKernels } from './kernel-profile.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const SEGMENTS = Number(opt('segments', '2'));

const info = await initBackend();
const sync = new Synchformer();
randomInit(sync);
const x = tf.randomUniform([1, 1, 16, 3, 224, 224], -1, 1, 'float32', 7);
const run = () => sync.forward(x);
withResident(sync.vfeat_extractor, () => {
  tf.tidy(() => run().dataSync()); // warm-up
});

const t0 = performance.now();
const prof = await tf.profile(() => {
  let y: tf.Tensor | null = null;
  withResident(sync.vfeat_extractor, () => {
    for (let i = 0; i < SEGMENTS; i++) {
      y?.dispose();
      y = run();
      y.dataSync();
    }
  });
  return y!;
});
const wall = performance.now() - t0;
tf.dispose(prof.result as tf.Tensor);

const { rows, total, gemm } = summarizeKernels(prof.kernels);
console.log(
  `backend ${info.name}, ${info.threads} threads; MotionFormer, ${SEGMENTS} segment(s): ${wall.toFixed(0)} ms wall ` +
    `(${(wall / SEGMENTS).toFixed(0)} ms per segment), ${total.toFixed(0)} ms in kernels`,
);
console.log('\n| kernel | calls | ms per segment | share | GFLOP/s |\n| --- | --- | --- | --- | --- |');
for (const [name, r] of rows.slice(0, 18)) {
  console.log(
    `| ${name} | ${r.calls / SEGMENTS} | ${(r.ms / SEGMENTS).toFixed(0)} | ${((100 * r.ms) / total).toFixed(1)} % | ${r.gflop ? (r.gflop / (r.ms / 1000)).toFixed(0) : ''} |`,
  );
}
if (argv.includes('--shapes')) {
  for (const [name, r] of rows.slice(0, 8)) {
    console.log(`\n${name}:`);
    for (const [s, ms] of [...r.shapes.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`  ${(ms / SEGMENTS).toFixed(0)} ms  ${s}`);
  }
}
console.log(
  `\nproducts: ${((100 * gemm.ms) / total).toFixed(1)} % of kernel time at ${(gemm.gflop / (gemm.ms / 1000)).toFixed(0)} GFLOP/s; ` +
    `everything else ${(((total - gemm.ms) / total) * 100).toFixed(1)} %; ${(gemm.gflop / SEGMENTS).toFixed(0)} GFLOP of products per segment`,
);
tf.dispose(x);
sync.dispose();
