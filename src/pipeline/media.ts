// The media of a generation: checked before any model work (checkMediaInputs). Each conditioner brings
// them to its own input (src/models/conditioners/<modality>/).
import { readAudio } from '../io/audio.ts';
import { MediaError, probeMedia } from '../io/ffmpeg.ts';
import { readImage, readVideoFrames } from '../io/video.ts';
import { CONDITIONING_SECONDS, type AudioPromptSource } from '../models/conditioners/conditioner.ts';
import { isPerItemAudio } from '../models/conditioners/audio/prompt.ts';

export { CONDITIONING_SECONDS, type AudioPromptSource, type MediaOptions } from '../models/conditioners/conditioner.ts';
export { isPerItemAudio, stereoTensor } from '../models/conditioners/audio/prompt.ts';

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
