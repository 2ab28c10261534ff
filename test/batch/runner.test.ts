// The item runner on the demo model, in process: reused conditioning gives the same audio as a plain
// generate(), leaks no tensors, complete items are skipped and incomplete ones redone (stale temp files
// removed), and a failure or a cancellation leaves nothing of the item behind.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateOptions } from '../../src/cli/commands/generate.ts';
import { ITEM_DEFAULTS, toCliOptions, type BatchItem, type ItemOptions } from '../../src/batch/item.ts';
import { readCompleteRecord } from '../../src/batch/outputs.ts';
import { ItemRunner } from '../../src/batch/runner.ts';
import { MediaError } from '../../src/io/ffmpeg.ts';
import { writeWav } from '../../src/io/wav.ts';
import type { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { generate } from '../../src/pipeline/generate.ts';
import { isBadInput } from '../../src/queue/retry-policy.ts';
import { listDir, makeImage, tempDir } from '../pipeline/media-helpers.ts';

let dir: string;
let model: AudioXModel;
let runner: ItemRunner;
let still: string;

function item(id: string, o: Partial<ItemOptions>): BatchItem {
  return { id, row: 1, options: { ...ITEM_DEFAULTS, steps: 2, secondsTotal: 0.3, seed: 1, ...o } };
}

beforeAll(async () => {
  dir = tempDir('runner');
  still = await makeImage(path.join(dir, 'still.png'));
  fs.mkdirSync(path.join(dir, 'out'));
  model = await loadModel('demo');
  runner = new ItemRunner(model, 'demo');
  // The model makes a couple of tensors it keeps on its first generation; count from after that.
  await generate(model, { prompt: 'warm-up', steps: 1, secondsTotal: 0.1, seed: 0 });
});

afterAll(() => {
  runner?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ItemRunner (demo model)', () => {
  it('reuses text and video conditioning across items, bit-identical to generate() without it, no leaks', async () => {
    const out = path.join(dir, 'out');
    const items = [
      item('a', { prompt: 'rain', seed: 1 }),
      item('b', { prompt: 'rain', seed: 2 }),
      item('c', { prompt: 'x', image: still, seed: 3 }),
      item('d', { prompt: 'y', image: still, seed: 4 }),
    ];
    const before = tf.memory().numTensors;
    const reused: Record<string, string[]> = {};
    for (const it of items) {
      const r = await runner.run(it, out);
      expect(r.status).toBe('done');
      reused[it.id] = r.record.reusedConditioning;
    }
    expect(reused).toEqual({ a: [], b: ['video_prompt', 'text_prompt'], c: [], d: ['video_prompt'] });
    expect(runner.cache.stats).toEqual({ hits: 3, misses: 5 });
    for (const it of items) {
      const plain = await generate(model, generateOptions(toCliOptions(it, 'demo')));
      const ref = path.join(dir, `${it.id}-plain.wav`);
      await writeWav(ref, plain.audio[0], plain.sampleRate);
      expect(fs.readFileSync(path.join(out, `${it.id}.wav`)).equals(fs.readFileSync(ref)), it.id).toBe(true);
    }
    runner.cache.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('skips complete items; redoes an item whose output was truncated, removing stale temp files', async () => {
    const out = path.join(dir, 'out');
    const a = item('a', { prompt: 'rain', seed: 1 });
    expect((await runner.run(a, out)).status).toBe('skipped');
    const bytes = fs.readFileSync(path.join(out, 'a.wav'));
    fs.truncateSync(path.join(out, 'a.wav'), 100);
    fs.writeFileSync(path.join(out, '.a.tmp-123-abc.wav'), 'left by a killed writer');
    fs.writeFileSync(path.join(out, '.ab.tmp-123-abc.wav'), 'another item’s');
    expect(readCompleteRecord(out, 'a')).toBeNull();
    expect((await runner.run(a, out)).status).toBe('done');
    expect(fs.readFileSync(path.join(out, 'a.wav')).equals(bytes)).toBe(true);
    expect(fs.existsSync(path.join(out, '.a.tmp-123-abc.wav'))).toBe(false);
    expect(fs.existsSync(path.join(out, '.ab.tmp-123-abc.wav'))).toBe(true);
    expect((await runner.run(a, out, { overwrite: true })).status).toBe('done');
  });

  it('bad input fails with a message naming the manifest field, and leaves nothing; so does a cancellation', async () => {
    const out = path.join(dir, 'fail');
    fs.mkdirSync(out);
    const notAudio = path.join(dir, 'notes.wav');
    fs.writeFileSync(notAudio, 'not audio\n'.repeat(30));
    const err = await runner.run(item('bad', { audio: notAudio }), out).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^audio: /);
    expect(isBadInput(err)).toBe(true);
    const ac = new AbortController();
    const cancelled = await runner
      .run(item('stop', { prompt: 'rain', steps: 6 }), out, { signal: ac.signal, onProgress: (s) => s === 2 && ac.abort() })
      .catch((e: Error) => e);
    expect((cancelled as Error).name).toBe('AbortError');
    expect(isBadInput(cancelled)).toBe(false);
    expect(listDir(out)).toEqual([]);
    // Transient: retried by the queue.
    expect(isBadInput(new Error('EIO: i/o error'))).toBe(false);
    expect(isBadInput(new MediaError('FFMPEG_FAILED', 'ffmpeg crashed'))).toBe(false);
    expect(isBadInput(new MediaError('FILE_NOT_FOUND', 'gone'))).toBe(true);
  });
});
