// Which failures are worth another attempt: bad input (values, missing or unreadable media) fails the job
// at once with its message; anything else (a crashed child, a filesystem hiccup, ffmpeg dying) is retried
// with backoff.
import { InvalidArgumentError } from 'commander';
import { ManifestError } from '../batch/manifest.ts';
import { MediaError } from '../io/ffmpeg.ts';
import { GenerateError } from '../pipeline/generate.ts';

/** MediaError codes that say the input itself is wrong (FFMPEG_FAILED and FFMPEG_NOT_FOUND are the worker's problem). */
const BAD_MEDIA = new Set(['FILE_NOT_FOUND', 'EMPTY_FILE', 'NOT_MEDIA', 'NO_AUDIO_STREAM', 'NO_VIDEO_STREAM', 'NO_FRAMES', 'INVALID_ARGUMENT']);

export function isBadInput(e: unknown): boolean {
  const cause = e instanceof Error && e.name === 'ItemError' && e.cause ? e.cause : e;
  if (cause instanceof MediaError) return BAD_MEDIA.has(cause.code);
  return cause instanceof GenerateError || cause instanceof InvalidArgumentError || cause instanceof ManifestError;
}
