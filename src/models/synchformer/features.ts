// Synchformer video features for the AudioX-MAF sync branch (FeaturesUtils.encode_video_with_sync and the
// input preparation of data/utils.py::encode_video_with_synchformer; docs/REFERENCE.md §6.1–6.2):
// 25 fps frames, 224 × 224, ToDtype(scale) + Normalize(0.5, 0.5), overlapping 16-frame segments every 8 frames,
// 8 features per segment ⇒ 10 s (250 frames) → 30 segments → [B, 240, 768].
import * as tf from '@tensorflow/tfjs';
import { DIVIDED_ATTENTION, GELU, kernelRegistered } from '../../nn/kernels.ts';
import { checkBudget, type MemoryBudget } from '../../nn/runtime.ts';
import type { Synchformer } from './synchformer.ts';
import type { MotionFormerConfig } from './motionformer.ts';

export const SYNC_FPS = 25;
export const SYNC_SIZE = 224;
export const SEGMENT_SIZE = 16;
export const STEP_SIZE = 8;

/**
 * Frames [T, 3, 224, 224] or [B, T, 3, 224, 224] → normalised [B, T, 3, 224, 224] in [−1, 1].
 * As torchvision's ToDtype(float32, scale=True): an int32 tensor holds uint8 values and is divided by 255;
 * a float tensor is taken to be in [0, 1] already. Resizing is not done here (the video reader delivers 224 px).
 */
export function prepareSyncFrames(frames: tf.Tensor): tf.Tensor5D {
  const x = frames.rank === 4 ? frames.expandDims(0) : frames;
  try {
    if (x.rank !== 5 || x.shape[2] !== 3 || x.shape[3] !== SYNC_SIZE || x.shape[4] !== SYNC_SIZE) {
      throw new Error(`Synchformer input: expected frames [B?, T, 3, ${SYNC_SIZE}, ${SYNC_SIZE}], got [${frames.shape}]`);
    }
    // Op by op, each intermediate released at once: a 10 s input is 150 MB per copy.
    const steps: ((t: tf.Tensor) => tf.Tensor)[] = [
      ...(x.dtype === 'int32' ? [(t: tf.Tensor) => t.toFloat(), (t: tf.Tensor) => t.div(255)] : [(t: tf.Tensor) => t.toFloat()]),
      (t) => t.sub(0.5),
      (t) => t.div(0.5),
    ];
    let cur: tf.Tensor = x;
    for (const step of steps) {
      const next = tf.tidy(() => step(cur));
      if (cur !== x) cur.dispose();
      cur = next;
    }
    return cur as tf.Tensor5D;
  } finally {
    if (x !== frames) x.dispose();
  }
}

/** S = (T − 16) // 8 + 1 segments (30 for 250 frames). */
export function syncSegmentCount(frames: number, segmentSize = SEGMENT_SIZE, stepSize = STEP_SIZE): number {
  return frames < segmentSize ? 0 : Math.floor((frames - segmentSize) / stepSize) + 1;
}

/**
 * Peak backend bytes (as tf.memory() counts them) of one segment through MotionFormer, the way the forward runs:
 * the segment's input copies (slice, batch; the patch embedding's re-layout), every block's output (held by the
 * forward's tidy), and the larger of the patch embedding's working set and one block's (attention with its
 * scores unless the backend fuses them, the MLP with GELU at mlp_ratio · D), with 5 % headroom. test/models/synchformer.test.ts checks it
 * against measured peaks.
 */
export function segmentWorkingBytes(c: MotionFormerConfig, segmentFrames = SEGMENT_SIZE): number {
  const p = (c.img_size / c.patch_size) ** 2;
  const f = c.temporal_resolution;
  const ld = (1 + f * p) * c.embed_dim;
  const input = segmentFrames * c.channels * c.img_size * c.img_size;
  const scores = 2 * c.num_heads * f * p * (p + 1) + 2 * c.num_heads * p * f * (f + 1);
  // With the backend's fused divided attention and GELU (nn/kernels.ts) a block holds no per-group copies or
  // score tensors and GELU no temporaries: that term was fitted to the measured full-size peak (244.6 MiB on
  // wasm + native BLAS, where the tf-ops path peaks at 286.9 MiB).
  const fused = kernelRegistered(DIVIDED_ATTENTION) && kernelRegistered(GELU);
  const block = fused ? 14 * ld + 4 * ld * c.mlp_ratio : 10 * ld + 6 * ld * c.mlp_ratio + scores;
  return Math.ceil(1.05 * 4 * (4 * input + (c.depth + 4) * ld + Math.max(5 * input, block)));
}

