// Media I/O: ffmpeg resolution/probing, video & image frames, audio decode, WAV, mux, bad inputs.
// Test media are generated with ffmpeg's lavfi sources into a temp dir.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fitToWindow, loadAudioWindow, readAudio } from '../src/io/audio.ts';
import {
  MediaError,
  defaultFfmpegLookup,
  parseFfmpegInfo,
  probeMedia,
  resolveFfmpeg,
  resolveFfmpegWith,
  runFfmpeg,
} from '../src/io/ffmpeg.ts';
import { muxVideoWithAudio, probeStreams } from '../src/io/mux.ts';
import { transformFrame } from '../src/io/frames.ts';
import { readImage, readVideoFrames } from '../src/io/video.ts';
import {
  peakNormalize,
  readWav,
  readWavHeader,
  readWavInt16,
  toInt16,
  writeWav,
  writeWavInt16,
} from '../src/io/wav.ts';

let dir = '';
const f = (name: string): string => path.join(dir, name);

function frame(frames: Uint8Array, t: number, H: number, W: number): Uint8Array {
  const n = 3 * H * W;
  return frames.subarray(t * n, (t + 1) * n);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function zeroCrossingHz(x: Float32Array, sampleRate: number): number {
  let n = 0;
  for (let i = 1; i < x.length; i++) if ((x[i - 1] < 0) !== (x[i] < 0)) n++;
  return n / 2 / (x.length / sampleRate);
}

async function expectMediaError(p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(MediaError);
  expect((err as MediaError).code).toBe(code);
  if (re) expect((err as MediaError).message).toMatch(re);
}

/** Files in the temp dir other than the fixtures (to catch leftover temp/partial outputs). */
function leftovers(fixtures: Set<string>): string[] {
  return fs.readdirSync(dir).filter((n) => !fixtures.has(n));
}

const FIXTURES = new Set<string>();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-io-'));
  const q = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
  await Promise.all([
    runFfmpeg([
      ...q,
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '3', '-map', '0:v', '-map', '1:a',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-ac', '1',
      f('clip.mp4'),
    ]),
    runFfmpeg([...q, '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-frames:v', '1', f('still.png')]),
    runFfmpeg([...q, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '2', '-ac', '1', f('sine48k.wav')]),
  ]);
  fs.writeFileSync(f('text.mp4'), 'this is not a video\n'.repeat(20));
  fs.writeFileSync(f('empty.mp4'), '');
  for (const n of fs.readdirSync(dir)) FIXTURES.add(n);
}, 60_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('ffmpeg resolution', () => {
  const installer = (): string => {
    const p = defaultFfmpegLookup.ffmpegInstaller();
    if (!p) throw new Error('test needs @ffmpeg-installer/ffmpeg');
    return p;
  };

  it('an explicit AUDIOX_FFMPEG that does not exist is an error naming it', () => {
    const lookup = { env: { AUDIOX_FFMPEG: '/nope/ffmpeg-missing' }, ffmpegStatic: () => null, ffmpegInstaller: installer };
    expect(() => resolveFfmpegWith(lookup)).toThrow(/AUDIOX_FFMPEG.*\/nope\/ffmpeg-missing/);
  });

  it('follows the order AUDIOX_FFMPEG, ffmpeg-static, @ffmpeg-installer, PATH', () => {
    const inst = installer();
    expect(resolveFfmpegWith({ env: { AUDIOX_FFMPEG: inst }, ffmpegStatic: () => inst, ffmpegInstaller: installer })).toEqual({
      path: inst,
      source: 'AUDIOX_FFMPEG',
    });
    expect(resolveFfmpegWith({ env: {}, ffmpegStatic: () => inst, ffmpegInstaller: installer }).source).toBe('ffmpeg-static');
    // ffmpeg-static installed but its binary missing → falls through.
    expect(
      resolveFfmpegWith({ env: {}, ffmpegStatic: () => '/nope/ffmpeg', ffmpegInstaller: installer }).source,
    ).toBe('@ffmpeg-installer/ffmpeg');
    const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-bin-'));
    try {
      fs.symlinkSync(inst, path.join(binDir, 'ffmpeg'));
      const r = resolveFfmpegWith({ env: { PATH: binDir }, ffmpegStatic: () => null, ffmpegInstaller: () => null });
      expect(r).toEqual({ path: path.join(binDir, 'ffmpeg'), source: 'PATH' });
    } finally {
      fs.rmSync(binDir, { recursive: true, force: true });
    }
    expect(() => resolveFfmpegWith({ env: { PATH: '' }, ffmpegStatic: () => null, ffmpegInstaller: () => null })).toThrow(
      /No ffmpeg binary found.*AUDIOX_FFMPEG/,
    );
  });

  it('resolves a working ffmpeg here (cached)', async () => {
    const r = resolveFfmpeg();
    expect(resolveFfmpeg()).toBe(r);
    expect(['AUDIOX_FFMPEG', 'ffmpeg-static', '@ffmpeg-installer/ffmpeg', 'PATH']).toContain(r.source);
    const { stdout } = await runFfmpeg(['-hide_banner', '-version']);
    expect(stdout.toString()).toMatch(/ffmpeg version/);
  });

  it('runFfmpeg honours an AbortSignal', async () => {
    const ac = new AbortController();
    const p = runFfmpeg(['-hide_banner', '-f', 'lavfi', '-i', 'testsrc', '-f', 'null', '-'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expectMediaError(p, 'FFMPEG_FAILED', /aborted/);
  });

  it('runFfmpeg rejects with the tail of stderr', async () => {
    await expectMediaError(runFfmpeg(['-hide_banner', '-i', f('does-not-exist.mp4')]), 'FFMPEG_FAILED', /No such file/);
  });
});

describe('probeMedia', () => {
  it('parses duration, video and audio streams', async () => {
    const info = await probeMedia(f('clip.mp4'));
    expect(info.duration).toBeGreaterThan(2.9);
    expect(info.duration).toBeLessThan(3.2);
    expect(info.video).toMatchObject({ codec: 'h264', width: 320, height: 240, fps: 30 });
    expect(info.audio).toMatchObject({ codec: 'aac', sampleRate: 48000, channels: 1 });
    expect(info.isStillImage).toBe(false);
    const png = await probeMedia(f('still.png'));
    expect(png.isStillImage).toBe(true);
    expect(png.audio).toBeNull();
    expect(png.video).toMatchObject({ width: 320, height: 240 });
  });

  it('parses rotation, "N channels" and fractional fps from ffmpeg text', () => {
    const text = [
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mov':",
      '  Duration: 00:01:02.50, start: 0.000000, bitrate: 1 kb/s',
      '    Stream #0:0(und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709), 1920x1080, 29.97 fps, 29.97 tbr, 90k tbn (default)',
      '    Metadata:',
      '      rotate          : 90',
      '    Stream #0:1(eng): Audio: pcm_s24le (lpcm / 0x6D63706C), 96000 Hz, 3 channels, s32 (24 bit), 1 kb/s',
    ].join('\n');
    const info = parseFfmpegInfo(text, 'x.mov');
    expect(info.duration).toBeCloseTo(62.5, 6);
    expect(info.video).toMatchObject({ width: 1080, height: 1920, fps: 29.97, rotation: 90 });
    expect(info.audio).toMatchObject({ sampleRate: 96000, channels: 3 });
  });
});

describe('video → frames (ffmpeg decode + frames.ts)', () => {
  it('CLIP branch: 10 s window at 5 fps from a 3 s video = 50 frames, padded with the last frame', async () => {
    const v = await readVideoFrames(f('clip.mp4'), { fps: 5, duration: 10 });
    expect([v.T, v.size]).toEqual([50, 224]);
    expect(v.frames.length).toBe(50 * 3 * 224 * 224);
    expect(v.decodedFrames).toBe(15);
    expect(v.indices).toEqual(Array.from({ length: 15 }, (_, k) => 6 * k));
    const last = frame(v.frames, 14, 224, 224);
    for (let t = 15; t < 50; t++) expect(same(frame(v.frames, t, 224, 224), last)).toBe(true);
    expect(same(frame(v.frames, 0, 224, 224), frame(v.frames, 5, 224, 224))).toBe(false); // testsrc moves
  });

  it('slot-start sampling equals the stride sampling where they coincide (30 fps → every 6th frame)', async () => {
    const exact = await readVideoFrames(f('clip.mp4'), { fps: 5, duration: 10 });
    const quirk = await readVideoFrames(f('clip.mp4'), { fps: 5, duration: 10, sampling: 'stride' });
    expect(quirk.decodedFrames).toBe(15);
    expect(same(exact.frames, quirk.frames)).toBe(true);
  });

  it('the decoded frame k is source frame indices[k] (ffmpeg select keeps exactly the planned frames)', async () => {
    const size = 32;
    const all = await readVideoFrames(f('clip.mp4'), { fps: 30, duration: 3, size });
    expect(all.decodedFrames).toBe(90);
    expect(all.indices).toEqual([...Array(90).keys()]);
    const index = (v: Uint8Array, t: number): number[] =>
      [...Array(90).keys()].filter((j) => same(frame(v, t, size, size), frame(all.frames, j, size, size)));
    const v25 = await readVideoFrames(f('clip.mp4'), { fps: 25, duration: 10, size, sampling: 'slot-centre' });
    // frame on screen at (k + ½)/25 s: ⌈(k + ½)·1.2⌉ − 1
    expect([0, 1, 2, 4, 5, 74].map((k) => index(v25.frames, k))).toEqual([[0], [1], [2], [5], [6], [89]]);
    const sk = await readVideoFrames(f('clip.mp4'), { fps: 5, duration: 1, seekTime: 0.51, size });
    // frame on screen at 0.51 + k/5 s: ⌊(0.51 + k/5)·30⌋
    expect([0, 1, 2, 4].map((k) => index(sk.frames, k))).toEqual([[15], [21], [27], [39]]);
  });

  it('Synchformer branch: 250×3×224×224; default crop vs the reference\'s stride + squash', async () => {
    const v = await readVideoFrames(f('clip.mp4'), { fps: 25, duration: 10, sampling: 'slot-centre', resize: 'crop' });
    expect([v.T, v.size, v.frames.length]).toEqual([250, 224, 250 * 3 * 224 * 224]);
    expect(v.decodedFrames).toBe(75);
    expect(same(frame(v.frames, 249, 224, 224), frame(v.frames, 74, 224, 224))).toBe(true);
    const q = await readVideoFrames(f('clip.mp4'), { fps: 25, duration: 10, sampling: 'stride', resize: 'squash' });
    expect(q.T).toBe(250);
    expect(q.decodedFrames).toBe(45); // every 2nd frame at 30 fps: 15 fps of content
    expect(same(frame(v.frames, 0, 224, 224), frame(q.frames, 0, 224, 224))).toBe(false);
  });

  it('seekTime moves the window; a window past the end is a clear error', async () => {
    const v = await readVideoFrames(f('clip.mp4'), { fps: 5, duration: 10, seekTime: 2 });
    expect(v.T).toBe(50);
    expect(v.decodedFrames).toBe(5);
    expect(v.indices).toEqual([60, 66, 72, 78, 84]);
    await expectMediaError(readVideoFrames(f('clip.mp4'), { fps: 5, duration: 2, seekTime: 30 }), 'NO_FRAMES', /window/);
    await expectMediaError(readVideoFrames(f('clip.mp4'), { fps: 0, duration: 2 }), 'INVALID_ARGUMENT', /target frame rate/);
    await expectMediaError(readVideoFrames(f('clip.mp4'), { fps: 5, seekTime: -1 }), 'INVALID_ARGUMENT', /seek time/);
    await expectMediaError(readVideoFrames(f('clip.mp4'), { fps: 5, size: 0 }), 'INVALID_ARGUMENT', /size/);
  });

  it('still image → its picture repeated; readImage gives the pixels at their own size', async () => {
    const img = await readImage(f('still.png'));
    expect([img.H, img.W, img.hwc.length]).toEqual([240, 320, 240 * 320 * 3]);
    const v = await readVideoFrames(f('still.png'), { fps: 5, duration: 10 });
    expect([v.T, v.decodedFrames]).toEqual([50, 1]);
    const f0 = frame(v.frames, 0, 224, 224);
    for (const t of [1, 25, 49]) expect(same(frame(v.frames, t, 224, 224), f0)).toBe(true);
    expect(same(f0, transformFrame(img.hwc, img.H, img.W, 224, 'squash'))).toBe(true);
  });
});

describe('audio', () => {
  it('decodes to stereo 44.1 kHz with the right length and a 440 Hz sine', async () => {
    const a = await readAudio(f('clip.mp4'));
    expect(a.sampleRate).toBe(44100);
    expect(a.data.length).toBe(2);
    expect(Math.abs(a.data[0].length / 44100 - 3)).toBeLessThan(0.06);
    expect(Buffer.from(a.data[0].buffer).equals(Buffer.from(a.data[1].buffer))).toBe(true); // mono duplicated
    expect(zeroCrossingHz(a.data[0].subarray(4410, 4410 + 88200), 44100)).toBeCloseTo(440, -1);
    const w = await readAudio(f('sine48k.wav'), { seekTime: 0.5, duration: 1 });
    expect(w.data[0].length).toBe(44100);
    expect(zeroCrossingHz(w.data[1], 44100)).toBeGreaterThan(435);
    expect(zeroCrossingHz(w.data[1], 44100)).toBeLessThan(445);
  });

  it('fits the model window: right-pad by default, left-pad and no resampling with referenceQuirks', async () => {
    const n = 44100 * 10;
    const a = await loadAudioWindow(f('sine48k.wav'), { duration: 10 });
    expect(a.sampleRate).toBe(44100);
    expect(a.data.map((c) => c.length)).toEqual([n, n]);
    expect(a.data[0].subarray(2 * 44100 + 10).every((x) => x === 0)).toBe(true);
    expect(a.data[0].subarray(0, 1000).some((x) => x !== 0)).toBe(true);
    const q = await loadAudioWindow(f('sine48k.wav'), { duration: 10, referenceQuirks: true });
    expect(q.sampleRate).toBe(48000); // native rate kept (quirk 15)
    expect(q.data[0].length).toBe(n);
    expect(q.data[0].subarray(0, n - 96000).every((x) => x === 0)).toBe(true); // 2 s of 48 kHz, left-padded
    expect(q.data[0].subarray(n - 96000).some((x) => x !== 0)).toBe(true);
    const silent = await loadAudioWindow(null, { duration: 1 });
    expect(silent.data.map((c) => c.length)).toEqual([44100, 44100]);
    expect(fitToWindow([new Float32Array([1, 2, 3])], 2)).toEqual([new Float32Array([1, 2])]);
    expect(fitToWindow([new Float32Array([1, 2])], 4, { pad: 'start' })).toEqual([new Float32Array([0, 0, 1, 2])]);
  });

  it('a file without audio is a clear error', async () => {
    await expectMediaError(readAudio(f('still.png')), 'NO_AUDIO_STREAM', /audio/);
  });
});

describe('wav', () => {
  it('writes 16-bit PCM (default) and 32-bit float with correct headers, atomically', async () => {
    const n = 66150; // 1.5 s
    const l = new Float32Array(n).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 44100));
    const r = new Float32Array(n).map((_, i) => 0.25 * Math.sin((2 * Math.PI * 220 * i) / 44100));
    await writeWav(f('out16.wav'), [l, r], 44100);
    expect(readWavHeader(f('out16.wav'))).toMatchObject({
      sampleRate: 44100,
      channels: 2,
      bitsPerSample: 16,
      format: 'pcm',
      numFrames: n,
      duration: 1.5,
    });
    await writeWav(f('out32.wav'), [l, r], 44100, { bitDepth: '32f' });
    expect(readWavHeader(f('out32.wav'))).toMatchObject({ bitsPerSample: 32, format: 'float', numFrames: n });
    const back = readWav(f('out32.wav'));
    expect(Buffer.from(back.data[1].buffer).equals(Buffer.from(r.buffer))).toBe(true);
    const back16 = readWav(f('out16.wav'));
    expect(Math.abs(back16.data[0][100] - l[100])).toBeLessThan(1 / 16384);
    // ffmpeg agrees with the header
    const probed = await probeMedia(f('out16.wav'));
    expect(probed.audio).toMatchObject({ sampleRate: 44100, channels: 2, codec: 'pcm_s16le' });
    expect(leftovers(FIXTURES).sort()).toEqual(['out16.wav', 'out32.wav']);
    fs.rmSync(f('out16.wav'));
    fs.rmSync(f('out32.wav'));
  });

  it('refuses NaN and missing directories, leaving no file behind', async () => {
    const bad = new Float32Array([0, NaN, 0]);
    await expect(writeWav(f('nan.wav'), [bad, bad], 44100)).rejects.toThrow(/NaN/);
    await expect(writeWav(path.join(dir, 'no-such-dir', 'x.wav'), [new Float32Array(4)], 44100)).rejects.toThrow(
      /does not exist/,
    );
    await expect(writeWav(f('mismatch.wav'), [new Float32Array(4), new Float32Array(3)], 44100)).rejects.toThrow(
      /same length/,
    );
    expect(leftovers(FIXTURES)).toEqual([]);
  });

  it('toInt16: the reference writer (clamp, ⌊x·32768⌋, clip to 32767) and its README recipe (trunc x·32767)', async () => {
    const x = [new Float32Array([0.5, -1.0, 0.25, 0.99995]), new Float32Array([2.0, -0.3, 0, -2.0])];
    const y = toInt16(x);
    // 0.5 → 16384; -1 → -32768; 0.25 → 8192; 0.99995·32768 = 32766.4 → 32766; 1 → 32768 clipped; -0.3·32768 = -9830.4 → -9831
    expect(Array.from(y[0])).toEqual([16384, -32768, 8192, 32766]);
    expect(Array.from(y[1])).toEqual([32767, -9831, 0, -32768]);
    const r = toInt16(x, { recipe: 'readme' });
    // ×32767 truncated toward zero: 16383.5 → 16383, -0.3·32767 = -9830.1 → -9830
    expect(Array.from(r[0])).toEqual([16383, -32767, 8191, 32765]);
    expect(Array.from(r[1])).toEqual([32767, -9830, 0, -32767]);
    expect(() => toInt16([new Float32Array([0, NaN])])).toThrow(/NaN at sample 1/);
    // writeWav's 16-bit path writes exactly these values
    await writeWav(f('conv16.wav'), x, 22050);
    expect(readWavInt16(f('conv16.wav')).map((c) => Array.from(c))).toEqual(y.map((c) => Array.from(c)));
    fs.rmSync(f('conv16.wav'));
    const pn = peakNormalize(x);
    expect(pn[1][0]).toBe(1);
    expect(pn[0][1]).toBe(-0.5);
    // exact int16 round trip through the WAV writer
    const vals = new Int16Array([-32768, -32767, -1, 0, 1, 12345, 32767]);
    await writeWavInt16(f('i16.wav'), [vals, new Int16Array(7).fill(7)], 22050);
    const back = readWavInt16(f('i16.wav'));
    expect(Array.from(back[0])).toEqual(Array.from(vals));
    expect(readWavHeader(f('i16.wav'))).toMatchObject({ sampleRate: 22050, channels: 2, bitsPerSample: 16, numFrames: 7 });
    fs.rmSync(f('i16.wav'));
  });
});

