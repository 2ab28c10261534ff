// Media → the video conditioners' inputs: CLIP frames and Synchformer features of the 10 s conditioning
// window (docs/REFERENCE.md §8; quirks 13, 14 only with `referenceQuirks`). Frame selection and transforms: io/frames.ts.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { branchFrameOptions, stillImageFrames, windowFrameCount, type StillImageFrames } from '../../../io/frames.ts';
import { isImagePath, readImage, readVideoFrames } from '../../../io/video.ts';
import { withResident } from '../../../nn/streaming.ts';
import { encodeVideoWithSync, prepareSyncFrames, SEGMENT_SIZE, SYNC_FPS, SYNC_SIZE, syncSegmentCount } from '../../synchformer/features.ts';
import { Synchformer } from '../../synchformer/synchformer.ts';
import { CONDITIONING_SECONDS, type ConditionerHost, type ConditionerMedia, type MediaOptions } from '../conditioner.ts';
import type { VideoConditionerSizes } from './clip.ts';

/** A video or a still image (`image`, or a `video` with an image extension, as the reference decides). */
export interface VisualSource {
  video?: string;
  image?: string;
}

function stillImagePath(source: VisualSource): string | undefined {
  if (source.image) return source.image;
  return source.video && isImagePath(source.video) ? source.video : undefined;
}

async function stillImage(file: string, referenceQuirks: boolean, clipSize: number, signal?: AbortSignal): Promise<StillImageFrames> {
  const img = await readImage(file, { signal });
  return stillImageFrames(img.hwc, img.H, img.W, { clipSize, syncSize: SYNC_SIZE, referenceQuirks });
}

/** [C, H, W] float frame repeated T times → [1, T, C, H, W]. */
function repeatFrame(frame: Float32Array, T: number, c: number, h: number, w: number): tf.Tensor {
  const buf = new Float32Array(T * frame.length);
  for (let t = 0; t < T; t++) buf.set(frame, t * frame.length);
  return tf.tensor(buf, [1, T, c, h, w]);
}

/**
 * Frames for a video conditioner: [1, T, 3, S, S] in uint8 value range (the conditioner divides by 255).
 * No video and no image → zeros (the conditioner then substitutes its learned empty feature).
 * Still images: see stillImageFrames (quirk 13 only with `referenceQuirks`).
 */
export async function videoFrames(
  host: ConditionerHost,
  cond: { readonly sizes: VideoConditionerSizes },
  source: VisualSource,
  opts: MediaOptions,
): Promise<tf.Tensor> {
  const fps = host.videoFps;
  const T = cond.sizes.frames;
  const size = cond.sizes.clip_vision?.image_size ?? 224;
  const file = source.video ?? source.image;
  if (!file) return tf.zeros([1, T, 3, size, size]);
  const image = stillImagePath(source);
  if (image) return repeatFrame((await stillImage(image, opts.referenceQuirks, size, opts.signal)).clip, T, 3, size, size);
  const { frames } = await readVideoFrames(file, {
    fps,
    seekTime: opts.seekTime,
    duration: T / fps,
    size,
    ...branchFrameOptions('clip', opts.referenceQuirks),
    signal: opts.signal,
  });
  return tf.tensor(Float32Array.from(frames), [1, T, 3, size, size]);
}

/**
 * Synchformer features [1, tokens, D] for the sync variant: 25 fps frames of the video (or the still image
 * repeated) through the Synchformer; zeros when there is neither, or no Synchformer (as the reference UI).
 */
export async function syncFeatures(
  host: ConditionerHost,
  cond: { readonly sizes: VideoConditionerSizes },
  source: VisualSource,
  opts: MediaOptions,
): Promise<tf.Tensor> {
  const tokens = cond.sizes.sync_tokens;
  const dim = cond.sizes.temporal_dim;
  const file = source.video ?? source.image;
  const sync = host.externalModel('synchformer');
  if (!file || !sync) return tf.zeros([1, tokens, dim]);
  if (!(sync instanceof Synchformer)) throw new Error(`the host's synchformer is a ${sync.constructor.name}, not a Synchformer`);
  const T = windowFrameCount(CONDITIONING_SECONDS, SYNC_FPS);
  const image = stillImagePath(source);
  let f: tf.Tensor;
  if (image) {
    // Every 16-frame segment of a repeated picture is the same: encode one and repeat its 8 tokens.
    const { sync: frame } = await stillImage(image, opts.referenceQuirks, cond.sizes.clip_vision?.image_size ?? 224, opts.signal);
    const segments = syncSegmentCount(T);
    const x = repeatFrame(frame, SEGMENT_SIZE, 3, SYNC_SIZE, SYNC_SIZE);
    try {
      const one = withResident(sync.vfeat_extractor, () => encodeVideoWithSync(sync, x));
      try {
        f = tf.tile(one, [1, segments, 1]);
      } finally {
        one.dispose();
      }
    } finally {
      x.dispose();
    }
  } else {
    const { frames } = await readVideoFrames(file, {
      fps: SYNC_FPS,
      seekTime: opts.seekTime,
      duration: CONDITIONING_SECONDS,
      size: SYNC_SIZE,
      ...branchFrameOptions('sync', opts.referenceQuirks),
      signal: opts.signal,
    });
    const raw = tf.tensor(Int32Array.from(frames), [1, T, 3, SYNC_SIZE, SYNC_SIZE], 'int32');
    const x = prepareSyncFrames(raw);
    raw.dispose();
    try {
      // One upload of a streamed extractor for all 30 segments, not one per segment.
      f = withResident(sync.vfeat_extractor, () => encodeVideoWithSync(sync, x));
    } finally {
      x.dispose();
    }
  }
  if (f.shape[1] !== tokens || f.shape[2] !== dim) {
    f.dispose();
    throw new Error(`Synchformer gave [${f.shape}], the video conditioner expects [1, ${tokens}, ${dim}]`);
  }
  return f;
}

/** [1, …] → [b, …] (b copies); the input is consumed. */
export function repeatBatch(t: tf.Tensor, b: number): tf.Tensor {
  if (b === 1) return t;
  const r = tf.concat(Array.from({ length: b }, () => t), 0);
  t.dispose();
  return r;
}

function fileKey(file: string): string {
  const abs = path.resolve(file);
  const st = fs.statSync(abs);
  return `${abs}\0${st.size}\0${st.mtimeMs}`;
}

/**
 * What identifies a video conditioner's output: the file (path, size, mtime), the window start for a
 * video, the quirks flag; one key for "no video".
 */
export function visualReuseKey(media: ConditionerMedia, opts: MediaOptions): string {
  const quirks = opts.referenceQuirks ? 1 : 0;
  const file = media.video ?? media.image;
  if (!file) return 'none';
  if (media.image || isImagePath(file)) return `image\0${fileKey(file)}\0${quirks}`;
  return `video\0${fileKey(file)}\0${media.secondsStart}\0${quirks}`;
}
