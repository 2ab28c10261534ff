// Video / still image → uint8 frames [T,3,H,W] (CHW per frame) via ffmpeg rawvideo rgb24 on stdout.
// Reference: ARCHITECTURE.md §8.1 (read_video), §6.1 (Synchformer input), quirks 13 and 14.
import { MediaError, ffTime, probeMedia, runFfmpeg, type MediaInfo } from './ffmpeg.ts';

export type FrameMode = 'squash' | 'sync';

export interface ReadVideoOptions {
  /** Window start in seconds (default 0). */
  seekTime?: number;
  /** Window length in seconds (default 10). */
  duration?: number;
  /** Target frame rate: the model's `video_fps` (5) for CLIP, 25 for Synchformer. */
  fps: number;
  /** Output side length (default 224). */
  size?: number;
  /**
   * 'squash' (CLIP branch, default): resize to size×size without keeping the aspect ratio (bilinear).
   * 'sync' (Synchformer branch): resize the shorter side to `size` (bicubic), then centre-crop size×size.
   */
  mode?: FrameMode;
  /**
   * Reproduce the reference's `read_video` (quirk 14): pick every ⌈src_fps/fps⌉-th frame starting at frame
   * ⌊seekTime·src_fps⌋ instead of time-exact sampling, and always squash to size×size (the reference squashes in
   * read_video, so its Synchformer Resize/CenterCrop are no-ops) — i.e. `mode` is ignored.
   */
  referenceQuirks?: boolean;
  signal?: AbortSignal;
}

export interface Frames {
  /** uint8 RGB, layout [T,3,H,W] (channel-major within each frame). */
  frames: Uint8Array;
  T: number;
  H: number;
  W: number;
}

export interface VideoFrames extends Frames {
  /** Frames actually decoded from the file before padding/trimming to T. */
  decodedFrames: number;
  /** Probe result of the input. */
  info: MediaInfo;
}

function checkPositive(name: string, v: number, integer = false): void {
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new MediaError('INVALID_ARGUMENT', `${name} must be a positive${integer ? ' integer' : ' number'}, got ${v}.`);
  }
}

/** Number of frames in a window: exactly round(duration·fps) (50 for 10 s at 5 fps, 250 at 25 fps). */
export function windowFrameCount(duration: number, fps: number): number {
  return Math.round(duration * fps);
}

function scaleFilter(mode: FrameMode, size: number): string {
  if (mode === 'squash') return `scale=${size}:${size}:flags=bilinear+accurate_rnd+full_chroma_int`;
  return (
    `scale=${size}:${size}:force_original_aspect_ratio=increase:flags=bicubic+accurate_rnd+full_chroma_int,` +
    `crop=${size}:${size}`
  );
}

/** HWC rgb24 frames (as decoded) → [T,3,H,W], padding by repeating the last frame up to T / trimming. */
export function hwcToChwFrames(raw: Uint8Array, decoded: number, T: number, H: number, W: number): Uint8Array {
  if (decoded < 1) throw new MediaError('NO_FRAMES', 'Cannot build frames from zero decoded frames.');
  const plane = H * W;
  const frameSize = 3 * plane;
  const out = new Uint8Array(T * frameSize);
  const n = Math.min(decoded, T);
  for (let t = 0; t < n; t++) {
    const src = t * frameSize;
    const dst = t * frameSize;
    for (let p = 0, s = src; p < plane; p++, s += 3) {
      out[dst + p] = raw[s];
      out[dst + plane + p] = raw[s + 1];
      out[dst + 2 * plane + p] = raw[s + 2];
    }
  }
  const last = out.subarray((n - 1) * frameSize, n * frameSize);
  for (let t = n; t < T; t++) out.set(last, t * frameSize);
  return out;
}

async function decodeRgb(
  abs: string,
  inputArgs: string[],
  filters: string,
  maxFrames: number,
  size: number,
  signal: AbortSignal | undefined,
): Promise<{ raw: Uint8Array; decoded: number }> {
  const args = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    ...inputArgs,
    '-i',
    abs,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-vf',
    filters,
    '-vsync',
    'passthrough',
    '-frames:v',
    String(maxFrames),
    '-pix_fmt',
    'rgb24',
    '-f',
    'rawvideo',
    'pipe:1',
  ];
  const { stdout } = await runFfmpeg(args, { signal });
  const frameBytes = size * size * 3;
  const decoded = Math.floor(stdout.length / frameBytes);
  return { raw: new Uint8Array(stdout.buffer, stdout.byteOffset, decoded * frameBytes), decoded };
}

async function probeVideo(file: string, signal?: AbortSignal): Promise<MediaInfo> {
  const info = await probeMedia(file, { signal });
  if (!info.video) {
    const has = info.audio ? 'only an audio stream' : 'no video stream';
    throw new MediaError(
      'NO_VIDEO_STREAM',
      `"${file}" has ${has}; a video or image (mp4/mov/webm/mkv/png/jpg…) is required.`,
    );
  }
  return info;
}

/**
 * Decodes `duration` seconds of video starting at `seekTime` into exactly round(duration·fps) frames
 * [T,3,size,size] uint8. Short inputs are padded by repeating the last decoded frame, long ones trimmed.
 * Default sampling is time-exact (ffmpeg `fps` filter: frame k shows time seekTime + k/fps).
 * Still images are accepted and give the picture repeated T times.
 */
