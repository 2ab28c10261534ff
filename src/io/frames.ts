// Frame selection and transforms over DECODED frames (uint8 RGB [N, H, W, 3] + the source frame rate), shared
// by the ffmpeg reader (src/io/video.ts) and the media parity fixtures. Reference: audiox.data.utils.read_video
// and the Gradio sync_transform (docs/REFERENCE.md §8.1, §6.1, quirks 13 and 14); the defaults follow what the
// Synchformer saw in training (README "Reference quirks").
import { MediaError } from './ffmpeg.ts';
import { centerCropOffset, centerCropPlanar, resizeHwcWindow, resizePlanar, shorterSideSize } from './resize.ts';

/**
 * How source frames are picked for the output slots k = 0…T−1:
 * - 'stride' (the reference's read_video): frames ⌊seek·fps⌋ + j·⌈fps/target⌉, j < ⌊target·duration⌋.
 * - 'slot-start': the frame on screen at seek + k/target (the last one starting at or before that time).
 * - 'slot-centre': the frame on screen at seek + (k + ½)/target, ties to the earlier frame — what ffmpeg's
 *   `fps=target` filter (rounding to nearest) gives, the reader MMAudio used for its Synchformer features.
 */
export type FrameSampling = 'stride' | 'slot-start' | 'slot-centre';

/**
 * - 'squash': torchvision Resize((S, S)), bilinear, antialias; the aspect ratio is not kept (read_video).
 * - 'crop': Resize(S) of the shorter side, bicubic, antialias, then CenterCrop(S) (sync_transform on
 *   unsquashed frames, as in MMAudio and the Synchformer's own training).
 */
export type FrameResize = 'squash' | 'crop';

export interface FrameWindowOptions {
  /** Window start in seconds. */
  seekTime: number;
  /** Window length in seconds. */
  duration: number;
  /** Output frame rate. */
  targetFps: number;
  /** Output side length (default 224). */
  size?: number;
  sampling: FrameSampling;
  resize: FrameResize;
}

/** The source frames a window needs: slot k shows source frame `indices[k]`; slots ≥ indices.length are padding. */
export interface FramePlan {
  /** Output frames: round(duration·target). */
  T: number;
  /** Non-decreasing source frame indices, at most T of them. */
  indices: number[];
}

export interface DecodedVideo {
  /** uint8 RGB, [N, H, W, 3]. */
  frames: Uint8Array;
  N: number;
  H: number;
  W: number;
  /** Source frame rate (the container's average rate). */
  fps: number;
}

export interface FrameWindow {
  /** uint8 RGB planar [T, 3, S, S]. */
  frames: Uint8Array;
  T: number;
  size: number;
  /** Source frame of each slot before padding (the reference's `frame_ids` for 'stride'). */
  indices: number[];
}

/** What each conditioning branch reads: the defaults, and the reference front-end with `referenceQuirks`. */
export function branchFrameOptions(branch: 'clip' | 'sync', referenceQuirks: boolean): Pick<FrameWindowOptions, 'sampling' | 'resize'> {
  if (referenceQuirks) return { sampling: 'stride', resize: 'squash' };
  return branch === 'clip' ? { sampling: 'slot-start', resize: 'squash' } : { sampling: 'slot-centre', resize: 'crop' };
}

function check(ok: boolean, msg: string): void {
  if (!ok) throw new MediaError('INVALID_ARGUMENT', msg);
}

function checkWindow(o: { seekTime: number; duration: number; targetFps: number }, fps: number): void {
  check(Number.isFinite(fps) && fps > 0, `the source frame rate must be a positive number, got ${fps}`);
  check(Number.isFinite(o.targetFps) && o.targetFps > 0, `the target frame rate must be a positive number, got ${o.targetFps}`);
  check(Number.isFinite(o.duration) && o.duration > 0, `the window duration must be a positive number of seconds, got ${o.duration}`);
  check(Number.isFinite(o.seekTime) && o.seekTime >= 0, `the seek time must be ≥ 0 seconds, got ${o.seekTime}`);
}

