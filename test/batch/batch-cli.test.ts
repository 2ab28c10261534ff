// `audiox batch` end to end on the demo model: a 12-item manifest (text, a video, an image), a rerun that
// skips everything, a deleted output that redoes exactly one item, bit-identical audio to `audiox
// generate`, a bad item logged to failures.jsonl without stopping the rest, and a manifest with many
// problems rejected as a whole before anything starts.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FailureEntry, ItemRecord } from '../../src/batch/outputs.ts';
import { probeStreams } from '../../src/io/mux.ts';
import { readWavHeader } from '../../src/io/wav.ts';
import { runCli } from '../cli/run-cli.ts';
import { makeImage, makeVideo, tempDir } from '../pipeline/media-helpers.ts';

let dir: string;
const ARGS = ['-m', 'demo', '--steps', '2', '--seconds', '0.5', '--no-progress'];

beforeAll(async () => {
  dir = tempDir('batch');
  fs.mkdirSync(path.join(dir, 'media'));
  await makeVideo(path.join(dir, 'media/clip.mp4'), 2);
  await makeImage(path.join(dir, 'media/still.png'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function mtimes(d: string): Record<string, number> {
  return Object.fromEntries(fs.readdirSync(d).map((f) => [f, fs.statSync(path.join(d, f)).mtimeMs]));
}

describe('audiox batch (demo model)', () => {
  it('12 items; a rerun skips all; a deleted output redoes exactly that item; the audio is generate()’s', async () => {
    const prompts = ['rain', 'a dog barking', 'rain', 'wind', 'a bell', 'footsteps', 'rain', 'birdsong', 'a car', 'applause'];
    const rows: Record<string, unknown>[] = prompts.map((prompt, i) => ({ id: `t${i}`, prompt }));
    rows.push({ id: 'vid', prompt: 'a clock', video: 'media/clip.mp4', secondsStart: 0.5 });
    rows.push({ id: 'img', prompt: 'a clock', image: 'media/still.png', seed: 42, cfgScale: 3 });
    const manifest = path.join(dir, 'set.jsonl');
    fs.writeFileSync(manifest, rows.map((r) => JSON.stringify(r)).join('\n'));
    const out = path.join(dir, 'out');

    // With progress (not a terminal here: a line per item).
    const r1 = await runCli(['batch', manifest, '-o', out, ...ARGS.filter((a) => a !== '--no-progress')]);
    expect(r1.stderr).not.toMatch(/audiox:|FAILED/);
    expect(r1.code).toBe(0);
    expect(r1.stderr).toMatch(/12 items in .*: 0 already complete in .*, 12 to generate/);
    expect(r1.stderr).toMatch(/batch: 12 generated, 0 skipped, 0 failed in \d+:\d\d, \d+ items\/h/);
    expect(r1.stderr).toMatch(/batch: 12\/12 \(0 failed\) \| \d+ items\/h \| ETA 0:00/);
    const ids = rows.map((r) => r.id as string);
    const expected = [...ids.flatMap((id) => [`${id}.json`, `${id}.wav`]), 'vid.mp4'].sort();
    expect(fs.readdirSync(out).sort()).toEqual(expected); // no temp files, no failures.jsonl

    const rec = (id: string) => JSON.parse(fs.readFileSync(path.join(out, `${id}.json`), 'utf8')) as ItemRecord;
    expect(rec('img')).toMatchObject({ id: 'img', model: 'demo', backend: 'wasm', seed: 42, seconds: 0.5, outputs: { wav: { file: 'img.wav' } } });
    expect(rec('img').params).toMatchObject({ cfgScale: 3, steps: 2, image: path.join(dir, 'media/still.png') });
    // Derived seeds differ per id; the repeated prompt's text conditioning is reused.
    expect(rec('t0').seed).not.toBe(rec('t2').seed);
    expect(rec('t2').reusedConditioning).toContain('text_prompt');
    expect(rec('t0').reusedConditioning).not.toContain('text_prompt');
    expect(readWavHeader(path.join(out, 't5.wav'))).toMatchObject({ sampleRate: 44100, channels: 2, numFrames: 22050 });
    const mp4 = await probeStreams(path.join(out, 'vid.mp4'));
    expect([mp4.videoStreams, mp4.audioStreams]).toEqual([1, 1]);

    // A rerun finds everything complete and touches nothing.
    const before = mtimes(out);
    const r2 = await runCli(['batch', manifest, '-o', out, ...ARGS]);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toMatch(/12 items in .*: 12 already complete in .*, 0 to generate/);
    expect(r2.stderr).not.toMatch(/loading model/);
    expect(mtimes(out)).toEqual(before);

    // One output gone: exactly that item is redone, to the same bytes.
    const t7 = fs.readFileSync(path.join(out, 't7.wav'));
    fs.rmSync(path.join(out, 't7.wav'));
    const r3 = await runCli(['batch', manifest, '-o', out, ...ARGS]);
    expect(r3.code).toBe(0);
    expect(r3.stderr).toMatch(/11 already complete in .*, 1 to generate/);
    const after = mtimes(out);
    const changed = Object.keys(after).filter((f) => after[f] !== before[f]).sort();
    expect(changed).toEqual(['t7.json', 't7.wav']);
    expect(fs.readFileSync(path.join(out, 't7.wav')).equals(t7)).toBe(true);

    // `audiox generate` with the recorded seed gives the very same file.
    const g = await runCli(['generate', '-m', 'demo', '-p', 'rain', '--seed', String(rec('t6').seed), '--steps', '2', '--seconds', '0.5', '--no-progress', '-o', path.join(dir, 'g.wav')]);
    expect(g.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'g.wav')).equals(fs.readFileSync(path.join(out, 't6.wav')))).toBe(true);
  });

  it('a bad item fails into failures.jsonl with its message; the others complete; exit code 1', async () => {
    fs.writeFileSync(path.join(dir, 'media/notes.wav'), 'not audio at all\n'.repeat(20));
    const manifest = path.join(dir, 'some.csv');
    fs.writeFileSync(manifest, 'id,prompt,audio\nok1,"rain, heavy",\nbroken,a tone,media/notes.wav\nok2,"a ""quoted"" bell",\n');
    const out = path.join(dir, 'some');
    const r = await runCli(['batch', manifest, '-o', out, ...ARGS]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/batch: 2 generated, 0 skipped, 1 failed/);
    expect(r.stderr).toMatch(/failed broken \(row 3\): audio: /);
    expect(fs.readdirSync(out).sort()).toEqual(['failures.jsonl', 'ok1.json', 'ok1.wav', 'ok2.json', 'ok2.wav']);
    const failures = fs.readFileSync(path.join(out, 'failures.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as FailureEntry);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ id: 'broken', row: 3 });
    expect(failures[0].error).toMatch(/^audio: .*notes\.wav/);
    const ok2 = JSON.parse(fs.readFileSync(path.join(out, 'ok2.json'), 'utf8')) as ItemRecord;
    expect(ok2.params.prompt).toBe('a "quoted" bell');
  });

  it('an invalid manifest is rejected as a whole, every problem with its row, before anything starts', async () => {
    const manifest = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(
      manifest,
      [
        '{"id":"a","prompt":"x"}',
        '{"id":"a","prompt":"y"}',
        '{"id":"b","video":"media/missing.mp4"}',
        '{"id":"c","steps":"many"}',
        '{"id":"d","seconds_total":3}',
        'oops',
        '{"id":"e/f"}',
        '{"id":"g","secondsTotal":30}',
      ].join('\n'),
    );
    const out = path.join(dir, 'never');
    const r = await runCli(['batch', manifest, '-o', out, ...ARGS]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has 7 problems; nothing was started/);
    for (const line of [
      /row 2: duplicate id "a" \(first on row 1\)/,
      /row 3: video "media\/missing.mp4" not found/,
      /row 4: steps must be a number, got "many"/,
      /row 5: unknown field "seconds_total" \(did you mean "secondsTotal"\?\)/,
      /row 6: not valid JSON/,
      /row 7: id "e\/f" is not safe as a file name/,
      /row 8: seconds must be in \(0, 10.00\] for this model/,
    ]) {
      expect(r.stderr).toMatch(line);
    }
    expect(r.stderr).not.toMatch(/loading model/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--help lists the manifest, output and default options', async () => {
    const r = await runCli(['batch', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['<manifest>', '--model', '--out', '--overwrite', '--seed', '--steps', '--seconds', '--no-progress']) expect(r.stdout).toContain(flag);
  });

  it('the queue commands have --help too (no Redis needed)', async () => {
    const q = await runCli(['queue', '--help']);
    for (const sub of ['submit', 'status', 'retry-failed', 'drain']) expect(q.stdout).toContain(sub);
    const w = await runCli(['worker', '--help']);
    for (const flag of ['--redis', '--model', '--concurrency', '--lock-duration', '--stalled-interval', '--max-stalled', '--grace']) expect(w.stdout).toContain(flag);
    const bad = await runCli(['queue', 'status', '--redis', 'http://nowhere']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--redis "http:\/\/nowhere" must start with redis:\/\//);
  });
});
