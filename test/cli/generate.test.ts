// End to end through the real CLI: `audiox generate --model demo …` writes a 16-bit stereo 44.1 kHz WAV of
// the requested length, with --video also an mp4 with one video and one audio stream of that length;
// bad input exits non-zero with a clear message and leaves nothing behind (nor does Ctrl-C).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeStreams } from '../../src/io/mux.ts';
import { readWavHeader } from '../../src/io/wav.ts';
import { listDir, makeEmptyWav, makeImage, makeTone, makeVideo, tempDir } from '../pipeline/media-helpers.ts';
import { runCli, startCli } from './run-cli.ts';

let dir: string;
const media: Record<string, string> = {};

beforeAll(async () => {
  dir = tempDir('cli');
  fs.mkdirSync(path.join(dir, 'in'));
  media.video = await makeVideo(path.join(dir, 'in/clip.mp4'), 3, { sound: true });
  media.image = await makeImage(path.join(dir, 'in/still.png'));
  media.tone = await makeTone(path.join(dir, 'in/tone.wav'), 2);
  media.empty = await makeEmptyWav(path.join(dir, 'in/empty.wav'));
  media.text = path.join(dir, 'in/readme.wav');
  fs.writeFileSync(media.text, 'not audio at all\n'.repeat(50));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function outDir(name: string): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  return d;
}

describe('audiox generate (demo model)', () => {
  it('text → 16-bit stereo 44.1 kHz WAV of --seconds, with a summary', async () => {
    const out = outDir('t2a');
    const r = await runCli(['generate', '--model', 'demo', '--prompt', 'rain on a tin roof', '--seconds', '1.5', '--steps', '4', '--seed', '3', '-o', path.join(out, 'rain.wav')]);
    expect(r.stderr).toMatch(/untrained/);
    expect(r.code).toBe(0);
    const h = readWavHeader(path.join(out, 'rain.wav'));
    expect(h).toMatchObject({ sampleRate: 44100, channels: 2, bitsPerSample: 16, format: 'pcm', numFrames: 66150 });
    expect(h.duration).toBeCloseTo(1.5, 6);
    expect(r.stdout).toMatch(/backend: wasm/);
    expect(r.stdout).toMatch(/seed: 3; sampler: dpmpp-3m-sde, 4 steps, cfg 7/);
    expect(r.stdout).toMatch(/time: [\d.]+ s \(conditioning/);
    expect(r.stdout).toContain(`wrote ${path.join(out, 'rain.wav')}`);
    expect(r.stderr).toMatch(/sampling: step 4\/4/);
    expect(listDir(out)).toEqual(['rain.wav']);
  });

  it('--video → WAV + mp4 (the video re-muxed with the generated audio, cut to the same length)', async () => {
    const out = outDir('v2a');
    const r = await runCli(['generate', '--model', 'demo', '--video', media.video, '--prompt', 'a ticking clock', '--seconds', '2', '--steps', '3', '--no-progress', '-o', path.join(out, 'clip.wav')]);
    expect(r.code).toBe(0);
    expect(listDir(out)).toEqual(['clip.mp4', 'clip.wav']);
    expect(readWavHeader(path.join(out, 'clip.wav'))).toMatchObject({ sampleRate: 44100, channels: 2, numFrames: 88200 });
    const s = await probeStreams(path.join(out, 'clip.mp4'));
    expect(s.videoStreams).toBe(1);
    expect(s.audioStreams).toBe(1);
    expect(s.info.audio?.codec).toBe('aac');
    expect(s.duration).toBeGreaterThan(1.9);
    expect(s.duration).toBeLessThan(2.1);
    expect(r.stdout).toContain(`wrote ${path.join(out, 'clip.mp4')}`);
    expect(r.stderr).not.toMatch(/sampling:/); // --no-progress
  });

  it('inpainting (--init-audio + --inpaint-*, seconds and percent) and --full-length', async () => {
    const out = outDir('inpaint');
    const r = await runCli([
      'generate', '--model', 'demo', '--prompt', 'a bell', '--init-audio', media.tone, '--inpaint-start', '0.5', '--inpaint-end', '12%',
      '--inpaint-softness', '0.1s,2%', '--inpaint-marination', '0.2', '--seconds', '1.5', '--steps', '3', '--no-progress', '-o', path.join(out, 'bell.wav'),
    ]);
    expect(r.stderr).not.toMatch(/audiox:/);
    expect(r.code).toBe(0);
    expect(readWavHeader(path.join(out, 'bell.wav'))).toMatchObject({ channels: 2, numFrames: 66150 });
    const full = await runCli(['generate', '--model', 'demo', '--prompt', 'a bell', '--full-length', '--steps', '2', '--no-progress', '-o', path.join(out, 'full.wav')]);
    expect(full.code).toBe(0);
    expect(readWavHeader(path.join(out, 'full.wav')).numFrames).toBe(215 * 2048); // the whole decoded window
    expect(listDir(out)).toEqual(['bell.wav', 'full.wav']);
  });

  it('help lists every option of the issue with the schema defaults (the AudioX demo\'s)', async () => {
    const r = await runCli(['generate', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--model', '--prompt', '--negative-prompt', '--video', '--image', '--audio', '--seconds-start', '--seconds', '--steps', '--cfg', '--sampler', '--sigma-min', '--sigma-max', '--seed', '--init-audio', '--init-noise-level', '--batch', '--output', '--reference-quirks', '--inpaint-start', '--inpaint-end', '--inpaint-softness', '--inpaint-marination', '--inpaint-crop-from', '--inpaint-paste-from', '--inpaint-paste-to', '--full-length']) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toMatch(/--steps <n>\s+sampling steps \(default: 100\)/);
    expect(r.stdout).toMatch(/--cfg <x>[^\n]*\(default: 7\)/);
    expect(r.stdout).toMatch(/--sampler <name>\s+sampler for v-objective models:\s+dpmpp-3m-sde\s+\(default\)/);
    expect(r.stdout).toMatch(/--sigma-min <x>[^\n]*\(default: 0\.03\)/);
    expect(r.stdout).toMatch(/--sigma-max <x>[^\n]*\(default: 500\)/);
  });
});

describe('bad input: exit code 1, a clear message, no output', () => {
  const cases: [string, string[], RegExp, Record<string, string>?][] = [
    ['missing file', ['--video', 'in/nope.mp4'], /audiox: --video: The media file "in\/nope\.mp4" does not exist/],
    ['not a regular file', ['--audio', 'in'], /audiox: --audio: .*is not a regular file/],
    ['not media', ['--audio', 'in/readme.wav'], /audiox: --audio: .*not a readable audio\/video\/image file|could not open/],
    ['zero-length audio', ['--audio', 'in/empty.wav'], /audiox: --audio: No audio samples decoded/],
    ['video that is sound only', ['--video', 'in/tone.wav'], /audiox: --video: .*has no video stream\. It has only sound: pass it as the --audio/],
    ['image that is a video', ['--image', 'in/clip.mp4'], /audiox: --image: .*is a video, not a still image/],
    ['seek past the end', ['--video', 'in/clip.mp4', '--seconds-start', '8'], /audiox: --video: No video frames decoded/],
    ['seconds out of range', ['--seconds', '0'], /audiox: seconds must be in \(0, 600\], got 0/],
    ['seconds not a number', ['--seconds', 'ten'], /--seconds must be a number, got "ten"/],
    ['unknown sampler', ['--sampler', 'euler-x'], /audiox: unknown sampler "euler-x"; valid: .*dpmpp-3m-sde/],
    ['unknown model', ['--model', 'AudioX-Ultra'], /audiox: unknown model "AudioX-Ultra": use one of demo, AudioX, AudioX-MAF, AudioX-MAF-MMDiT/],
    ['weights absent', ['--model', 'AudioX-MAF'], /audiox: model "AudioX-MAF": .*config\.json is missing\. Run `audiox download AudioX-MAF` first\./, { AUDIOX_HOME: 'empty-home' }], // relative to the test directory
    ['inpainting without init audio', ['--inpaint-start', '0.2', '--inpaint-end', '0.5'], /audiox: inpainting needs init audio/],
    ['inpainting without an end', ['--init-audio', 'in/tone.wav', '--inpaint-start', '0.2'], /audiox: inpainting needs both --inpaint-start and --inpaint-end/],
    ['inpaint position malformed', ['--init-audio', 'in/tone.wav', '--inpaint-start', 'soon', '--inpaint-end', '50%'], /audiox: inpaint start must be a percentage \("25%"\) or seconds/],
    ['inpaint range reversed', ['--init-audio', 'in/tone.wav', '--inpaint-start', '60%', '--inpaint-end', '2'], /audiox: the inpaint end \(.*\) must come after its start/],
    ['output is a directory', ['-o', 'in'], /audiox: Output "in" is a directory; name a file in it/],
    ['output is a device', ['-o', '/dev/full'], /audiox: Output "\/dev\/full" exists and is not a regular file/],
    ['seconds below one latent frame', ['--seconds', '0.00001'], /audiox: seconds must be at least one latent frame \(0\.0464 s for this model\)/],
    ['absurd cfg', ['--cfg', '1e308'], /audiox: cfg scale must be in \[0, 100\], got 1e\+308/],
    ['output directory missing', ['-o', 'no/such/dir/out.wav'], /Output directory .* does not exist/],
  ];

  it('each case', async () => {
    // Relative paths resolve against the test directory (the CLI runs there).
    const runs = cases.map(async ([name, args, re, env]) => {
      const out = outDir(`bad-${name.replace(/\W+/g, '-')}`);
      const full = ['generate', '--model', 'demo', '--prompt', 'x', '--steps', '2', '--seconds', '1', '-o', path.join(out, 'out.wav'), ...args];
      return { name, r: await runCli(full, { cwd: dir, env }), re, out };
    });
    for (const { name, r, re, out } of await Promise.all(runs)) {
      expect.soft(r.code, name).toBe(1);
      expect.soft(r.stderr, name).toMatch(re);
      expect.soft(listDir(out), name).toEqual([]);
    }
  });

  it('Ctrl-C after the last sampling step (during decode / writing), --batch 3: exit 130, no output', async () => {
    const out = outDir('interrupted-late');
    const { child, done } = startCli(['generate', '--model', 'demo', '--prompt', 'x', '--steps', '2', '--seconds', '10', '--batch', '3', '-o', path.join(out, 'out.wav')]);
    let sent = false;
    child.stderr!.on('data', (s: string) => {
      if (!sent && /sampling: step 2\/2/.test(s)) {
        sent = true;
        child.kill('SIGINT'); // lands while the three 10 s items are decoded
      }
    });
    const r = await done;
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(listDir(out)).toEqual([]);
  });

  it('Ctrl-C while sampling stops cleanly: exit 130, no output', async () => {
    const out = outDir('interrupted');
    const { child, done } = startCli(['generate', '--model', 'demo', '--prompt', 'x', '--steps', '400', '--seconds', '1', '-o', path.join(out, 'out.wav')]);
    let sent = false;
    child.stderr!.on('data', (s: string) => {
      if (!sent && /sampling: step/.test(s)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const r = await done;
    expect(sent).toBe(true);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/interrupted/);
    expect(r.stderr).toMatch(/audiox: .*cancel|abort/i);
    expect(listDir(out)).toEqual([]);
  });
});
