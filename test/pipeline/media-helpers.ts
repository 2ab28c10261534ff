// Small media files for the pipeline and CLI tests, made with ffmpeg's lavfi sources.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFfmpeg } from '../../src/io/ffmpeg.ts';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `audiox-${tag}-`));
}

const quiet = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];

/** A test-pattern video (64×48, 25 fps, mpeg4) of `seconds`, with a 440 Hz tone when `sound`. */
export async function makeVideo(file: string, seconds: number, opts: { sound?: boolean; rate?: number } = {}): Promise<string> {
  const rate = opts.rate ?? 25;
  const sound = opts.sound ? ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=44100:duration=${seconds}`] : [];
  await runFfmpeg([
    ...quiet,
    '-f', 'lavfi', '-i', `testsrc=size=64x48:rate=${rate}:duration=${seconds}`,
    ...sound,
    '-c:v', 'mpeg4', '-q:v', '5',
    ...(opts.sound ? ['-c:a', 'aac', '-shortest'] : []),
    file,
  ]);
  return file;
}

/** A still PNG: a flat colour (r, g, b), 32×24. */
export async function makeImage(file: string, color = '0x804020'): Promise<string> {
  await runFfmpeg([...quiet, '-f', 'lavfi', '-i', `color=c=${color}:size=32x24`, '-frames:v', '1', file]);
  return file;
}

/** A still PNG with a test pattern (ffmpeg testsrc), `size` e.g. '64x48'. */
export async function makePatternImage(file: string, size = '64x48'): Promise<string> {
  await runFfmpeg([...quiet, '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=1`, '-frames:v', '1', file]);
  return file;
}

/** A sine tone WAV (16-bit) at `rate`, `channels`, lasting `seconds`. */
export async function makeTone(file: string, seconds: number, opts: { rate?: number; channels?: number; freq?: number } = {}): Promise<string> {
  const rate = opts.rate ?? 44100;
  await runFfmpeg([
    ...quiet,
    '-f', 'lavfi', '-i', `sine=frequency=${opts.freq ?? 440}:sample_rate=${rate}:duration=${seconds}`,
    '-ac', String(opts.channels ?? 2),
    '-c:a', 'pcm_s16le',
    file,
  ]);
  return file;
}

/** A WAV with a valid header and no samples. */
export async function makeEmptyWav(file: string): Promise<string> {
  await runFfmpeg([...quiet, '-f', 'lavfi', '-i', 'anullsrc=r=44100:cl=stereo', '-frames:a', '0', '-c:a', 'pcm_s16le', file]);
  return file;
}

/** Files in `dir`, hidden temp files included (to prove nothing was left behind). */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
