import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { normaliseTokenizerJson, PrecompiledCharsmap, TextTokenizer } from '../../src/models/tokenizer.ts';
import { FIXTURES } from '../helpers.ts';

const DIR = path.join(FIXTURES, 'tokenizer');
type Json = Record<string, unknown>;
const readJson = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Json;
const expected = readJson('expected.json') as unknown as {
  texts: string[];
  input_ids: number[][];
  attention_mask: number[][];
  max_length: number;
  details: { spm_ids: number[] }[];
};
const rows = (a: Int32Array, len: number) => Array.from({ length: a.length / len }, (_, i) => Array.from(a.subarray(i * len, (i + 1) * len)));

/** The fixture's tokenizer.json re-serialised in the older layout of the t5-base hub repository. */
function oldLayout(addPrefixSpace: boolean): Json {
  const j = readJson('tokenizer.json');
  const normalizers = (j.normalizer as { normalizers: Json[] }).normalizers;
  const metaspace = { type: 'Metaspace', replacement: '▁', str_rep: '▁', add_prefix_space: addPrefixSpace };
  return {
    ...j,
    normalizer: normalizers.find((n) => n.type === 'Precompiled'),
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, metaspace] },
    decoder: metaspace,
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-tok-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('TextTokenizer on the fixture tokenizer.json', () => {
  const tok = TextTokenizer.fromFile(path.join(DIR, 'tokenizer.json'), path.join(DIR, 'tokenizer_config.json'));

  it('reproduces expected.json exactly (34 strings, max_length 16, truncation keeps </s>, pad 0)', () => {
    expect(expected.texts.length).toBe(34);
    const r = tok.encode(expected.texts, expected.max_length);
    expect(r.shape).toEqual([34, 16]);
    expect(rows(r.inputIds, 16)).toEqual(expected.input_ids);
    expect(rows(r.attentionMask, 16)).toEqual(expected.attention_mask);
  });

  it('matches the untruncated SentencePiece ids + </s>', () => {
    expected.texts.forEach((t, i) => expect(tok.encodeOne(t)).toEqual([...expected.details[i].spm_ids, 1]));
  });

  it('empty prompt → [</s>, pad, …] with one mask bit (quirk 23), always padded to max_length', () => {
    const r = tok.encode(['', 'x'], 128);
    expect(r.shape).toEqual([2, 128]);
    expect(Array.from(r.inputIds.subarray(0, 3))).toEqual([1, 0, 0]);
    expect(r.attentionMask.subarray(0, 128).reduce((a, b) => a + b, 0)).toBe(1);
    expect(tok.padId).toBe(0);
    expect(tok.numSpecialTokens).toBe(1);
  });

  it('truncation to the exact length keeps </s> last', () => {
    const ids = tok.encodeOne(expected.texts[4], 5);
    expect(ids).toHaveLength(5);
    expect(ids[4]).toBe(1);
    expect(tok.encodeOne('', 1)).toEqual([1]);
  });

  it('rejects bad arguments with clear errors', () => {
    expect(() => tok.encode([], 16)).toThrow(/non-empty list/);
    expect(() => tok.encode(['a'], 0)).toThrow(/max_length must be a positive integer/);
    expect(() => tok.encodeOne('a', 0)).toThrow(/no room for 1 special tokens/);
    expect(() => tok.encode([3 as unknown as string], 4)).toThrow(/expected a string/);
  });
});

