// Manifests: JSONL and CSV rows → resolved items (defaults, absolute media paths, seeds), and the
// whole-manifest validation that reports every problem with its row at once.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../src/batch/csv.ts';
import { ITEM_DEFAULTS, deriveSeed, flagsAsFields } from '../../src/batch/item.ts';
import { ManifestError, parseManifest, readManifest } from '../../src/batch/manifest.ts';
import { jobIdFor } from '../../src/queue/connection.ts';
import { tempDir } from '../pipeline/media-helpers.ts';

let dir: string;
const DEMO = { name: 'demo', maxSeconds: 10, minSeconds: 2048 / 44100 };

beforeAll(() => {
  dir = tempDir('manifest');
  fs.mkdirSync(path.join(dir, 'media'));
  fs.writeFileSync(path.join(dir, 'media/a.wav'), 'x');
  fs.writeFileSync(path.join(dir, 'media/empty.wav'), '');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function problems(text: string, format: 'jsonl' | 'csv' = 'jsonl'): string[] {
  try {
    parseManifest(text, { file: path.join(dir, `m.${format}`), format, limits: DEMO });
  } catch (e) {
    expect(e).toBeInstanceOf(ManifestError);
    return (e as ManifestError).problems.map((p) => `${p.row}: ${p.message}`);
  }
  throw new Error('expected a ManifestError');
}

describe('manifest rows → items', () => {
  it('JSONL: row fields over --defaults over the generate defaults; media relative to the manifest; seeds', () => {
    fs.writeFileSync(
      path.join(dir, 'a.jsonl'),
      ['# a comment', '{"id":"one","prompt":"rain","steps":5}', '', '{"id":"two","audio":"media/a.wav","seed":7,"inpaintStart":1,"inpaintEnd":"50%","initAudio":"media/a.wav"}', '{"id":3}'].join('\n'),
    );
    const items = readManifest(path.join(dir, 'a.jsonl'), { defaults: { steps: 9, cfgScale: 2, secondsTotal: undefined }, seed: 11 });
    expect(items.map((i) => [i.id, i.row])).toEqual([['one', 2], ['two', 4], ['3', 5]]);
    expect(items[0].options).toEqual({ ...ITEM_DEFAULTS, steps: 5, cfgScale: 2, prompt: 'rain', seed: deriveSeed(11, 'one') });
    expect(items[1].options).toMatchObject({ steps: 9, seed: 7, audio: path.join(dir, 'media/a.wav'), inpaintStart: '1', inpaintEnd: '50%' });
    // Derived seeds: stable, per id, per base seed.
    expect(deriveSeed(11, 'one')).toBe(deriveSeed(11, 'one'));
    expect(deriveSeed(11, 'one')).not.toBe(deriveSeed(12, 'one'));
    expect(deriveSeed(11, 'one')).not.toBe(deriveSeed(11, 'onf'));
    expect(deriveSeed(0, 'x')).toBeGreaterThanOrEqual(0);
    expect(deriveSeed(0, 'x')).toBeLessThan(2 ** 32);
  });

  it('CSV: a header row, quoted cells (commas, quotes, newlines), empty cells unset, booleans and numbers', () => {
    const text = '\ufeffid,prompt,secondsTotal,fullLength\r\na,"rain, heavy",2.5,yes\r\nb,"a ""quoted""\nprompt",,false\r\n\r\nc,,,\r\n';
    const items = parseManifest(text, { file: path.join(dir, 'x.csv'), limits: DEMO });
    expect(items.map((i) => [i.id, i.row])).toEqual([['a', 2], ['b', 3], ['c', 6]]);
    expect(items[0].options).toMatchObject({ prompt: 'rain, heavy', secondsTotal: 2.5, fullLength: true });
    expect(items[1].options).toMatchObject({ prompt: 'a "quoted"\nprompt', fullLength: false });
    expect(items[1].options.secondsTotal).toBeUndefined();
    expect(items[2].options.prompt).toBeUndefined();
    expect(() => parseCsv('a,b\n1,"x"y\n')).toThrow(/line 2: unexpected character after a closing quote/);
  });
});

describe('manifest validation: every problem at once, with its row', () => {
  it('JSONL', () => {
    const got = problems(
      [
        '{"id":"a","prompt":"x"}',
        '{"id":"a"}',
        '{"id":"A"}',
        '{"prompt":"no id"}',
        '{"id":"../up"}',
        '{"id":"b","negative_prompt":"x","batchSize":2,"model":"AudioX"}',
        '{"id":"c","steps":2.5,"cfgScale":"high","fullLength":"maybe","prompt":3}',
        '{"id":"d","video":"media/nope.mp4","audio":"media/empty.wav","image":"media"}',
        '{"id":"e","secondsTotal":11}',
        '{"id":"f","seed":-1}',
        '{"id":"g","inpaintStart":"10%"}',
        '[1,2]',
        '{"id":"h",',
        '{"id":"i","video":"media/a.wav","image":"media/a.wav"}',
      ].join('\n'),
    );
    expect(got).toEqual([
      '2: duplicate id "a" (first on row 1)',
      '3: id "A" clashes with "a" (row 1) on case-insensitive file systems',
      '4: has no id (every row needs a unique "id", used as its file name)',
      '5: id "../up" is not safe as a file name: use letters, digits, ".", "_" and "-", starting with a letter or digit, at most 128 characters',
      expect.stringMatching(/^6: unknown field "negative_prompt" \(did you mean "negativePrompt"\?\)/),
      '6: unknown field "batchSize": one row is one output; repeat the row with other ids instead',
      '6: unknown field "model": the model is chosen for the whole batch (--model)',
      '7: steps must be an integer, got 2.5',
      '7: cfgScale must be a number, got "high"',
      '7: fullLength must be true or false, got "maybe"',
      '7: prompt must be a string, got 3',
      expect.stringMatching(/^8: video "media\/nope.mp4" not found \(looked for .*media\/nope.mp4\)$/),
      '8: audio "media/empty.wav" is empty',
      '8: image "media" is not a regular file',
      '9: seconds must be in (0, 10.00] for this model (sample_size / sample_rate), got 11',
      '10: seed -1 (random) cannot be reproduced; leave the seed out to derive one from --seed and the id',
      '11: inpainting needs both inpaintStart and inpaintEnd (and initAudio)',
      '12: a row must be a JSON object like {"id": "a", "prompt": "…"}',
      expect.stringMatching(/^13: not valid JSON/),
      '14: give either a video or an image, not both',
    ]);
  });

  it('CSV: header problems once, ragged rows, an unclosed quote', () => {
    expect(problems('id,prompt,prompt,colour\na,x,y,red\n', 'csv')).toEqual([
      '1: column "prompt" appears twice in the header',
      expect.stringMatching(/^1: unknown field "colour"; known: id, prompt/),
    ]);
    expect(problems('prompt\nx\n', 'csv')).toEqual(['1: the header has no "id" column', '2: has no id (every row needs a unique "id", used as its file name)']);
    expect(problems('id,prompt\na,x,extra\nb,"open\n', 'csv')).toEqual(['3: a quoted cell is never closed']);
    expect(problems('id,prompt\na,x,extra\nb,y\n', 'csv')).toEqual(['2: has 3 cells, the header has 2']);
  });

  it('an empty manifest, an unreadable one, and a capped message', () => {
    expect(problems('\n# nothing\n')).toEqual(['0: the manifest has no items']);
    expect(() => readManifest(path.join(dir, 'missing.jsonl'))).toThrow(/cannot read the manifest/);
    const many = Array.from({ length: 60 }, (_, i) => `{"id":"x${i}","steps":0}`).join('\n');
    let err: ManifestError | undefined;
    try {
      parseManifest(many, { file: 'many.jsonl', limits: DEMO });
    } catch (e) {
      err = e as ManifestError;
    }
    expect(err?.problems).toHaveLength(60);
    expect(err?.message).toMatch(/has 60 problems; nothing was started/);
    expect(err?.message).toMatch(/… and 10 more$/);
  });

  it('CLI flag names in messages become field names; integer-looking ids get a job id BullMQ accepts', () => {
    expect(flagsAsFields('--init-audio: missing; see --seconds and --cfg, not --frobnicate')).toBe('initAudio: missing; see secondsTotal and cfgScale, not --frobnicate');
    expect(jobIdFor('17')).toBe('#17');
    expect(jobIdFor('017')).toBe('017');
    expect(jobIdFor('a17')).toBe('a17');
  });
});
