// `media` fixtures: audiox.data.utils.read_video over stored decoded frames (frames_clip at 5 fps,
// frames_sync at 25 fps + sync_transform) and its still-image branch (still_image), through the same
// functions the ffmpeg reader and the pipeline use (src/io/frames.ts), in the reference's mode.
import * as tf from '@tensorflow/tfjs';
import { branchFrameOptions, frameWindow, stillImageFrames, type DecodedVideo } from '../../io/frames.ts';
import { prepareSyncFrames } from '../../models/synchformer/features.ts';
import type { Fixture, Runner, RunnerResult } from '../types.ts';

function num(fx: Fixture, k: string): number {
  const v = fx.args[k];
  if (typeof v !== 'number') throw new Error(`${fx.rel}: args.${k} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function hostU8(fx: Fixture, name: string): { data: Uint8Array; shape: number[] } {
  const t = fx.tensor(name);
  try {
    return { data: Uint8Array.from(t.dataSync()), shape: t.shape };
  } finally {
    t.dispose();
  }
}

function decodedVideo(fx: Fixture): DecodedVideo {
  const { data, shape } = hostU8(fx, 'inputs/frames');
  if (shape.length !== 4 || shape[3] !== 3) throw new Error(`${fx.rel}: inputs/frames must be [N, H, W, 3], got [${shape}]`);
  const fps = fx.tensor('inputs/fps');
  try {
    return { frames: data, N: shape[0], H: shape[1], W: shape[2], fps: fps.dataSync()[0] };
  } finally {
    fps.dispose();
  }
}

/** The fixture's recorded frame_ids must be the selection we make. */
function checkFrameIds(fx: Fixture, got: number[]): void {
  if (!fx.has('intermediates/frame_ids')) return;
  const t = fx.tensor('intermediates/frame_ids');
  const ids = Array.from(t.dataSync());
  t.dispose();
  if (ids.join(',') !== got.join(',')) throw new Error(`frame_ids: we select [${got}], the reference [${ids}]`);
}

async function run(fx: Fixture): Promise<RunnerResult> {
  if (fx.case === 'still_image') {
    const { data, shape } = hostU8(fx, 'inputs/image');
    const [H, W] = shape;
    const f = stillImageFrames(data, H, W, { referenceQuirks: true });
    return { outputs: { clip_frame: tf.tensor(f.clip, [3, 224, 224]), sync_frame: tf.tensor(f.sync, [3, 224, 224]) } };
  }
  const targetFps = num(fx, 'target_fps');
  const win = frameWindow(decodedVideo(fx), {
    seekTime: num(fx, 'seek_time'),
    duration: num(fx, 'duration'),
    targetFps,
    size: 224,
    ...branchFrameOptions(fx.case === 'frames_sync' ? 'sync' : 'clip', true),
  });
  checkFrameIds(fx, win.indices);
  const frames = Int32Array.from(win.frames);
  if (fx.case === 'frames_clip') return { outputs: { video_tensors: tf.tensor(frames, [1, win.T, 3, 224, 224], 'int32') } };
  const syncFrames = tf.tensor(frames, [win.T, 3, 224, 224], 'int32');
  // The first frame as the Synchformer receives it (the production normalisation).
  const first = tf.tidy(() => prepareSyncFrames(syncFrames.slice([0, 0, 0, 0], [1, 3, 224, 224])).reshape([3, 224, 224]));
  return { outputs: { sync_frames: syncFrames, sync_video_first: first } };
}

export const runner: Runner = { component: 'media', run };
