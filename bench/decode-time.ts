// Times the video decoding of the AudioX-MAF conditioning phase on a 10 s 320×240 ffmpeg test pattern
// (bench/fullsize-model.ts testVideo): the CLIP branch (5 fps, 50 frames) and the Synchformer branch (25 fps,
// 250 frames) at 224 px, one after the other and both at once.
//
//   npx tsx bench/decode-time.ts [--home DIR] [--runs 3]
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { readVideoFrames } from '../src/io/video.ts';
import { testVideo } from './fullsize-model.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const home = opt('home', path.join(os.tmpdir(), 'audiox-decode'));
fs.mkdirSync(home, { recursive: true });
const file = await testVideo(home);
const clip = () => readVideoFrames(file, { fps: 5, duration: 10, size: 224 });
const sync = () => readVideoFrames(file, { fps: 25, duration: 10, size: 224 });
const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
};
for (let r = 0; r < Number(opt('runs', '3')); r++) {
  const c = await time(clip);
  const s = await time(sync);
  const both = await time(() => Promise.all([clip(), sync()]));
  console.log(`5 fps ${c.toFixed(0)} ms, 25 fps ${s.toFixed(0)} ms, sequential ${(c + s).toFixed(0)} ms; concurrent ${both.toFixed(0)} ms`);
}