/** Output frames of a window: exactly round(duration·fps) (50 for 10 s at 5 fps, 250 at 25 fps). */
export function windowFrameCount(duration: number, fps: number): number {
  return Math.round(duration * fps);
}

/**
 * The source frames of a window over a video of unknown length (indices past its end are simply not there;
 * see selectedIndices). Frame i of the source is taken to cover [i/fps, (i+1)/fps).
 */
export function planFrames(fps: number, o: Pick<FrameWindowOptions, 'seekTime' | 'duration' | 'targetFps' | 'sampling'>): FramePlan {
  checkWindow(o, fps);
  const T = windowFrameCount(o.duration, o.targetFps);
  check(T >= 1, `a ${o.duration} s window at ${o.targetFps} fps has no frames`);
  const indices: number[] = [];
  if (o.sampling === 'stride') {
    // Python: int(seek·fps), int(ceil(fps/target)), int(target·duration) — same float operations.
    const seekFrame = Math.floor(o.seekTime * fps);
    const interval = Math.ceil(fps / o.targetFps);
    const n = Math.min(Math.floor(o.targetFps * o.duration), T);
    for (let j = 0; j < n; j++) indices.push(seekFrame + j * interval);
  } else {
    const phase = o.sampling === 'slot-centre' ? 0.5 : 0;
    for (let k = 0; k < T; k++) {
      const x = (o.seekTime + (k + phase) / o.targetFps) * fps;
      indices.push(Math.max(0, phase === 0 ? Math.floor(x + 1e-6) : Math.ceil(x - 1e-6) - 1));
    }
  }
  return { T, indices };
}

/** The plan's indices that exist in a video of `total` frames (the reference's `min(end, total)`). */
export function selectedIndices(plan: FramePlan, total: number): number[] {
  const out: number[] = [];
  for (const i of plan.indices) {
    if (i >= total) break;
    out.push(i);
  }
  return out;
}

/** One decoded frame (HWC, uint8) → planar [3, S, S] uint8 by `resize` (same values as transformPlanar). */
export function transformFrame(hwc: Uint8Array, H: number, W: number, size: number, resize: FrameResize): Uint8Array {
  if (hwc.length !== H * W * 3) throw new MediaError('INVALID_ARGUMENT', `a ${H}×${W} RGB frame has ${3 * H * W} bytes, got ${hwc.length}`);
  if (resize === 'squash') return resizeHwcWindow(hwc, H, W, size, size, { r0: 0, c0: 0, nh: size, nw: size }, 'bilinear');
  const [h, w] = shorterSideSize(H, W, size);
  const win = { r0: centerCropOffset(h, size), c0: centerCropOffset(w, size), nh: size, nw: size };
  return resizeHwcWindow(hwc, H, W, h, w, win, 'bicubic');
}

function transformPlanar<T extends Uint8Array | Float32Array>(chw: T, H: number, W: number, size: number, resize: FrameResize): T {
  if (resize === 'squash') return H === size && W === size ? chw : resizePlanar(chw, 3, H, W, size, size, 'bilinear');
  const [h, w] = shorterSideSize(H, W, size);
  const r = h === H && w === W ? chw : resizePlanar(chw, 3, H, W, h, w, 'bicubic');
  return centerCropPlanar(r, 3, h, w, size);
}

/** [H, W, 3] → [3, H, W]. */
export function hwcToPlanar(hwc: Uint8Array, H: number, W: number): Uint8Array {
  const plane = H * W;
  if (hwc.length !== 3 * plane) throw new MediaError('INVALID_ARGUMENT', `a ${H}×${W} RGB frame has ${3 * plane} bytes, got ${hwc.length}`);
  const out = new Uint8Array(3 * plane);
  for (let p = 0, s = 0; p < plane; p++, s += 3) {
    out[p] = hwc[s];
    out[plane + p] = hwc[s + 1];
    out[2 * plane + p] = hwc[s + 2];
  }
  return out;
}

