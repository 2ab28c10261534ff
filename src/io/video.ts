// Video / still image files → frames, via ffmpeg rawvideo rgb24 on stdout. ffmpeg only decodes (at the
// source size, from the first frame, keeping the frames a window needs); the selection, resize and padding are
// the functions over decoded frames in frames.ts, the same ones the media parity fixtures check.
import { MediaError, probeMedia, runFfmpeg, type MediaInfo } from './ffmpeg.ts';
import {
  assembleWindow,
  planFrames,
  transformFrame,
  windowFrameCount,
  type FrameResize,
  type FrameSampling,
  type FrameWindow,
} from './frames.ts';

export interface ReadVideoOptions {
  /** Window start in seconds (default 0). */
  seekTime?: number;
  /** Window length in seconds (default 10). */
  duration?: number;
  /** Target frame rate: the model's `video_fps` (5) for CLIP, 25 for the Synchformer. */
  fps: number;
  /** Output side length (default 224). */
  size?: number;
  /** Default 'slot-start' (see frames.ts; branchFrameOptions gives each branch's). */
  sampling?: FrameSampling;
  /** Default 'squash'. */
  resize?: FrameResize;
  signal?: AbortSignal;
}

export interface VideoFrames extends FrameWindow {
  /** Source frames actually decoded for the window (before padding). */
  decodedFrames: number;
  /** Probe result of the input. */
  info: MediaInfo;
}

/** A decoded still picture, HWC uint8 RGB at its own size. */
export interface DecodedImage {
  hwc: Uint8Array;
  H: number;
  W: number;
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
  if (!(info.video.width > 0 && info.video.height > 0)) {
    throw new MediaError('NOT_MEDIA', `Cannot determine the picture size of "${file}".`);
  }
  return info;
}

/** `select` expression for a sorted set of frame numbers, as arithmetic runs (ffmpeg escaping for -vf). */
export function selectExpression(sorted: number[]): string {
  const terms: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    const a = sorted[i];
    if (i + 1 === sorted.length) {
      terms.push(`eq(n\\,${a})`);
      break;
    }
    const d = sorted[i + 1] - a;
    let j = i + 1;
    while (j + 1 < sorted.length && sorted[j + 1] - sorted[j] === d) j++;
    const b = sorted[j];
    terms.push(d === 1 ? `between(n\\,${a}\\,${b})` : `between(n\\,${a}\\,${b})*not(mod(n-${a}\\,${d}))`);
    i = j + 1;
  }
  return `select='${terms.join('+')}'`;
}

/**
 * Decodes the frames numbered `wanted` (sorted, distinct; counted from the first frame) at the source size and
 * hands each to `onFrame` as it arrives (so a long high-resolution window is never held whole).
 */
async function decodeFrames(
  info: MediaInfo,
  wanted: number[],
  onFrame: (k: number, hwc: Uint8Array) => void,
  signal: AbortSignal | undefined,
): Promise<number> {
  const { width: W, height: H } = info.video!;
  const frameBytes = W * H * 3;
  const buf = new Uint8Array(frameBytes);
  let fill = 0;
  let got = 0;
  let failure: unknown = null;
  const onStdout = (chunk: Buffer): void => {
    let off = 0;
    while (off < chunk.length && failure === null) {
      const n = Math.min(frameBytes - fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === frameBytes) {
        fill = 0;
        try {
          if (got < wanted.length) onFrame(got, buf);
        } catch (e) {
          failure = e;
        }
        got++;
      }
    }
  };
  // The scale filter only pins the size (no resampling: the probed size) and converts to RGB with swscale's
  // default flags, as decord does (accurate_rnd/full_chroma_int would triple the cost at 1080p).
  const filters = `${selectExpression(wanted)},scale=${W}:${H},format=rgb24`;
  await runFfmpeg(
    [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      '-i', info.file,
      '-map', '0:v:0', '-an', '-sn',
      '-vf', filters,
      '-vsync', 'passthrough',
      '-frames:v', String(wanted.length),
      '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1',
    ],
    { signal, onStdout },
  );
  if (failure !== null) throw failure;
  return Math.min(got, wanted.length);
}

/**
 * Reads `duration` seconds of video from `seekTime` as exactly round(duration·fps) frames [T, 3, S, S] uint8
 * (frames.ts: `sampling`, `resize`; short windows padded by repeating the last frame). A still image gives
 * its picture T times. Frames are counted from the start of the file at the container's average frame rate
 * (as decord does), so the video is decoded from its start up to the window's end.
 */
export async function readVideoFrames(file: string, opts: ReadVideoOptions): Promise<VideoFrames> {
  const seekTime = opts.seekTime ?? 0;
  const duration = opts.duration ?? 10;
  const size = opts.size ?? 224;
  const resize = opts.resize ?? 'squash';
  const sampling = opts.sampling ?? 'slot-start';
  if (!(Number.isInteger(size) && size >= 1)) throw new MediaError('INVALID_ARGUMENT', `size must be a positive integer, got ${size}.`);
  // Checks the arguments before any ffmpeg work.
  let plan = planFrames(1, { seekTime, duration, targetFps: opts.fps, sampling });
  const info = await probeVideo(file, opts.signal);
  const { width: W, height: H } = info.video!;

  if (info.isStillImage) {
    const img = await decodeImage(info, opts.signal);
    const frame = transformFrame(img.hwc, img.H, img.W, size, resize);
    const T = windowFrameCount(duration, opts.fps);
    const win = assembleWindow({ T, indices: [0] }, [0], () => frame, size);
    return { ...win, decodedFrames: 1, info };
  }
  const srcFps = info.video!.fps;
  if (!srcFps) throw new MediaError('NOT_MEDIA', `Cannot determine the frame rate of "${file}".`);
  plan = planFrames(srcFps, { seekTime, duration, targetFps: opts.fps, sampling });
  const wanted = [...new Set(plan.indices)];
  const transformed = new Map<number, Uint8Array>();
  const decoded = await decodeFrames(info, wanted, (k, hwc) => transformed.set(wanted[k], transformFrame(hwc, H, W, size, resize)), opts.signal);
  if (decoded === 0) {
    const len = info.duration === null ? 'unknown length' : `${info.duration.toFixed(3)} s long`;
    throw new MediaError(
      'NO_FRAMES',
      `No video frames decoded from "${file}" in the window [${seekTime}, ${seekTime + duration}] s ` +
        `(the media is ${len}). Use a smaller seek time or a non-empty video.`,
    );
  }
  // The decoded frames are the first `decoded` wanted ones: the video ends before the others.
  const available = plan.indices.filter((i) => transformed.has(i));
  const win = assembleWindow(plan, available, (i) => transformed.get(i)!, size);
  return { ...win, decodedFrames: decoded, info };
}

async function decodeImage(info: MediaInfo, signal?: AbortSignal): Promise<DecodedImage> {
  const { width: W, height: H } = info.video!;
  const got: Uint8Array[] = [];
  await decodeFrames(info, [0], (_k, f) => got.push(f.slice()), signal);
  if (!got.length) throw new MediaError('NO_FRAMES', `No picture could be decoded from "${info.file}".`);
  return { hwc: got[0], H, W };
}

/** A still image (or a video's first frame) as HWC uint8 RGB at its own size. */
export async function readImage(file: string, opts: { signal?: AbortSignal } = {}): Promise<DecodedImage> {
  const info = await probeVideo(file, opts.signal);
  return decodeImage(info, opts.signal);
}

/** Extensions the reference treats as still images (§8.1). */
export function isImagePath(file: string): boolean {
  return /\.(jpe?g|png)$/i.test(file);
}
