// Put generated audio under the source video: mp4 with the video (copied or re-encoded) + AAC audio, cut to
// [start, start+duration]. Reference: docs/REFERENCE.md §8.3 (merge_video_audio). Output is written atomically.
import path from 'node:path';
import { MediaError, ffTime, probeMedia, runFfmpeg, writeAtomically, type MediaInfo } from './ffmpeg.ts';

export type VideoCodecChoice = 'auto' | 'copy' | 'reencode';

export interface MuxOptions {
  /** Source video (or still image, which is looped). */
  video: string;
  /** Generated audio (any format ffmpeg reads; normally the WAV written by writeWav). */
  audioWav: string;
  /** Output .mp4 path; its directory must exist. Replaced atomically. */
  out: string;
  /** Window start in the video, seconds (default 0). The audio is taken from its own start. */
  start?: number;
  /** Window length, seconds. The output lasts min(duration, rest of video, audio length). */
  duration: number;
  /**
   * 'copy': stream-copy the video like the reference (cut snaps to key-frames when start > 0).
   * 'reencode': H.264 (libx264) or MPEG-4 part 2 if libx264 is missing, frame-accurate cut.
   * 'auto' (default): copy when start is 0 and the codec fits in mp4, otherwise re-encode.
   */
  videoCodec?: VideoCodecChoice;
  signal?: AbortSignal;
}

export interface MuxResult {
  out: string;
  /** 'copy' or the encoder used ('libx264' | 'mpeg4'). */
  videoCodec: string;
  /** Container duration of the output, seconds (null if ffmpeg could not tell). */
  duration: number | null;
}

/** Codecs that can be stream-copied into mp4. */
const MP4_COPYABLE = new Set(['h264', 'hevc', 'mpeg4', 'av1', 'vp9', 'mpeg2video', 'mpeg1video']);

let encoderCache: Promise<Set<string>> | null = null;

/** Names of the encoders this ffmpeg build has (cached). */
export function listEncoders(): Promise<Set<string>> {
  if (!encoderCache) {
    encoderCache = runFfmpeg(['-hide_banner', '-nostdin', '-encoders']).then(({ stdout }) => {
      const names = new Set<string>();
      for (const line of stdout.toString('utf8').split('\n')) {
        const m = /^\s*[VAS][.FSXBD]{5}\s+(\S+)/.exec(line);
        if (m) names.add(m[1]);
      }
      return names;
    });
    encoderCache.catch(() => {
      encoderCache = null;
    });
  }
  return encoderCache;
}

async function pickVideoEncoder(): Promise<{ name: string; args: string[] }> {
  const enc = await listEncoders();
  // Even dimensions are required for yuv420p.
  const even = ['-vf', 'scale=trunc(iw/2)*2:trunc(ih/2)*2', '-pix_fmt', 'yuv420p'];
  if (enc.has('libx264')) return { name: 'libx264', args: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', ...even] };
  if (enc.has('mpeg4')) return { name: 'mpeg4', args: ['-c:v', 'mpeg4', '-q:v', '3', ...even] };
  throw new MediaError('FFMPEG_FAILED', 'This ffmpeg build has neither libx264 nor mpeg4 encoders; set AUDIOX_FFMPEG to a full build.');
}

/** Muxes `audioWav` under `video` into an mp4 (see {@link MuxOptions}). */
export async function muxVideoWithAudio(opts: MuxOptions): Promise<MuxResult> {
  const start = opts.start ?? 0;
  if (!(opts.duration > 0)) throw new MediaError('INVALID_ARGUMENT', `duration must be > 0 seconds, got ${opts.duration}.`);
  ffTime(start);
  const outAbs = path.resolve(opts.out);
  const vinfo = await probeMedia(opts.video, { signal: opts.signal });
  if (!vinfo.video) throw new MediaError('NO_VIDEO_STREAM', `"${opts.video}" has no video stream to mux the audio into.`);
  const ainfo = await probeMedia(opts.audioWav, { signal: opts.signal });
  if (!ainfo.audio) throw new MediaError('NO_AUDIO_STREAM', `"${opts.audioWav}" has no audio stream.`);
  if (outAbs === vinfo.file || outAbs === ainfo.file) {
    throw new MediaError('INVALID_ARGUMENT', `The output "${opts.out}" must differ from the inputs.`);
  }
  const choice = opts.videoCodec ?? 'auto';
  const copyable = !vinfo.isStillImage && MP4_COPYABLE.has(vinfo.video.codec);
  if (choice === 'copy' && !copyable) {
    throw new MediaError(
      'INVALID_ARGUMENT',
      `Cannot stream-copy ${vinfo.isStillImage ? 'a still image' : `"${vinfo.video.codec}" video`} into mp4; use videoCodec 'auto' or 'reencode'.`,
    );
  }
  const copy = choice === 'copy' || (choice === 'auto' && copyable && start === 0);
  const encoder = copy ? { name: 'copy', args: ['-c:v', 'copy'] } : await pickVideoEncoder();

  const videoInput = vinfo.isStillImage
    ? ['-loop', '1', '-framerate', '25', '-t', ffTime(opts.duration), '-i', vinfo.file]
    : [...(start > 0 ? ['-ss', ffTime(start)] : []), '-t', ffTime(opts.duration), '-i', vinfo.file];
  await writeAtomically(outAbs, async (tmp) => {
    await runFfmpeg(
      [
        '-hide_banner',
        '-nostdin',
        '-loglevel',
        'error',
        '-y',
        ...videoInput,
        '-t',
        ffTime(opts.duration),
        '-i',
        ainfo.file,
        '-map',
        '0:v:0',
        '-map',
        '1:a:0',
        ...encoder.args,
        '-c:a',
        'aac',
        '-b:a',
        '192k',
        '-strict',
        'experimental',
        '-shortest',
        '-t',
        ffTime(opts.duration),
        '-movflags',
        '+faststart',
        '-f',
        'mp4',
        tmp,
      ],
      { signal: opts.signal },
    );
  });
  const outInfo = await probeMedia(outAbs, { signal: opts.signal });
  return { out: outAbs, videoCodec: encoder.name, duration: outInfo.duration };
}

export interface StreamSummary {
  duration: number | null;
  videoStreams: number;
  audioStreams: number;
  info: MediaInfo;
}

/** Counts the streams of a media file (for tests and sanity checks). */
export async function probeStreams(file: string): Promise<StreamSummary> {
  const info = await probeMedia(file);
  return {
    duration: info.duration,
    videoStreams: info.streams.filter((s) => s.type === 'video').length,
    audioStreams: info.streams.filter((s) => s.type === 'audio').length,
    info,
  };
}
