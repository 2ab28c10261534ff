// `synchformer` fixtures: FeaturesUtils.encode_video_with_sync(video [B, T, 3, 224, 224]) → features [B, S·8, D].
import { Synchformer, type SynchformerVitOverrides } from '../../models/synchformer/synchformer.ts';
import { encodeVideoWithSync } from '../../models/synchformer/features.ts';
import type { Fixture, Runner, RunnerResult } from '../types.ts';

async function run(fx: Fixture): Promise<RunnerResult> {
  const model = Synchformer.fromVitOverrides((fx.config.VIT_overrides ?? {}) as SynchformerVitOverrides);
  const video = fx.tensor('inputs/video'); // stored F16 (exact), read as float32
  const num = (k: string) => (typeof fx.args[k] === 'number' ? (fx.args[k] as number) : undefined);
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