export async function readVideoFrames(file: string, opts: ReadVideoOptions): Promise<VideoFrames> {
  const seekTime = opts.seekTime ?? 0;
  const duration = opts.duration ?? 10;
  const size = opts.size ?? 224;
  const mode: FrameMode = opts.referenceQuirks ? 'squash' : (opts.mode ?? 'squash');
  checkPositive('fps', opts.fps);
  checkPositive('duration', duration);
  checkPositive('size', size, true);
  ffTime(seekTime);
  const T = windowFrameCount(duration, opts.fps);
  if (T < 1) throw new MediaError('INVALID_ARGUMENT', `duration·fps = ${duration * opts.fps} gives no frames.`);
  const info = await probeVideo(file, opts.signal);
  const abs = info.file;

  let res: { raw: Uint8Array; decoded: number };
  if (info.isStillImage) {
    res = await decodeRgb(abs, [], scaleFilter(mode, size), 1, size, opts.signal);
  } else if (opts.referenceQuirks) {
    // decord: fps = avg_fps; seek_frame = int(seek·fps); interval = ceil(fps/target); n = int(target·duration).
    const srcFps = info.video?.fps;
    if (!srcFps) {
      throw new MediaError('NOT_MEDIA', `Cannot determine the frame rate of "${file}" (needed for referenceQuirks sampling).`);
    }
    const seekFrame = Math.floor(seekTime * srcFps);
    const interval = Math.ceil(srcFps / opts.fps - 1e-9);
    const n = Math.floor(opts.fps * duration + 1e-9);
    const select = `select='gte(n\\,${seekFrame})*not(mod(n-${seekFrame}\\,${interval}))'`;
    res = await decodeRgb(abs, [], `${select},${scaleFilter('squash', size)}`, Math.max(1, Math.min(n, T)), size, opts.signal);
  } else {
    const inputArgs = seekTime > 0 ? ['-ss', ffTime(seekTime), '-t', ffTime(duration)] : ['-t', ffTime(duration)];
    // Time-exact: output frame k is the input frame shown at time k/fps, i.e. the latest frame with
    // pts ≤ k/fps (fps filter keeps the latest frame per slot; round=up maps pts to slot ⌈pts·fps⌉).
    // start_time=0 anchors slot 0 at the window start (after -ss the first frame may be slightly later).
    const fpsFilter = `fps=fps=${opts.fps}:round=up:start_time=0`;
    res = await decodeRgb(abs, inputArgs, `${fpsFilter},${scaleFilter(mode, size)}`, T, size, opts.signal);
  }
  if (res.decoded === 0) {
    const len = info.duration === null ? 'unknown length' : `${info.duration.toFixed(3)} s long`;
    throw new MediaError(
      'NO_FRAMES',
      `No video frames decoded from "${file}" in the window [${seekTime}, ${seekTime + duration}] s ` +
        `(the media is ${len}). Use a smaller seek time or a non-empty video.`,
    );
  }
  const frames = hwcToChwFrames(res.raw, res.decoded, T, size, size);
  return { frames, T, H: size, W: size, decodedFrames: res.decoded, info };
}

/** A still image as T identical uint8 frames [T,3,size,size] (squashed to size×size). */
export async function readImageFrames(
  file: string,
  opts: { T: number; size?: number; signal?: AbortSignal },
): Promise<Frames> {
  const size = opts.size ?? 224;
  checkPositive('T', opts.T, true);
  checkPositive('size', size, true);
  const info = await probeVideo(file, opts.signal);
  const res = await decodeRgb(info.file, [], scaleFilter('squash', size), 1, size, opts.signal);
  if (res.decoded === 0) throw new MediaError('NO_FRAMES', `No picture could be decoded from "${file}".`);
  return { frames: hwcToChwFrames(res.raw, 1, opts.T, size, size), T: opts.T, H: size, W: size };
}

export interface FloatFrames {
  /** float32, layout [T,3,H,W]. */
  frames: Float32Array;
  T: number;
  H: number;
  W: number;
  /** Value the pixel 255 maps to: 1, or 1/255 with referenceQuirks (quirk 13). */
  maxValue: number;
}

/**
 * A still image as a float "video" for the CLIP branch: T repeated frames in [0,1].
 * With `referenceQuirks: true` the reference's double division by 255 (quirk 13) is applied here, so values lie
 * in [0, 1/255] (nearly black) — the caller must then NOT divide by 255 again. Without it, values are in [0,1],
 * matching what a uint8 video frame gives after the model's usual /255.
 */
export async function loadImageAsVideo(
  file: string,
  T: number,
  opts: { size?: number; referenceQuirks?: boolean; signal?: AbortSignal } = {},
): Promise<FloatFrames> {
  const u8 = await readImageFrames(file, { T, size: opts.size, signal: opts.signal });
  const scale = opts.referenceQuirks ? 1 / (255 * 255) : 1 / 255;
  const frames = new Float32Array(u8.frames.length);
  for (let i = 0; i < frames.length; i++) frames[i] = u8.frames[i] * scale;
  return { frames, T: u8.T, H: u8.H, W: u8.W, maxValue: opts.referenceQuirks ? 1 / 255 : 1 };
}

/** Synchformer normalisation (§6.1): uint8 → float32 (x/255 − 0.5)/0.5 ∈ [−1, 1]. Same layout. */
export function normalizeSyncFrames(frames: Uint8Array): Float32Array {
  const out = new Float32Array(frames.length);
  for (let i = 0; i < frames.length; i++) out[i] = (frames[i] / 255 - 0.5) / 0.5;
  return out;
}

/** Extensions the reference treats as still images (§8.1). */
export function isImagePath(file: string): boolean {
  return /\.(jpe?g|png)$/i.test(file);
}
