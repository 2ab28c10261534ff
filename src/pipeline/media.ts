// Media → conditioner inputs, always brought to the fixed 10 s conditioning window of the released
// models (spec §8; quirks 13–15 reproduced only with `referenceQuirks`). Frame selection and transforms:
// src/io/frames.ts.
import * as tf from '@tensorflow/tfjs';
import { loadAudioWindow, readAudio } from '../io/audio.ts';
import { MediaError, probeMedia } from '../io/ffmpeg.ts';
import { branchFrameOptions, stillImageFrames, windowFrameCount, type StillImageFrames } from '../io/frames.ts';
import { isImagePath, readImage, readVideoFrames } from '../io/video.ts';
import type { AudioXModel } from '../models/load.ts';
import { CLIPConditioner, CLIPWithSyncWithEmptyFeatureConditioner } from '../models/conditioners/video/clip.ts';
import { encodeVideoWithSync, prepareSyncFrames, SEGMENT_SIZE, SYNC_FPS, SYNC_SIZE, syncSegmentCount } from '../models/synchformer/features.ts';
import { AudioAutoencoderConditionerV2 } from '../models/conditioners/audio/autoencoder.ts';
import type { Module } from '../nn/module.ts';
import { withResident } from '../nn/streaming.ts';

/** The conditioning window of the released models: 10 s (50 CLIP frames at 5 fps, 240 sync tokens). */
export const CONDITIONING_SECONDS = 10;

export interface MediaOptions {
  seekTime: number;
  referenceQuirks: boolean;
  signal?: AbortSignal;
}

