// Generates configs/demo/tokenizer.json: a small T5-style Unigram tokenizer for the demo model
// (no download needed). Vocabulary: special tokens, single characters, and common sound/music
// words, with scores that prefer whole words. Run: npx tsx configs/demo/make-tokenizer.ts
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WORDS = `a an the of and with in on at to from by for is are over under into through while near far
sound sounds audio music song melody rhythm beat beats drum drums piano guitar violin cello bass flute
trumpet saxophone synth synthesizer organ choir voice voices vocal singing sings speech speaking talking
man woman child children people crowd cheering applause laughing laughter crying whisper footsteps
walking running door knock knocking bell bells clock ticking engine car cars truck train plane airplane
helicopter motorcycle siren horn traffic street city rain raining thunder storm wind wave waves ocean sea
water river stream waterfall fire crackling birds bird chirping singing dog barking cat meowing cow horse
insects crickets frog forest jungle night morning calm loud quiet soft gentle heavy fast slow upbeat
happy sad dark bright epic cinematic ambient electronic jazz rock pop classical orchestral folk hip hop
dance techno lofi chill relaxing dramatic tense mysterious playing plays play roof tin glass metal wood
paper typing keyboard phone ringing alarm beep explosion gunshot shot fireworks machine factory kitchen
cooking frying boiling bubbling pouring splash splashing dripping drip hammer hammering saw sawing
drilling tapping clapping whistle whistling humming buzzing roaring growling howling tweeting background
noise echo reverb distant close nearby video audio generated`.split(/\s+/).filter(Boolean);

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789.,!?\'"-:;()&/'.split('');

export function buildTokenizer(): Record<string, unknown> {
  const vocab: [string, number][] = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
    ['▁', -2.5],
  ];
  const seen = new Set(vocab.map(([p]) => p));
  for (const c of CHARS) {
    if (!seen.has(c)) vocab.push([c, -6]);
    seen.add(c);
  }
  for (const w of WORDS) {
    const piece = `▁${w}`;
    if (seen.has(piece)) continue;
    seen.add(piece);
    vocab.push([piece, -4 - w.length * 0.01]);
  }
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const metaspace = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<pad>'), special(1, '</s>'), special(2, '<unk>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFKC' },
        { type: 'Lowercase' },
        { type: 'Strip', strip_left: false, strip_right: true },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: '▁' },
      ],
    },
    pre_tokenizer: metaspace,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: metaspace,
    model: { type: 'Unigram', unk_id: 2, vocab, byte_fallback: false },
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tokenizer.json');
  fs.writeFileSync(out, `${JSON.stringify(buildTokenizer())}\n`);
  console.log(`wrote ${out}`);
}