/**
 * Peak backend bytes of the sync branch over `frames` frames with `batch` segments per call (what the memory
 * planner counts for the conditioning phase): first the int32 frames and two float copies while normalising
 * (prepareSyncFrames), then the normalised frames, one call's segment working set and the features so far.
 */
export function syncFeatureBytes(c: MotionFormerConfig, frames: number, batch = 1): number {
  const video = frames * c.channels * SYNC_SIZE * SYNC_SIZE * 4;
  const features = syncSegmentCount(frames) * c.temporal_resolution * c.embed_dim * 4;
  return Math.max(3 * video, video + batch * segmentWorkingBytes(c) + 2 * features);
}

export interface EncodeVideoWithSyncOptions {
  /** Segments per Synchformer call; < 0 = B segments (the reference's default). */
  batchSize?: number;
  segmentSize?: number;
  stepSize?: number;
  /** Called after each chunk with (segments done, total). */
  onProgress?: (done: number, total: number) => void;
  /** What the segment batch is checked against (default: the model's `budget`, which loadModel sets). */
  budget?: MemoryBudget;
}

/**
 * FeaturesUtils.encode_video_with_sync: x [B, T, 3, 224, 224] (already normalised, see prepareSyncFrames)
 * → [B, S·8, D], segment-major.
 */
export function encodeVideoWithSync(model: Synchformer, x: tf.Tensor, opts: EncodeVideoWithSyncOptions = {}): tf.Tensor3D {
  const segmentSize = opts.segmentSize ?? SEGMENT_SIZE;
  const stepSize = opts.stepSize ?? STEP_SIZE;
  if (x.rank !== 5 || x.shape[2] !== 3 || x.shape[3] !== SYNC_SIZE || x.shape[4] !== SYNC_SIZE) {
    throw new Error(`encodeVideoWithSync: expected video [B, T, 3, ${SYNC_SIZE}, ${SYNC_SIZE}], got [${x.shape}]`);
  }
  const [b, t] = x.shape;
  const segments = syncSegmentCount(t, segmentSize, stepSize);
  if (segments < 1) throw new Error(`encodeVideoWithSync: ${t} frames is fewer than one ${segmentSize}-frame segment`);
  const total = b * segments;
  const batch = Math.min(opts.batchSize === undefined || opts.batchSize < 0 ? b : opts.batchSize, total);
  if (!(batch >= 1) || !Number.isInteger(batch)) throw new Error(`encodeVideoWithSync: batchSize must be a positive integer or -1, got ${opts.batchSize}`);
  checkBudget(opts.budget ?? model.budget, batch * segmentWorkingBytes(model.vfeat_extractor.config, segmentSize), `Synchformer (${batch} segment(s) per call)`);

  const [, , c, h, w] = x.shape;
  const outputs: tf.Tensor[] = [];
  try {
    for (let i = 0; i < total; i += batch) {
      const n = Math.min(batch, total - i);
      // Segments in '(b s)' order: item ⌊j/S⌋, frames [8·(j mod S), 8·(j mod S) + 16).
      const feats = tf.tidy(() => {
        const segs = Array.from({ length: n }, (_, k) => {
          const j = i + k;
          return x.slice([Math.floor(j / segments), (j % segments) * stepSize, 0, 0, 0], [1, segmentSize, c, h, w]);
        });
        return model.forward(tf.concat(segs, 0).reshape([n, 1, segmentSize, c, h, w])); // [n, 1, 8, D]
      });
      outputs.push(feats);
      opts.onProgress?.(i + n, total);
    }
    return tf.tidy(() => {
      const all = tf.concat(outputs, 0); // [(B·S), 1, 8, D]
      const [, , tt, d] = all.shape;
      return all.reshape([b, segments * tt, d]) as tf.Tensor3D;
    });
  } finally {
    outputs.forEach((o) => o.dispose());
  }
}