type VideoConditionerModule = CLIPConditioner | CLIPWithSyncWithEmptyFeatureConditioner;

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
  model: AudioXModel,
  cond: VideoConditionerModule,
  source: VisualSource,
  opts: MediaOptions,
): Promise<tf.Tensor> {
  const fps = model.videoFps;
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
  model: AudioXModel,
  cond: CLIPWithSyncWithEmptyFeatureConditioner,
  source: VisualSource,
  opts: MediaOptions,
): Promise<tf.Tensor> {
  const tokens = cond.sizes.sync_tokens;
  const dim = cond.sizes.temporal_dim;
  const file = source.video ?? source.image;
  if (!file || !model.synchformer) return tf.zeros([1, tokens, dim]);
  const sync = model.synchformer;
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

/**
 * Audio prompt [batch, 2, samples] (default sr·10, see audioPromptSamples): a file brought to the window, given
 * samples as they are (one set for every item, or one set per batch item), or silence.
 * Default: resampled to the model rate, right-padded with silence. With `referenceQuirks` a file is read like
 * the reference's `load_and_process_audio` (quirk 15: native rate kept, cut by model-rate sample indices,
 * left-padded). (The reference UI hides its audio-prompt widgets, so it always sends silence: that is what
 * giving no audio prompt reproduces.)
 */
export async function audioPrompt(
  model: AudioXModel,
  source: AudioPromptSource | undefined,
  opts: MediaOptions,
  samples = Math.floor(model.sampleRate * CONDITIONING_SECONDS),
  batch = 1,
): Promise<tf.Tensor> {
  if (source === undefined) return tf.zeros([batch, 2, samples]);
  if (isPerItemAudio(source)) {
    if (source.length !== batch) {
      throw new MediaError('INVALID_ARGUMENT', `audio prompt: ${source.length} per-item prompts given for a batch of ${batch}; give one per item or a single one for all`);
    }
    const n = source[0][0]?.length;
    if (source.some((item) => item[0]?.length !== n)) {
      throw new MediaError('INVALID_ARGUMENT', `audio prompt: the per-item prompts have different lengths (${source.map((i) => i[0]?.length).join(', ')} samples); give them all the same length`);
    }
    const items = source.map(stereoTensor);
    const t = items.length === 1 ? items[0] : tf.concat(items, 0);
    if (items.length > 1) tf.dispose(items);
    return t;
  }
  let one: tf.Tensor;
  if (typeof source !== 'string') one = stereoTensor(source);
  else {
    const { data } = await loadAudioWindow(source, {
      duration: samples / model.sampleRate,
      sampleRate: model.sampleRate,
      seekTime: opts.seekTime,
      referenceQuirks: opts.referenceQuirks,
      signal: opts.signal,
    });
    one = stereoTensor(data);
  }
  if (batch === 1) return one;
  const t = tf.tidy(() => tf.tile(one, [batch, 1, 1]));
  one.dispose();
  return t;
}

/** An audio prompt: a path, stereo (or mono) samples for every item, or one such set per batch item. */
export type AudioPromptSource = string | Float32Array[] | Float32Array[][];

/** Whether the samples are given per batch item ([batch][channel][sample]). */
export function isPerItemAudio(a: AudioPromptSource): a is Float32Array[][] {
  return Array.isArray(a) && a.length > 0 && Array.isArray(a[0]);
}

/**
 * Samples of the audio prompt a conditioner takes: 10 s, except `audio_autoencoder_v2`, whose
 * proj_features_128 is built for exactly `latent_seq_len` latents (237 → 485376 samples, 11.006 s; a 10 s
 * prompt gives 215 and cannot be projected).
 */
export function audioPromptSamples(model: AudioXModel, c: Module): number {
  if (c instanceof AudioAutoencoderConditionerV2) return c.latentSeqLen * c.pretransform.downsamplingRatio;
  return Math.floor(model.sampleRate * CONDITIONING_SECONDS);
}

/** The media inputs of a generation, and how to name them in errors (e.g. the CLI flags). */
export interface MediaSources {
  video?: string;
  image?: string;
  audio?: AudioPromptSource;
  initAudio?: string | Float32Array[];
}

export const MEDIA_LABELS: Record<keyof MediaSources, string> = {
  video: 'video',
  image: 'image',
  audio: 'audio prompt',
  initAudio: 'init audio',
};

function relabel(label: string, e: unknown): never {
  if (e instanceof MediaError) throw new MediaError(e.code, `${label}: ${e.message}`);
  throw e;
}

/**
 * Checks every media input before any model work: the file exists, is readable and non-empty, ffmpeg can
 * open it, it has the right kind of stream (a video or still image for `video`, a still image for `image`,
 * sound for `audio`/`initAudio`), and it yields at least one frame/sample in the conditioning window that
 * starts at `seekTime` (zero-length media and seeks past the end fail here). Throws a MediaError whose
 * message starts with the input's label.
 */
export async function checkMediaInputs(
  src: MediaSources,
  opts: { seekTime?: number; signal?: AbortSignal; labels?: Partial<Record<keyof MediaSources, string>> } = {},
): Promise<void> {
  const label = { ...MEDIA_LABELS, ...opts.labels };
  const seekTime = opts.seekTime ?? 0;
  const signal = opts.signal;
  if (src.video !== undefined && src.image !== undefined) {
    throw new MediaError('INVALID_ARGUMENT', `give either a ${label.video} or an ${label.image}, not both`);
  }
  if (src.video !== undefined) {
    try {
      const info = await probeMedia(src.video, { signal });
      if (!info.video) {
        const hint = info.audio ? ` It has only sound: pass it as the ${label.audio} instead.` : '';
        throw new MediaError('NO_VIDEO_STREAM', `"${src.video}" has no video stream.${hint}`);
      }
      // A cheap decode of the window (1 fps, 8 px): proves there are frames where the window starts.
      if (!info.isStillImage) await readVideoFrames(src.video, { fps: 1, seekTime, duration: CONDITIONING_SECONDS, size: 8, signal });
    } catch (e) {
      relabel(label.video, e);
    }
  }
  if (src.image !== undefined) {
    try {
      const info = await probeMedia(src.image, { signal });
      if (!info.video) throw new MediaError('NO_VIDEO_STREAM', `"${src.image}" is not an image (ffmpeg found no picture in it).`);
      if (!info.isStillImage) {
        throw new MediaError('INVALID_ARGUMENT', `"${src.image}" is a video, not a still image: pass it as the ${label.video} instead.`);
      }
      await readImage(src.image, { signal });
    } catch (e) {
      relabel(label.image, e);
    }
  }
  for (const key of ['audio', 'initAudio'] as const) {
    const a = src[key];
    if (a === undefined) continue;
    try {
      if (typeof a === 'string') {
        // Decoding the window at a low rate is cheap and catches files with a header but no samples.
        await readAudio(a, { sampleRate: 8000, channels: 1, seekTime: key === 'audio' ? seekTime : 0, duration: CONDITIONING_SECONDS, signal });
      } else {
        const items = isPerItemAudio(a) ? a : [a];
        items.forEach((item, i) => {
          const which = items.length > 1 ? ` (batch item ${i})` : '';
          if (!item.length || !item[0].length) throw new MediaError('INVALID_ARGUMENT', `the given samples are empty${which}`);
          if (item.some((c) => c.length !== item[0].length)) throw new MediaError('INVALID_ARGUMENT', `channels have different lengths${which}`);
        });
      }
    } catch (e) {
      relabel(label[key], e);
    }
  }
}

/** [channels][samples] → [1, 2, N] (mono duplicated). */
export function stereoTensor(channels: Float32Array[]): tf.Tensor {
  if (!channels.length || !channels[0].length) throw new Error('audio has no samples');
  const n = channels[0].length;
  if (channels.some((c) => c.length !== n)) throw new Error('audio channels have different lengths');
  const two = channels.length === 1 ? [channels[0], channels[0]] : channels.slice(0, 2);
  const buf = new Float32Array(2 * n);
  buf.set(two[0], 0);
  buf.set(two[1], n);
  return tf.tensor(buf, [1, 2, n]);
}
