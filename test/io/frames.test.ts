// Frame selection and transforms over decoded frames (src/io/frames.ts, src/io/resize.ts); no ffmpeg here.
// The exact values of the reference's selection and resize are pinned by the media parity fixtures.
import { describe, expect, it } from 'vitest';
import {
  assembleWindow,
  branchFrameOptions,
  frameWindow,
  hwcToPlanar,
  planFrames,
  selectedIndices,
  stillImageFrames,
  transformFrame,
  type DecodedVideo,
  type FrameWindowOptions,
} from '../../src/io/frames.ts';
import { MediaError } from '../../src/io/ffmpeg.ts';
import { centerCropPlanar, resizePlanar, shorterSideSize } from '../../src/io/resize.ts';

/** N frames of H×W whose every pixel holds the frame number (so a frame's origin can be read back). */
function numbered(N: number, H: number, W: number, fps: number): DecodedVideo {
  const frames = new Uint8Array(N * H * W * 3);
  for (let i = 0; i < N; i++) frames.fill(i, i * H * W * 3, (i + 1) * H * W * 3);
  return { frames, N, H, W, fps };
}

/** The source frame each output slot shows (read from its first pixel). */
function origins(frames: Uint8Array, T: number, size: number): number[] {
  return Array.from({ length: T }, (_, k) => frames[k * 3 * size * size]);
}

const win = (o: Partial<FrameWindowOptions>): FrameWindowOptions => ({
  seekTime: 0,
  duration: 2,
  targetFps: 5,
  size: 8,
  sampling: 'stride',
  resize: 'squash',
  ...o,
});