describe('mux', () => {
  let wav = '';
  beforeAll(async () => {
    wav = path.join(os.tmpdir(), `audiox-mux-${process.pid}.wav`);
    const n = Math.round(44100 * 10.96);
    const s = new Float32Array(n).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 330 * i) / 44100));
    await writeWav(wav, [s, s], 44100);
  });
  afterAll(() => fs.rmSync(wav, { force: true }));

  it('full clip: one video + one audio stream, as long as the (shorter) video', async () => {
    const r = await muxVideoWithAudio({ video: f('clip.mp4'), audioWav: wav, out: f('muxed.mp4'), start: 0, duration: 10 });
    expect(r.videoCodec).toBe('copy');
    const s = await probeStreams(f('muxed.mp4'));
    expect([s.videoStreams, s.audioStreams]).toEqual([1, 1]);
    expect(Math.abs((s.duration ?? 0) - 3)).toBeLessThan(0.1);
    expect(s.info.audio?.codec).toBe('aac');
    fs.rmSync(f('muxed.mp4'));
  });

  it('a window inside the video is cut frame-accurately (re-encoded)', async () => {
    const r = await muxVideoWithAudio({ video: f('clip.mp4'), audioWav: wav, out: f('cut.mp4'), start: 1, duration: 1.5 });
    expect(['libx264', 'mpeg4']).toContain(r.videoCodec);
    const s = await probeStreams(f('cut.mp4'));
    expect([s.videoStreams, s.audioStreams]).toEqual([1, 1]);
    expect(Math.abs((s.duration ?? 0) - 1.5)).toBeLessThan(0.1);
    const a = await readAudio(f('cut.mp4'));
    expect(Math.abs(a.data[0].length / 44100 - 1.5)).toBeLessThan(0.1);
    fs.rmSync(f('cut.mp4'));
    expect(leftovers(FIXTURES)).toEqual([]);
  });

  it('bad inputs fail clearly and leave no output', async () => {
    const out = f('bad-out.mp4');
    await expectMediaError(muxVideoWithAudio({ video: f('missing.mp4'), audioWav: wav, out, duration: 10 }), 'FILE_NOT_FOUND');
    await expectMediaError(muxVideoWithAudio({ video: f('text.mp4'), audioWav: wav, out, duration: 10 }), 'NOT_MEDIA');
    await expectMediaError(muxVideoWithAudio({ video: f('clip.mp4'), audioWav: f('empty.mp4'), out, duration: 10 }), 'EMPTY_FILE');
    await expectMediaError(muxVideoWithAudio({ video: f('clip.mp4'), audioWav: f('still.png'), out, duration: 10 }), 'NO_AUDIO_STREAM');
    expect(leftovers(FIXTURES)).toEqual([]);
  });
});

describe('bad inputs', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing.mp4', 'FILE_NOT_FOUND', /does not exist/],
    ['text.mp4', 'NOT_MEDIA', /not a readable audio\/video\/image file/],
    ['empty.mp4', 'EMPTY_FILE', /empty \(0 bytes\)/],
  ];
  it.each(cases)('%s → %s', async (name, code, re) => {
    await expectMediaError(readVideoFrames(f(name), { fps: 5 }), code, re);
    await expectMediaError(readAudio(f(name)), code, re);
    await expectMediaError(readImage(f(name)), code, re);
    expect(leftovers(FIXTURES)).toEqual([]);
  });

  it('an audio-only file is not a video', async () => {
    await expectMediaError(readVideoFrames(f('sine48k.wav'), { fps: 5 }), 'NO_VIDEO_STREAM', /only an audio stream/);
  });
});
