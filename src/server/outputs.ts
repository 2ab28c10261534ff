// Writing one job's results into the output directory: per batch item a 16-bit WAV, a spectrogram and a
// waveform PNG and, when the job had a video, the video re-muxed with the generated audio. All names share one
// reserved timestamp stem, so results never overwrite earlier ones.
import fs from 'node:fs';
import path from 'node:path';
import { muxVideoWithAudio } from '../io/mux.ts';
import { writeWav } from '../io/wav.ts';
import { reserveOutputs } from './files.ts';
import type { JobResultItem } from './jobs.ts';
import { encodePng, renderSpectrogram, renderWaveform } from './render.ts';

export interface SaveOptions {
  /** Source video to put the audio under (mp4 output). */
  video?: string;
  /** Where the generated window starts in the video, seconds. */
  secondsStart?: number;
  signal?: AbortSignal;
}

/** Writes `audio` ([item][channel] samples in [−1, 1]) and returns the file names of each item. */
export async function saveResult(
  outputDir: string,
  audio: readonly Float32Array[][],
  sampleRate: number,
  opts: SaveOptions = {},
): Promise<JobResultItem[]> {
  const kinds = ['.wav', '.spectrogram.png', '.waveform.png', ...(opts.video ? ['.mp4'] : [])];
  const suffixes = audio.flatMap((_, i) => kinds.map((k) => (audio.length > 1 ? `-${i + 1}${k}` : k)));
  const names = reserveOutputs(outputDir, suffixes);
  const at = (name: string): string => path.join(outputDir, name);
  try {
    const items: JobResultItem[] = [];
    for (let i = 0; i < audio.length; i++) {
      const [wav, spectrogram, waveform, video] = names.slice(i * kinds.length, (i + 1) * kinds.length);
      const channels = audio[i];
      await writeWav(at(wav), channels, sampleRate);
      fs.writeFileSync(at(spectrogram), encodePng(renderSpectrogram(channels, sampleRate)));
      fs.writeFileSync(at(waveform), encodePng(renderWaveform(channels)));
      const item: JobResultItem = { audio: wav, spectrogram, waveform };
      if (opts.video && video) {
        opts.signal?.throwIfAborted();
        await muxVideoWithAudio({
          video: opts.video,
          audioWav: at(wav),
          out: at(video),
          start: opts.secondsStart ?? 0,
          duration: channels[0].length / sampleRate,
          signal: opts.signal,
        });
        item.video = video;
      }
      items.push(item);
    }
    return items;
  } catch (e) {
    for (const n of names) fs.rmSync(at(n), { force: true });
    throw e;
  }
}
