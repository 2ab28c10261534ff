// Audio file → per-channel float32 via ffmpeg (`-f f32le`), and fitting to the model window.
// Reference: docs/REFERENCE.md §8.2 (load_and_process_audio), quirk 15.
import { MediaError, ffTime, probeMedia, runFfmpeg, type MediaInfo } from './ffmpeg.ts';

export interface ReadAudioOptions {
  /** Output sample rate (default 44100). Ignored with referenceQuirks (native rate is kept). */
  sampleRate?: number;
  /** Output channel count (default 2): mono is duplicated, more channels are down-mixed by ffmpeg. */
  channels?: number;
  /** Window start in seconds (default 0). */
  seekTime?: number;
  /** Window length in seconds (default: to the end of the file). */
  duration?: number;
  /**
   * Reproduce the reference (quirk 15): no resampling (`-ar` omitted, native rate kept and reported), and the
   * window is cut by sample index using the *model* rate `sampleRate`: [⌊sr·seek⌋, ⌊sr·seek⌋+⌊sr·duration⌋).
   */
  referenceQuirks?: boolean;
  signal?: AbortSignal;
}

export interface AudioData {
  /** One Float32Array per channel, all the same length. */
  data: Float32Array[];
  /** Rate of `data` (the requested rate, or the file's native rate with referenceQuirks). */
  sampleRate: number;
  /** Probe result of the input. */
  info: MediaInfo;
}

function deinterleave(buf: Buffer, channels: number): Float32Array[] {
  const frames = Math.floor(buf.length / (4 * channels));
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let i = 0, off = 0; i < frames; i++) {
    for (let c = 0; c < channels; c++, off += 4) out[c][i] = buf.readFloatLE(off);
  }
  return out;
}

/**
 * Decodes the first audio stream of `file` (any container ffmpeg reads, including the audio of a video) to
 * `channels` float32 channels at `sampleRate`, limited to [seekTime, seekTime+duration]. The result may be
 * shorter than the window (end of file); use {@link fitToWindow} or {@link loadAudioWindow} for a fixed length.
 */
export async function readAudio(file: string, opts: ReadAudioOptions = {}): Promise<AudioData> {
  const sampleRate = opts.sampleRate ?? 44100;
  const channels = opts.channels ?? 2;
  const seekTime = opts.seekTime ?? 0;
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) {
    throw new MediaError('INVALID_ARGUMENT', `sampleRate must be a positive integer, got ${sampleRate}.`);
  }
  if (!Number.isInteger(channels) || channels < 1 || channels > 8) {
    throw new MediaError('INVALID_ARGUMENT', `channels must be an integer in 1..8, got ${channels}.`);
  }
  if (opts.duration !== undefined && !(opts.duration > 0)) {
    throw new MediaError('INVALID_ARGUMENT', `duration must be > 0 seconds, got ${opts.duration}.`);
  }
  ffTime(seekTime);
  const info = await probeMedia(file, { signal: opts.signal });
  if (!info.audio) {
    const has = info.video ? 'only a video/image stream' : 'no audio stream';
    throw new MediaError('NO_AUDIO_STREAM', `"${file}" has ${has}; an audio file (wav/mp3/flac/ogg/m4a…) or a video with sound is required.`);
  }
  const quirks = opts.referenceQuirks ?? false;
  const nativeRate = info.audio.sampleRate;
  if (quirks && !nativeRate) throw new MediaError('NOT_MEDIA', `Cannot determine the sample rate of "${file}".`);
  const window: string[] = [];
  if (!quirks) {
    if (seekTime > 0) window.push('-ss', ffTime(seekTime));
    if (opts.duration !== undefined) window.push('-t', ffTime(opts.duration));
  }
  const args = [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    ...window,
    '-i',
    info.file,
    '-map',
    '0:a:0',
    '-vn',
    '-sn',
    '-ac',
    String(channels),
    ...(quirks ? [] : ['-ar', String(sampleRate)]),
    '-f',
    'f32le',
    '-acodec',
    'pcm_f32le',
    'pipe:1',
  ];
  const { stdout } = await runFfmpeg(args, { signal: opts.signal });
  let data = deinterleave(stdout, channels);
  if (quirks) {
    const start = Math.floor(sampleRate * seekTime);
    const end = opts.duration === undefined ? Infinity : start + Math.floor(sampleRate * opts.duration);
    data = data.map((c) => c.slice(Math.min(start, c.length), Math.min(end, c.length)));
  }
  if (data[0].length === 0) {
    const len = info.duration === null ? 'unknown length' : `${info.duration.toFixed(3)} s long`;
    throw new MediaError(
      'NO_FRAMES',
      `No audio samples decoded from "${file}" starting at ${seekTime} s (the media is ${len}). ` +
        'Use a smaller seek time or a non-empty audio file.',
    );
  }
  return { data, sampleRate: quirks ? nativeRate : sampleRate, info };
}

/**
 * Trims or pads every channel to exactly `nSamples`. Padding is silence at the end (`pad: 'end'`, default) or at
 * the start (`pad: 'start'`, the reference's left-padding, quirk 15). Trimming always keeps the beginning.
 */
export function fitToWindow(
  channels: readonly Float32Array[],
  nSamples: number,
  opts: { pad?: 'end' | 'start' } = {},
): Float32Array[] {
  if (!Number.isInteger(nSamples) || nSamples < 0) {
    throw new MediaError('INVALID_ARGUMENT', `nSamples must be a non-negative integer, got ${nSamples}.`);
  }
  return channels.map((c) => {
    if (c.length >= nSamples) return c.slice(0, nSamples);
    const out = new Float32Array(nSamples);
    out.set(c, opts.pad === 'start' ? nSamples - c.length : 0);
    return out;
  });
}

/**
 * The audio prompt for the model, like the reference's `load_and_process_audio` (§8.2): stereo, exactly
 * ⌊sampleRate·duration⌋ samples. Default: resampled to `sampleRate`, time-exact window, right-padded with silence.
 * With referenceQuirks: native rate kept (not resampled), cut by model-rate sample indices, left-padded.
 * `file` null/undefined gives silence (zeros), as the reference does.
 */
export async function loadAudioWindow(
  file: string | null | undefined,
  opts: { sampleRate?: number; seekTime?: number; duration: number; referenceQuirks?: boolean; signal?: AbortSignal },
): Promise<{ data: Float32Array[]; sampleRate: number }> {
  const sampleRate = opts.sampleRate ?? 44100;
  const n = Math.floor(sampleRate * opts.duration + 1e-9);
  if (file === null || file === undefined) {
    return { data: [new Float32Array(n), new Float32Array(n)], sampleRate };
  }
  const a = await readAudio(file, { ...opts, sampleRate, channels: 2 });
  return { data: fitToWindow(a.data, n, { pad: opts.referenceQuirks ? 'start' : 'end' }), sampleRate: a.sampleRate };
}
