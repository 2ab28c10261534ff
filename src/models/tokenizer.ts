// Text tokenizer for T5Conditioner: a Hugging Face `tokenizer.json` run by `@huggingface/tokenizers`,
// plus what `tokenizer(texts, truncation=True, max_length=L, padding="max_length")` adds on top:
// truncation that keeps the template's special tokens (T5: `</s>` last) and right-padding to L.
//
// `@huggingface/tokenizers` 0.2 ignores the `Precompiled` normalizer's charsmap and approximates it
// with NFKC plus a few hand-written rules; SentencePiece tokenizers (T5) are normalised by that charsmap
// (`nmt_nfkc`), so it is interpreted here exactly as the Rust `tokenizers` crate does and swapped in.
import fs from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

/** Batch of token ids, row-major [batch, length]. */
export interface TokenizedBatch {
  inputIds: Int32Array;
  /** 1 on real tokens (incl. `</s>`), 0 on padding. */
  attentionMask: Int32Array;
  shape: [number, number];
}

type Json = Record<string, unknown>;

/** One element of a TemplateProcessing `single` template. */
type TemplatePiece = { kind: 'sequence' } | { kind: 'special'; ids: number[] };

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Rewrites the older serialisation of a Metaspace pre-tokenizer/decoder (as in the t5-base hub repo:
 * `{"type": "Metaspace", "replacement": "▁", "str_rep": "▁", "add_prefix_space": true}`) into the
 * current one (`prepend_scheme`), which is the only form `@huggingface/tokenizers` reads: it ignores
 * `add_prefix_space` and would always prepend. Mirrors the Rust crate's own legacy deserialiser.
 * Returns a new object; the input is not modified.
 */
export function normaliseTokenizerJson(json: Json): Json {
  const fix = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(fix);
    if (!isObject(node)) return node;
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'vocab' || k === 'precompiled_charsmap' ? v : fix(v);
    if (out.type === 'Metaspace') {
      if (out.replacement === undefined && typeof out.str_rep === 'string') out.replacement = out.str_rep;
      if (out.prepend_scheme === undefined && typeof out.add_prefix_space === 'boolean') {
        out.prepend_scheme = out.add_prefix_space ? 'always' : 'never';
      }
      delete out.str_rep;
      delete out.add_prefix_space;
    }
    return out;
  };
  const fixed = { ...json };
  for (const key of ['pre_tokenizer', 'decoder'] as const) if (key in fixed) fixed[key] = fix(fixed[key]);
  return fixed;
}

/**
 * SentencePiece's `precompiled_charsmap`: u32 LE trie size, a darts-clone double-array trie over UTF-8
 * bytes whose values are offsets into a pool of NUL-terminated replacement strings. Applied like HF's
 * `spm_precompiled`: per extended grapheme cluster (if shorter than 6 bytes) else per code point, the
 * chunk is replaced by the value of the SHORTEST trie key that prefixes it (that is what SentencePiece
 * and the Rust crate do, odd as it is), or kept when no key matches.
 */
export class PrecompiledCharsmap {
  private readonly trie: Uint32Array;
  private readonly pool: Uint8Array;
  private readonly cache = new Map<string, string | null>();
  private static readonly encoder = new TextEncoder();
  private static readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private static readonly graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

  constructor(base64: string) {
    const raw = Buffer.from(base64, 'base64');
    if (raw.length === 0) {
      this.trie = new Uint32Array(0);
      this.pool = new Uint8Array(0);
      return;
    }
    const trieBytes = raw.length >= 4 ? raw.readUInt32LE(0) : -1;
    if (trieBytes < 0 || trieBytes % 4 !== 0 || 4 + trieBytes > raw.length) {
      throw new Error(`precompiled_charsmap is malformed (trie size ${trieBytes}, ${raw.length} bytes)`);
    }
    this.trie = new Uint32Array(trieBytes / 4);
    for (let i = 0; i < this.trie.length; i++) this.trie[i] = raw.readUInt32LE(4 + 4 * i);
    this.pool = new Uint8Array(raw.subarray(4 + trieBytes));
  }

  /** Pool offset of the shortest trie key that is a prefix of `key`, or -1. */
  private firstPrefixValue(key: Uint8Array): number {
    const a = this.trie;
    if (!a.length) return -1;
    const offset = (u: number) => (u >>> 10) << ((u & (1 << 9)) >>> 6);
    let pos = offset(a[0]);
    for (const c of key) {
      if (c === 0) break;
      pos ^= c;
      const unit = a[pos];
      if (unit === undefined || (unit & ((1 << 31) | 0xff)) >>> 0 !== c) return -1;
      pos ^= offset(unit);
      if ((unit >>> 8) & 1) return (a[pos] ?? 0) & 0x7fffffff;
    }
    return -1;
  }

  /** The replacement of a chunk, or null when no rule applies. */
  transform(chunk: string): string | null {
    let hit = this.cache.get(chunk);
    if (hit !== undefined) return hit;
    const start = this.firstPrefixValue(PrecompiledCharsmap.encoder.encode(chunk));
    if (start < 0) hit = null;
    else {
      let end = start;
      while (end < this.pool.length && this.pool[end] !== 0) end++;
      hit = PrecompiledCharsmap.decoder.decode(this.pool.subarray(start, end));
    }
    this.cache.set(chunk, hit);
    return hit;
  }

  normalize(text: string): string {
    let out = '';
    for (const { segment } of PrecompiledCharsmap.graphemes.segment(text)) {
      const whole = Buffer.byteLength(segment, 'utf8') < 6 ? this.transform(segment) : null;
      if (whole !== null) {
        out += whole;
        continue;
      }
      for (const ch of segment) out += this.transform(ch) ?? ch;
    }
    return out;
  }
}

