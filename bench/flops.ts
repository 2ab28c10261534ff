// Analytic FLOPs (multiply-adds × 2) of one run of each bench workload at the bench shapes (pure; shared by
// bench/run.ts, bench/workloads.ts and test/bench/flops.test.ts).

export type Workload = 'dit' | 'mmdit' | 'vae' | 't5' | 'clip' | 'sync' | 'cond';

/** Transformer layers of the full-size DiT and MMDiT (the bench builds fewer and extrapolates). */
export const DEPTH = 24;

/** Shapes shared with bench/torch_baseline.py (see the README's benchmark section). */
export const SHAPES = {
  batch: 2,
  frames: 236,
  context: 384,
  vaeLatents: 216,
  t5Tokens: 128,
  clipFrames: 50,
  /** 10 s at 25 fps: 30 overlapping 16-frame segments through the Synchformer (`--sync-frames` scales it). */
  syncFrames: 250,
  /** The audio prompt of the `cond` workload: 10 s of silence at 44.1 kHz (a V2A generation has none). */
  audioSamples: 441000,
};

/** Synchformer FLOPs over `frames` 25 fps frames: 16-frame segments every 8, 1568 patch tokens + CLS each. */
export function syncGflop(frames: number): number {
  const D = 768;
  const P = 196;
  const F = 8;
  const L = 1 + F * P;
  const segments = Math.floor((frames - 16) / 8) + 1;
  const patch = 2 * F * P * (3 * 2 * 16 * 16) * D;
  // qkv + proj of the two divided attentions, the MLP; scores + values: CLS over all, patches over 1 + 8 / 1 + 196.
  const block = 2 * L * D * D * (2 * 3 + 2 * 1 + 2 * 4) + 4 * D * (2 * L + F * P * (1 + F) + F * P * (1 + P));
  // Spatial aggregation per frame: keys/values over 197 tokens, the CLS row through q, out and the MLP.
  const agg = F * (2 * (P + 1) * D * 2 * D + 2 * D * D * 2 + 2 * D * 4 * D * 2 + 4 * (P + 1) * D);
  return (segments * (patch + 12 * block + agg)) / 1e9;
}

/** The AudioX-MAF conditioning phase minus the Synchformer: CLIP, the temporal transformer, T5, mel, MAF. */
export function condGflopWithoutSync(): number {
  const D = 768;
  const tokens = SHAPES.clipFrames * 50; // one temporal sequence of 50 frames per CLIP token position
  const temporal = 4 * (tokens * 2 * D * (3 * 1024 + 1024 + 2 * 4 * D) + 4 * tokens * 50 * 1024);
  const proj = 2 * D * 2500 * 128 + 2 * D * 240 * 128;
  const frames = 1 + Math.floor(SHAPES.audioSamples / 256);
  const mel = 2 * frames * (1024 * 1026 + 513 * 256 + 256 * D); // windowed-DFT matmul, filterbank, projection
  const ctx = 128 + 128 + frames;
  const E = 192;
  const maf = 2 * E * D * D * 2 + 2 * ctx * D * 2 * D + 4 * E * ctx * D + 8 * (E * 2 * D * 12 * D + 4 * E * E * D);
  return (temporal + proj + mel + maf) / 1e9 + gflop('clip') + gflop('t5');
}

/** GFLOP of one run of workload `w` (DiT/MMDiT: the full 24-layer forward); `syncFrames` for sync/cond. */
export function gflop(w: Workload, syncFrames: number = SHAPES.syncFrames): number {
  const B = SHAPES.batch;
  const L = SHAPES.frames + 1; // + the prepended token
  const S = SHAPES.context;
  const D = 1536;
  const C = 768;
  switch (w) {
    case 'dit':
      return (DEPTH * (2 * B * L * D * D * 18 + 4 * B * S * C * C + 4 * B * L * L * D + 4 * B * L * S * D) + 4 * B * S * C * C) / 1e9;
    case 'mmdit': {
      const Hf = 4096;
      const layer = 2 * B * L * D * D * 13 + 2 * B * L * 3 * D * Hf * 3 + 4 * B * L * L * D;
      return (DEPTH * layer + 2 * B * S * C * D + 2 * B * D * S * L) / 1e9;
    }
    case 'vae': {
      let len = SHAPES.vaeLatents;
      let f = 2 * len * 2048 * 64 * 7;
      for (const [cin, cout, s] of [[2048, 1024, 8], [1024, 512, 8], [512, 256, 4], [256, 128, 4], [128, 128, 2]]) {
        f += 2 * len * cin * cout * 2 * s;
        len *= s;
        f += 3 * (2 * len * cout * cout * 7 + 2 * len * cout * cout);
      }
      return (f + 2 * len * 128 * 2 * 7) / 1e9;
    }
    case 't5': {
      const n = SHAPES.t5Tokens;
      return (12 * (2 * n * C * C * 4 + 2 * n * C * 3072 * 2 + 4 * n * n * C)) / 1e9;
    }
    case 'clip': {
      const n = SHAPES.clipFrames;
      return (n * (12 * (2 * 50 * C * C * 4 + 2 * 50 * C * 3072 * 2 + 4 * 50 * 50 * C) + 2 * 49 * C * 3072)) / 1e9;
    }
    case 'sync':
      return syncGflop(syncFrames);
    case 'cond':
      return syncGflop(syncFrames) + condGflopWithoutSync();
  }
}

