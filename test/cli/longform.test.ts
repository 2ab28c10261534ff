// Long-form generation through the real CLI (issue #19): a 30 s synthetic video with --full-video is made
// window by window (4 windows of the demo model's 9.98 s, 2 s overlap) and re-muxed whole; bad long-form
// requests fail before the model loads and leave nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeStreams } from '../../src/io/mux.ts';
import { readWavHeader } from '../../src/io/wav.ts';
import { listDir, makeVideo, tempDir } from '../pipeline/media-helpers.ts';
import { runCli } from './run-cli.ts';

let dir: string;
let video: string;

beforeAll(async () => {
  dir = tempDir('cli-longform');
  video = await makeVideo(path.join(dir, 'long.mp4'), 30);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('audiox generate: long-form', () => {
  // Slow on a loaded machine: four windows, each conditioned on 10 s of video (CLIP and Synchformer).
  it('--video --full-video: a 30 s soundtrack from 4 windows, and the mp4 re-muxed with all of it', { timeout: 1_200_000 }, async () => {
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const r = await runCli(['generate', '--model', 'demo', '--video', video, '--full-video', '--window-overlap', '2', '--steps', '2', '--seed', '3', '-o', path.join(out, 'long.wav')]);
    expect(r.code, r.stderr).toBe(0);
    expect(listDir(out)).toEqual(['long.mp4', 'long.wav']);
    expect(readWavHeader(path.join(out, 'long.wav'))).toMatchObject({ sampleRate: 44100, channels: 2, numFrames: 30 * 44100 });
    const s = await probeStreams(path.join(out, 'long.mp4'));
    expect(s.videoStreams).toBe(1);
    expect(s.audioStreams).toBe(1);
    expect(s.duration).toBeGreaterThan(29.9);
    expect(s.duration).toBeLessThan(30.1);
    expect(r.stdout).toMatch(/30\.00 s of audio at 44100 Hz from 4 windows/);
    // Progress off a terminal: window i/N, step j/M and an ETA for the whole run.
    for (const w of [1, 2, 3, 4]) expect(r.stderr).toMatch(new RegExp(`window ${w}/4 step \\d/2 \\| run \\d+% \\| ETA \\d+m\\d\\ds`));
  });

  it.each([
    ['--full-video without a video', ['--full-video'], /full video needs a video/],
    ['an overlap of more than half a window', ['--seconds', '30', '--window-overlap', '5.5'], /window overlap must be in \[0\.1, 5\]/],
    ['--window-overlap without long-form', ['--seconds', '5', '--window-overlap', '2'], /--window-overlap applies to long-form generation only/],
    ['a batch', ['--seconds', '30', '--batch', '2'], /use --batch 1/],
    ['seconds beyond the schema', ['--seconds', '601'], /seconds must be in \(0, 600\]/],
  ])('refuses %s before loading the model, leaving nothing', async (_name, args, message) => {
    const out = fs.mkdtempSync(path.join(dir, 'bad-'));
    const r = await runCli(['generate', '--model', 'demo', '--steps', '2', '-o', path.join(out, 'x.wav'), ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/loading model/);
    expect(listDir(out)).toEqual([]);
  });
});