/**
 * The window's frames from the transformed source frames (`frameAt(i)` = planar [3, S, S] of source frame i,
 * for every i in `available`): slot k gets frame indices[k]; the slots after the last available one repeat it
 * (the reference's adjust_video_duration). Throws NO_FRAMES when nothing is available.
 */
export function assembleWindow(plan: FramePlan, available: number[], frameAt: (i: number) => Uint8Array, size: number): FrameWindow {
  if (!available.length) throw new MediaError('NO_FRAMES', 'the window contains no video frames (it starts after the end of the video)');
  const frameSize = 3 * size * size;
  const out = new Uint8Array(plan.T * frameSize);
  let last: Uint8Array | null = null;
  for (let k = 0; k < plan.T; k++) {
    if (k < available.length) {
      last = frameAt(available[k]);
      if (last.length !== frameSize) throw new Error(`frame ${available[k]} has ${last.length} values, expected ${frameSize}`);
    }
    out.set(last!, k * frameSize);
  }
  return { frames: out, T: plan.T, size, indices: available.slice() };
}

/** read_video over decoded frames: selection, resize, padding/trimming to T frames [T, 3, S, S] uint8. */
export function frameWindow(video: DecodedVideo, o: FrameWindowOptions): FrameWindow {
  const { N, H, W } = video;
  check(Number.isInteger(N) && N >= 0 && video.frames.length === N * H * W * 3, `decoded frames must be [N, H, W, 3] uint8, got ${video.frames.length} bytes for [${N}, ${H}, ${W}, 3]`);
  const size = o.size ?? 224;
  check(Number.isInteger(size) && size >= 1, `the frame size must be a positive integer, got ${size}`);
  const plan = planFrames(video.fps, o);
  const available = selectedIndices(plan, N);
  const cache = new Map<number, Uint8Array>();
  const frameAt = (i: number): Uint8Array => {
    let f = cache.get(i);
    if (!f) {
      const n = H * W * 3;
      f = transformFrame(video.frames.subarray(i * n, (i + 1) * n), H, W, size, o.resize);
      cache.set(i, f);
    }
    return f;
  };
  return assembleWindow(plan, available, frameAt, size);
}

export interface StillImageFrames {
  /** [3, S, S]: each frame of the CLIP conditioner's video input (uint8 value range; see below). */
  clip: Float32Array;
  /** [3, S, S]: each frame of the Synchformer input, normalised to [−1, 1]. */
  sync: Float32Array;
}

/**
 * A still image (HWC uint8) through read_video's image branch: ToTensor (÷255, float) then a float resize.
 * CLIP: squashed; the conditioner divides by 255, so by default the frame is given in 0…255 (×255) and it
 * sees the picture; with `referenceQuirks` it is given in [0, 1] as the reference does (quirk 13: nearly
 * black). Synchformer: 'crop' by default, 'squash' with `referenceQuirks` (then sync_transform's Resize and
 * CenterCrop are no-ops), then Normalize(0.5, 0.5) — real frames, not zeros, in both modes.
 */
export function stillImageFrames(hwc: Uint8Array, H: number, W: number, o: { clipSize?: number; syncSize?: number; referenceQuirks: boolean }): StillImageFrames {
  const u8 = hwcToPlanar(hwc, H, W);
  const unit = new Float32Array(u8.length);
  for (let i = 0; i < u8.length; i++) unit[i] = u8[i] / 255;
  const clip = transformPlanar(unit, H, W, o.clipSize ?? 224, 'squash');
  const syncUnit = transformPlanar(unit, H, W, o.syncSize ?? 224, branchFrameOptions('sync', o.referenceQuirks).resize);
  const sync = new Float32Array(syncUnit.length);
  for (let i = 0; i < sync.length; i++) sync[i] = (syncUnit[i] - 0.5) / 0.5;
  const clipOut = clip === unit ? unit.slice() : clip;
  if (!o.referenceQuirks) for (let i = 0; i < clipOut.length; i++) clipOut[i] *= 255;
  return { clip: clipOut, sync };
}
