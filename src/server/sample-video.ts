// The one-click video examples need a video; the reference's example clips are not shipped, so the server
// renders a synthetic 10 s clip once (ffmpeg's testsrc2 pattern, H.264 when available so browsers preview it).
import fs from 'node:fs';
import path from 'node:path';
import { runFfmpeg } from '../io/ffmpeg.ts';
import { listEncoders } from '../io/mux.ts';

const pending = new Map<string, Promise<string>>();

/** Path of `<dir>/sample-video.mp4`, created on first use. */
export function ensureSampleVideo(dir: string): Promise<string> {
  const file = path.join(dir, 'sample-video.mp4');
  let p = pending.get(file);
  if (!p) {
    p = (async () => {
      if (fs.existsSync(file)) return file;
      const enc = await listEncoders();
      const codec = enc.has('libx264') ? ['-c:v', 'libx264', '-preset', 'veryfast'] : ['-c:v', 'mpeg4', '-q:v', '4'];
      const tmp = `${file}.tmp.mp4`;
      await runFfmpeg([
        '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
        '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=10',
        ...codec, '-pix_fmt', 'yuv420p', '-movflags', '+faststart', tmp,
      ]);
      fs.renameSync(tmp, file);
      return file;
    })();
    p.catch(() => pending.delete(file));
    pending.set(file, p);
  }
  return p;
}
