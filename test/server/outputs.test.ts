// The result pictures (src/server/outputs.ts writePictures): written whole under their final names or not at all.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writePictures } from '../../src/server/outputs.ts';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const tone = (n: number) => Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin(i / 10));

describe('writePictures', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-pictures-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes both PNGs and leaves no temporary behind', async () => {
    const ch = tone(44100);
    await writePictures(path.join(dir, 'a.spectrogram.png'), path.join(dir, 'a.waveform.png'), [ch, ch], 44100);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.spectrogram.png', 'a.waveform.png']);
    for (const f of fs.readdirSync(dir)) expect(fs.readFileSync(path.join(dir, f)).subarray(0, 8)).toEqual(PNG);
  });

  it('stops after the picture where the check throws, and a failed write leaves nothing under either name', async () => {
    const ch = tone(4410);
    const stop = new Error('cancelled');
    await expect(
      writePictures(path.join(dir, 'b.spectrogram.png'), path.join(dir, 'b.waveform.png'), [ch], 44100, () => {
        throw stop;
      }),
    ).rejects.toBe(stop);
    expect(fs.readdirSync(dir)).toEqual(['b.spectrogram.png']); // complete, the waveform never started

    // The final name taken by a directory: the rename fails, the temporary is removed.
    fs.mkdirSync(path.join(dir, 'c.waveform.png'));
    await expect(writePictures(path.join(dir, 'c.spectrogram.png'), path.join(dir, 'c.waveform.png'), [ch], 44100)).rejects.toThrow(/EISDIR|is a directory/);
    expect(fs.readdirSync(dir).filter((f) => f.includes('tmp'))).toEqual([]);
  });
});