/** The parts of the library's normalizer objects used here (its type exports do not resolve under NodeNext). */
interface LibNormalizer {
  config?: { type?: string; precompiled_charsmap?: unknown };
  normalizers?: (LibNormalizer | null)[];
  normalize(text: string): string;
}

/** Points every `Precompiled` normalizer of a loaded tokenizer at the charsmap interpreter. */
function installCharsmaps(tok: Tokenizer): void {
  const visit = (n: LibNormalizer | null | undefined): void => {
    if (!n) return;
    if (n.config?.type === 'Precompiled') {
      const map = n.config.precompiled_charsmap;
      const charsmap = new PrecompiledCharsmap(typeof map === 'string' ? map : '');
      n.normalize = (text) => charsmap.normalize(text);
    }
    n.normalizers?.forEach(visit);
  };
  visit(tok.normalizer as unknown as LibNormalizer | null);
}

function parseTemplate(json: Json): TemplatePiece[] {
  const pp = json.post_processor;
  if (pp === null || pp === undefined) return [{ kind: 'sequence' }];
  if (!isObject(pp) || pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) {
    throw new Error(`tokenizer.json: unsupported post_processor ${isObject(pp) ? String(pp.type) : typeof pp} (expected TemplateProcessing)`);
  }
  const specials = isObject(pp.special_tokens) ? pp.special_tokens : {};
  return pp.single.map((item: unknown): TemplatePiece => {
    if (isObject(item) && 'Sequence' in item) return { kind: 'sequence' };
    const sp = isObject(item) && isObject(item.SpecialToken) ? item.SpecialToken : null;
    const def = sp && typeof sp.id === 'string' ? specials[sp.id] : undefined;
    if (!isObject(def) || !Array.isArray(def.ids)) throw new Error(`tokenizer.json: bad TemplateProcessing item ${JSON.stringify(item)}`);
    return { kind: 'special', ids: def.ids.map(Number) };
  });
}

function findPadId(json: Json, config: Json, tok: Tokenizer): number {
  const padding = json.padding;
  if (isObject(padding) && typeof padding.pad_id === 'number') return padding.pad_id;
  const padToken = typeof config.pad_token === 'string' ? config.pad_token : '<pad>';
  const id = tok.token_to_id(padToken);
  if (id === undefined) throw new Error(`tokenizer: pad token "${padToken}" is not in the vocabulary`);
  return id;
}

export class TextTokenizer {
  private readonly tok: Tokenizer;
  private readonly template: TemplatePiece[];
  readonly padId: number;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}) {
    if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) {
      throw new Error('tokenizer.json: not a Hugging Face tokenizer (no "model" object)');
    }
    const json = normaliseTokenizerJson(tokenizerJson);
    try {
      this.tok = new Tokenizer(json, tokenizerConfig);
    } catch (e) {
      throw new Error(`tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    installCharsmaps(this.tok);
    this.template = parseTemplate(json);
    this.padId = findPadId(json, tokenizerConfig, this.tok);
  }

  /** Reads `tokenizer.json` (and the optional `tokenizer_config.json`). */
  static fromFile(tokenizerJsonPath: string, tokenizerConfigPath?: string): TextTokenizer {
    const read = (p: string, what: string): Json => {
      let text: string;
      try {
        text = fs.readFileSync(p, 'utf8');
      } catch (e) {
        throw new Error(`cannot read ${what} "${p}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      try {
        const v = JSON.parse(text) as unknown;
        if (!isObject(v)) throw new Error('not a JSON object');
        return v;
      } catch (e) {
        throw new Error(`${what} "${p}" is not valid JSON: ${(e as Error).message}`);
      }
    };
    const config = tokenizerConfigPath && fs.existsSync(tokenizerConfigPath) ? read(tokenizerConfigPath, 'tokenizer config') : {};
    return new TextTokenizer(read(tokenizerJsonPath, 'tokenizer.json'), config);
  }

  /** Number of special tokens the template adds around one sequence (T5: 1, the trailing `</s>`). */
  get numSpecialTokens(): number {
    return this.template.reduce((n, p) => n + (p.kind === 'special' ? p.ids.length : 0), 0);
  }

  /** Token ids of one text with the special tokens, truncated to `maxLength` (specials are kept). */
  encodeOne(text: string, maxLength = Infinity): number[] {
    if (typeof text !== 'string') throw new Error(`tokenizer: expected a string, got ${typeof text}`);
    const room = maxLength - this.numSpecialTokens;
    if (room < 0) throw new Error(`tokenizer: max_length ${maxLength} leaves no room for ${this.numSpecialTokens} special tokens`);
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids.slice(0, room);
    return this.template.flatMap((p) => (p.kind === 'sequence' ? ids : p.ids));
  }

  /** `tokenizer(texts, truncation=True, max_length=maxLength, padding="max_length")`. */
  encode(texts: string[], maxLength: number): TokenizedBatch {
    if (!Array.isArray(texts) || texts.length === 0) throw new Error('tokenizer: expected a non-empty list of strings');
    if (!Number.isInteger(maxLength) || maxLength <= 0) throw new Error(`tokenizer: max_length must be a positive integer, got ${maxLength}`);
    const inputIds = new Int32Array(texts.length * maxLength).fill(this.padId);
    const attentionMask = new Int32Array(texts.length * maxLength);
    texts.forEach((t, b) => {
      const ids = this.encodeOne(t, maxLength);
      inputIds.set(ids, b * maxLength);
      attentionMask.fill(1, b * maxLength, b * maxLength + ids.length);
    });
    return { inputIds, attentionMask, shape: [texts.length, maxLength] };
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    return this.tok.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }
}
