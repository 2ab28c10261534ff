// Writing one job's results into the output directory: per batch item a 16-bit WAV, a spectrogram and a
// waveform PNG and, when the job had a video, the video re-muxed with the generated audio. All names share one
// reserved timestamp stem, so results never overwrite earlier ones. A cancelled or failed write leaves nothing.
import fs from 'node:fs';
import path from 'node:path';
import { writeAtomically } from '../io/ffmpeg.ts';
import { muxVideoWithAudio } from '../io/mux.ts';
import { writeWav } from '../io/wav.ts';
import { isSafeName, reserveOutputs } from './files.ts';
import type { JobResultItem } from './jobs.ts';
import { encodePng, renderSpectrogram, renderWaveform } from './render.ts';

export interface SaveOptions {
  /** Source video to put the audio under (mp4 output). */
  video?: string;
  /** Where the generated window starts in the video, seconds. */
  secondsStart?: number;
  /** Checked after every file: an abort removes everything written so far and rethrows the abort reason. */
  signal?: AbortSignal;
  /**
   * Names already reserved in outputDir for outputSuffixes(items, video) (by another thread, which can then
   * clean up whatever happens to this one); default: reserved here.
   */
  names?: readonly string[];
}

/** The suffixes of a result's files, in saveResult's order: per item .wav, two PNGs and (with a video) .mp4. */
export function outputSuffixes(items: number, video: boolean): string[] {
  const kinds = ['.wav', '.spectrogram.png', '.waveform.png', ...(video ? ['.mp4'] : [])];
  return Array.from({ length: items }, (_, i) => kinds.map((k) => (items > 1 ? `-${i + 1}${k}` : k))).flat();
}

/** Writes `audio` ([item][channel] samples in [−1, 1]) and returns the file names of each item. */
export async function saveResult(
  outputDir: string,
  audio: readonly Float32Array[][],
  sampleRate: number,
  opts: SaveOptions = {},
): Promise<JobResultItem[]> {
  const suffixes = outputSuffixes(audio.length, opts.video !== undefined);
  const per = suffixes.length / Math.max(1, audio.length);
  if (opts.names && (opts.names.length !== suffixes.length || !opts.names.every((n, i) => isSafeName(n) && n.endsWith(suffixes[i])))) {
    throw new Error(`saveResult: the reserved names do not fit ${audio.length} item(s) with suffixes ${suffixes.join(', ')}`);
  }
  if (!opts.names) opts.signal?.throwIfAborted();
  const names = opts.names ?? reserveOutputs(outputDir, suffixes);
  const at = (name: string): string => path.join(outputDir, name);
  const check = (): void => opts.signal?.throwIfAborted();
  try {
    check();
    const items: JobResultItem[] = [];
    for (let i = 0; i < audio.length; i++) {
      const [wav, spectrogram, waveform, video] = names.slice(i * per, (i + 1) * per);
      const channels = audio[i];
      await writeWav(at(wav), channels, sampleRate);
      check();
      await writePictures(at(spectrogram), at(waveform), channels, sampleRate, check);
      const item: JobResultItem = { audio: wav, spectrogram, waveform };
      if (opts.video && video) {
        await muxVideoWithAudio({
          video: opts.video,
          audioWav: at(wav),
          out: at(video),
          start: opts.secondsStart ?? 0,
          duration: channels[0].length / sampleRate,
          signal: opts.signal,
        });
        check();
        item.video = video;
      }
      items.push(item);
    }
    return items;
  } catch (e) {
    removeOutputs(outputDir, names);
    throw e;
  }
}

/**
 * The spectrogram and waveform PNGs of one item, each written to a temporary next to it and renamed into place
 * (a writer stopped mid-write leaves no partial picture under the final name); `check` runs after each.
 */
export async function writePictures(
  spectrogramFile: string,
  waveformFile: string,
  channels: readonly Float32Array[],
  sampleRate: number,
  check: () => void = () => {},
): Promise<void> {
  await writeAtomically(spectrogramFile, (tmp) => fs.promises.writeFile(tmp, encodePng(renderSpectrogram(channels, sampleRate))));
  check();
  await writeAtomically(waveformFile, (tmp) => fs.promises.writeFile(tmp, encodePng(renderWaveform(channels))));
  check();
}

/**
 * Removes output files by name, with the temporaries writeAtomically may have left next to them
 * (".<stem>.tmp-<pid>-<rand><ext>", e.g. when the writer was stopped mid-write). Names that are not plain
 * file names are ignored.
 */
export function removeOutputs(outputDir: string, names: readonly string[]): void {
  const safe = names.filter(isSafeName);
  if (safe.length === 0) return;
  const stems = safe.map((n) => `.${path.basename(n, path.extname(n))}.tmp-`);
  for (const n of safe) fs.rmSync(path.join(outputDir, n), { force: true });
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(outputDir);
  } catch {
    return;
  }
  for (const e of entries) if (stems.some((s) => e.startsWith(s))) fs.rmSync(path.join(outputDir, e), { force: true });
}

/** Every file name of a result (each item's audio, images and video). */
export function resultFiles(items: readonly JobResultItem[]): string[] {
  return items.flatMap((it) => Object.values(it).filter((v): v is string => typeof v === 'string'));
}