describe('old t5-base tokenizer.json layout (Metaspace add_prefix_space / str_rep)', () => {
  it('normalises add_prefix_space/str_rep into prepend_scheme/replacement, leaving the input untouched', () => {
    const old = oldLayout(true);
    const fixed = normaliseTokenizerJson(old) as { pre_tokenizer: { pretokenizers: Json[] }; decoder: Json };
    expect(fixed.pre_tokenizer.pretokenizers[1]).toEqual({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always' });
    expect(fixed.decoder).toEqual({ type: 'Metaspace', replacement: '▁', prepend_scheme: 'always' });
    expect((old.decoder as Json).add_prefix_space).toBe(true);
    expect((normaliseTokenizerJson(oldLayout(false)).decoder as Json).prepend_scheme).toBe('never');
  });

  it('loads from a file in that layout and reproduces expected.json', () => {
    const file = path.join(tmp, 'tokenizer.json');
    fs.writeFileSync(file, JSON.stringify(oldLayout(true)));
    const tok = TextTokenizer.fromFile(file); // no tokenizer_config.json: pad id found from the vocabulary
    const r = tok.encode(expected.texts, 16);
    expect(rows(r.inputIds, 16)).toEqual(expected.input_ids);
    expect(rows(r.attentionMask, 16)).toEqual(expected.attention_mask);
    expect(tok.decode(tok.encodeOne('Hello world'))).toBe('Hello world');
  });

  it('add_prefix_space: false is honoured (the library alone would prepend ▁ anyway)', () => {
    const never = new TextTokenizer(oldLayout(false));
    const always = new TextTokenizer(oldLayout(true));
    const modern = oldLayout(false);
    const metaspace = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: true };
    modern.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, metaspace] };
    const a = never.encodeOne('the cat');
    expect(a).not.toEqual(always.encodeOne('the cat'));
    expect(a).toEqual(new TextTokenizer(modern).encodeOne('the cat'));
    expect(never.decode(a)).toBe('thecat'); // no word got a ▁ (WhitespaceSplit removed the spaces)
  });
});

describe('PrecompiledCharsmap (SentencePiece nmt_nfkc)', () => {
  const j = readJson('tokenizer.json') as { normalizer: { normalizers: { precompiled_charsmap?: string }[] } };
  const cm = new PrecompiledCharsmap(j.normalizer.normalizers[0].precompiled_charsmap!);

  it('applies NFKC-style rewrites and whitespace/control rules from the charsmap', () => {
    expect(cm.normalize('ﬁne ﬂour')).toBe('fine flour');
    expect(cm.normalize('Ｆｕｌｌ １２３')).toBe('Full 123');
    expect(cm.normalize('cafe\u0301')).toBe('café');
    expect(cm.normalize('a\tb\u3000c')).toBe('a b c');
    expect(cm.normalize('plain ascii')).toBe('plain ascii');
  });

  it('keeps characters the charsmap has no rule for (unlike a plain NFKC approximation)', () => {
    expect(cm.normalize('\uff5e')).toBe('\uff5e'); // fullwidth tilde: NFKC would give "~"
    expect(cm.normalize('\ua7f2')).toBe('\ua7f2'); // newer than the charsmap's Unicode tables
  });

  it('an empty charsmap is the identity; a malformed one is rejected', () => {
    expect(new PrecompiledCharsmap('').normalize('ﬁ')).toBe('ﬁ');
    expect(() => new PrecompiledCharsmap(Buffer.from([255, 255, 0, 0, 1]).toString('base64'))).toThrow(/malformed/);
  });
});

describe('TextTokenizer: bad files', () => {
  it('missing file → clear error', () => {
    expect(() => TextTokenizer.fromFile(path.join(tmp, 'nope.json'))).toThrow(/cannot read tokenizer.json .*nope\.json.*ENOENT/);
  });
  it('invalid JSON → clear error', () => {
    const f = path.join(tmp, 'bad.json');
    fs.writeFileSync(f, '{"model": ');
    expect(() => TextTokenizer.fromFile(f)).toThrow(/is not valid JSON/);
  });
  it('JSON that is not a tokenizer → clear error', () => {
    const f = path.join(tmp, 'other.json');
    fs.writeFileSync(f, '{"hello": 1}');
    expect(() => TextTokenizer.fromFile(f)).toThrow(/not a Hugging Face tokenizer/);
  });
  it('unsupported post-processor → clear error', () => {
    expect(() => new TextTokenizer({ ...readJson('tokenizer.json'), post_processor: { type: 'BertProcessing' } })).toThrow(
      /unsupported post_processor BertProcessing/,
    );
  });
});