describe('frame selection', () => {
  it("stride = the reference's read_video: ⌊seek·fps⌋ + j·⌈fps/target⌉ (media/frames_clip's case)", () => {
    const p = planFrames(30, { seekTime: 1.5, duration: 2, targetFps: 5, sampling: 'stride' });
    expect(p.T).toBe(10);
    expect(p.indices).toEqual([45, 51, 57, 63, 69, 75, 81, 87, 93, 99]);
    expect(selectedIndices(p, 90)).toEqual([45, 51, 57, 63, 69, 75, 81, 87]);
    // 29.97 fps: interval ⌈5.994⌉ = 6, seek frame ⌊299.7⌋ = 299; 30 → 25 fps: interval 2 (15 fps of content)
    expect(planFrames(29.97, { seekTime: 10, duration: 1, targetFps: 5, sampling: 'stride' }).indices).toEqual([299, 305, 311, 317, 323]);
    expect(planFrames(30, { seekTime: 0.5, duration: 1, targetFps: 25, sampling: 'stride' }).indices.slice(0, 4)).toEqual([15, 17, 19, 21]);
  });

  it('slot-start: the frame on screen at seek + k/target (frames repeat when the source is slower)', () => {
    expect(planFrames(24, { seekTime: 0, duration: 1, targetFps: 5, sampling: 'slot-start' }).indices).toEqual([0, 4, 9, 14, 19]);
    expect(planFrames(10, { seekTime: 0.25, duration: 0.4, targetFps: 25, sampling: 'slot-start' }).indices).toEqual([2, 2, 3, 3, 4, 4, 4, 5, 5, 6]);
    expect(planFrames(30, { seekTime: 0.51, duration: 1, targetFps: 5, sampling: 'slot-start' }).indices).toEqual([15, 21, 27, 33, 39]);
  });

  it('slot-centre: the frame on screen at seek + (k + ½)/target, ties to the earlier frame (ffmpeg fps=25)', () => {
    // 30 → 25 fps: (k + ½)·1.2 = 0.6, 1.8, 3.0 (a tie: frame 2), 4.2, 5.4
    expect(planFrames(30, { seekTime: 0, duration: 0.2, targetFps: 25, sampling: 'slot-centre' }).indices).toEqual([0, 1, 2, 4, 5]);
    expect(planFrames(25, { seekTime: 1, duration: 0.2, targetFps: 25, sampling: 'slot-centre' }).indices).toEqual([25, 26, 27, 28, 29]);
  });

  it('pads by repeating the last available frame; trims to T; seek moves the window', () => {
    const v = numbered(20, 4, 6, 10);
    const w = frameWindow(v, win({ seekTime: 1.2, duration: 2, targetFps: 5 })); // frames 12, 14, … 18, then the end
    expect(w.indices).toEqual([12, 14, 16, 18]);
    expect(origins(w.frames, w.T, 8)).toEqual([12, 14, 16, 18, 18, 18, 18, 18, 18, 18]);
    const long = frameWindow(numbered(200, 4, 6, 10), win({ duration: 1, targetFps: 5 }));
    expect(origins(long.frames, long.T, 8)).toEqual([0, 2, 4, 6, 8]);
    const t = frameWindow(v, win({ seekTime: 0.55, duration: 1, targetFps: 10, sampling: 'slot-start' }));
    expect(origins(t.frames, t.T, 8)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  });

  it('a window after the end, and malformed input, are clear errors', () => {
    const v = numbered(20, 4, 6, 10);
    const err = (fn: () => unknown, code: string, re: RegExp) => {
      let e: unknown = null;
      try {
        fn();
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(MediaError);
      expect((e as MediaError).code).toBe(code);
      expect((e as Error).message).toMatch(re);
    };
    err(() => frameWindow(v, win({ seekTime: 3 })), 'NO_FRAMES', /starts after the end/);
    err(() => frameWindow({ ...v, frames: v.frames.subarray(1) }, win({})), 'INVALID_ARGUMENT', /must be \[N, H, W, 3\] uint8/);
    err(() => frameWindow({ ...v, fps: 0 }, win({})), 'INVALID_ARGUMENT', /source frame rate/);
    err(() => frameWindow(v, win({ duration: 0 })), 'INVALID_ARGUMENT', /duration/);
    err(() => frameWindow(v, win({ duration: 0.01 })), 'INVALID_ARGUMENT', /has no frames/);
    err(() => frameWindow(v, win({ size: 2.5 })), 'INVALID_ARGUMENT', /frame size/);
    err(() => assembleWindow({ T: 3, indices: [] }, [], () => new Uint8Array(0), 8), 'NO_FRAMES', /no video frames/);
  });
});

describe('frame transforms', () => {
  const ramp = (c: number, h: number, w: number): Uint8Array => Uint8Array.from({ length: c * h * w }, (_, i) => (i * 7) % 256);

  it('resize: same size is a copy; a flat image stays flat (both filters, uint8 and float)', () => {
    const r = ramp(3, 5, 7);
    const same = resizePlanar(r, 3, 5, 7, 5, 7, 'bilinear');
    expect(same).toEqual(r);
    expect(same).not.toBe(r);
    for (const filter of ['bilinear', 'bicubic'] as const) {
      expect(resizePlanar(new Uint8Array(3 * 30 * 50).fill(77), 3, 30, 50, 11, 224, filter).every((x) => x === 77)).toBe(true);
      const fl = resizePlanar(new Float32Array(3 * 9 * 4).fill(0.25), 3, 9, 4, 224, 224, filter);
      expect(fl.every((x) => Math.abs(x - 0.25) < 1e-6)).toBe(true);
    }
    expect(() => resizePlanar(r, 3, 5, 6, 4, 4, 'bilinear')).toThrow(/is not \[3, 5, 6\]/);
  });

  it('resize antialiases when shrinking: a 1-px checkerboard averages to grey away from the borders', () => {
    const n = 64;
    const board = Uint8Array.from({ length: n * n }, (_, i) => (((i % n) + Math.floor(i / n)) % 2 ? 255 : 0));
    const small = resizePlanar(board, 1, n, n, 8, 8, 'bilinear');
    for (let y = 1; y < 7; y++) for (let x = 1; x < 7; x++) expect(Math.abs(small[y * 8 + x] - 127.5)).toBeLessThanOrEqual(1);
  });

  it("torchvision's Resize(size) output size and CenterCrop offsets (Python's round half to even)", () => {
    expect(shorterSideSize(1080, 1920, 224)).toEqual([224, 398]);
    expect(shorterSideSize(640, 480, 224)).toEqual([298, 224]);
    expect(shorterSideSize(50, 50, 224)).toEqual([224, 224]);
    const rows = (h: number) => Uint8Array.from({ length: h * 4 }, (_, i) => Math.floor(i / 4));
    expect(centerCropPlanar(rows(7), 1, 7, 4, 4)[0]).toBe(2); // (7 − 4)/2 = 1.5 → 2
    expect(centerCropPlanar(rows(9), 1, 9, 4, 4)[0]).toBe(2); // 2.5 → 2
    expect(() => centerCropPlanar(rows(3), 1, 3, 4, 4)).toThrow(/smaller than 4×4/);
  });

  it("transformFrame: 'squash' fills the square with the whole frame, 'crop' keeps the aspect and cuts the sides", () => {
    // 20×60 frame in thirds 0 | 100 | 200: squash keeps all three, crop keeps the middle square (100).
    const H = 20;
    const W = 60;
    const hwc = new Uint8Array(H * W * 3);
    for (let p = 0; p < H * W; p++) hwc.fill(Math.floor((p % W) / 20) * 100, p * 3, p * 3 + 3);
    const sq = transformFrame(hwc, H, W, 16, 'squash');
    const cr = transformFrame(hwc, H, W, 16, 'crop');
    expect([sq.length, cr.length]).toEqual([3 * 16 * 16, 3 * 16 * 16]);
    expect([sq[0], sq[8], sq[15]]).toEqual([0, 100, 200]);
    for (let x = 3; x < 13; x++) expect(cr[5 * 16 + x]).toBe(100); // (the bicubic taps at the cut edges reach the other thirds)
  });
  it('transformFrame (interleaved input, only the kept pixels) = resizePlanar + CenterCrop of the planar frame', () => {
    for (const [H, W] of [[37, 90], [300, 170], [224, 400], [32, 60], [45, 32], [32, 32]]) {
      const hwc = Uint8Array.from({ length: H * W * 3 }, (_, i) => (i * 2654435761) >>> 24);
      const chw = hwcToPlanar(hwc, H, W);
      expect(transformFrame(hwc, H, W, 32, 'squash')).toEqual(resizePlanar(chw, 3, H, W, 32, 32, 'bilinear'));
      const [h, w] = shorterSideSize(H, W, 32);
      expect(transformFrame(hwc, H, W, 32, 'crop')).toEqual(centerCropPlanar(resizePlanar(chw, 3, H, W, h, w, 'bicubic'), 3, h, w, 32));
    }
    expect(() => transformFrame(new Uint8Array(10), 2, 2, 8, 'squash')).toThrow(/has 12 bytes, got 10/);
  });
});

describe('branch options and still images', () => {
  it('defaults vs referenceQuirks, exactly as documented', () => {
    expect(branchFrameOptions('clip', false)).toEqual({ sampling: 'slot-start', resize: 'squash' });
    expect(branchFrameOptions('sync', false)).toEqual({ sampling: 'slot-centre', resize: 'crop' });
    expect(branchFrameOptions('clip', true)).toEqual({ sampling: 'stride', resize: 'squash' });
    expect(branchFrameOptions('sync', true)).toEqual({ sampling: 'stride', resize: 'squash' });
  });

  it('CLIP frame ×255 by default, [0, 1] with referenceQuirks (quirk 13); the sync frame is real input in both', () => {
    const H = 30;
    const W = 50;
    const hwc = Uint8Array.from({ length: H * W * 3 }, (_, i) => (i * 13) % 256);
    const d = stillImageFrames(hwc, H, W, { referenceQuirks: false, clipSize: 32, syncSize: 24 });
    const q = stillImageFrames(hwc, H, W, { referenceQuirks: true, clipSize: 32, syncSize: 24 });
    expect([d.clip.length, d.sync.length]).toEqual([3 * 32 * 32, 3 * 24 * 24]);
    for (let i = 0; i < d.clip.length; i++) expect(d.clip[i]).toBeCloseTo(q.clip[i] * 255, 3);
    expect(Math.max(...q.clip)).toBeLessThanOrEqual(1.0001);
    expect(Math.max(...d.clip)).toBeGreaterThan(100);
    // sync: default crops (bicubic), the reference squashes (bilinear); both normalised to about [−1, 1]
    expect(d.sync).not.toEqual(q.sync);
    for (const s of [d.sync, q.sync]) {
      expect(Math.min(...s)).toBeGreaterThan(-1.2);
      expect(Math.max(...s)).toBeLessThan(1.2);
      expect(Math.max(...s) - Math.min(...s)).toBeGreaterThan(1);
    }
  });
});
