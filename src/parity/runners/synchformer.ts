// `synchformer` fixtures: FeaturesUtils.encode_video_with_sync(video [B, T, 3, 224, 224]) → features [B, S·8, D].
// The video is inputs/video, or inputs/frame [3, 224, 224] repeated args.n_frames times (a still image).
import * as tf from '@tensorflow/tfjs';
import { Synchformer, type SynchformerVitOverrides } from '../../models/synchformer/synchformer.ts';
import { encodeVideoWithSync } from '../../models/synchformer/features.ts';
import type { Fixture, Runner, RunnerResult } from '../types.ts';

function stillVideo(fx: Fixture, n: number | undefined): tf.Tensor {
  if (!fx.has('inputs/frame')) throw new Error(`${fx.rel}: needs inputs/video, or inputs/frame with args.n_frames`);
  if (!n || !Number.isInteger(n) || n < 1) throw new Error(`${fx.rel}: args.n_frames must be a positive integer, got ${n}`);
  const frame = fx.tensor('inputs/frame');
  try {
    return tf.tidy(() => tf.tile(frame.expandDims(0).expandDims(0), [1, n, 1, 1, 1]));
  } finally {
    frame.dispose();
  }
}

async function run(fx: Fixture): Promise<RunnerResult> {
  const model = Synchformer.fromVitOverrides((fx.config.VIT_overrides ?? {}) as SynchformerVitOverrides);
  const num = (k: string) => (typeof fx.args[k] === 'number' ? (fx.args[k] as number) : undefined);
  const video = fx.has('inputs/video') ? fx.tensor('inputs/video') : stillVideo(fx, num('n_frames')); // F16 stored exactly → float32
  try {
    model.load(fx.params);
    const features = encodeVideoWithSync(model, video, {
      batchSize: num('batch_size'),
      segmentSize: num('segment_size'),
      stepSize: num('step_size'),
    });
    return { outputs: { features } };
  } finally {
    video.dispose();
    model.dispose();
  }
}

export const runner: Runner = { component: 'synchformer', run };
