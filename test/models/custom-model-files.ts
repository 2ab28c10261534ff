// A small custom model for the --model-config/--ckpt-path tests: a config unlike the demo's (no video conditioner,
// no MAF gate, other width and depth) and a training-style .ckpt as stable-audio-tools saves it.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import type { AudioXConfig } from '../../src/models/config.ts';
import { DEMO_DIR, demoWeight } from '../../src/models/demo.ts';
import { createModelFromConfig } from '../../src/models/wrapper.ts';
import { OP, pk, tensorPickle, torchArchive } from '../torch-archive.ts';

/**
 * The demo's config reshaped: a mel audio prompt (nothing to download), a 1-layer 128-wide 4-head DiT without the
 * MAF gate, 2 s. `t5ModelName` adds a text conditioner (32 wide, like the demo's encoder) loading that encoder;
 * `video` the demo's (tiny) sync-feature video conditioner, which loads the Synchformer.
 */
export function customConfig(opts: { t5ModelName?: string; video?: boolean; embedDim?: number; numHeads?: number; depth?: number } = {}): AudioXConfig {
  const c = JSON.parse(fs.readFileSync(path.join(DEMO_DIR, 'config.json'), 'utf8')) as AudioXConfig & { audiox_ts?: unknown };
  delete c.audiox_ts;
  c.sample_size = 88200;
  const keep = [...(opts.video ? ['video_prompt'] : []), ...(opts.t5ModelName ? ['text_prompt'] : []), 'audio_prompt'];
  c.model.conditioning.configs = c.model.conditioning.configs.filter((e) => keep.includes(e.id));
  const text = c.model.conditioning.configs.find((e) => e.id === 'text_prompt');
  if (text) text.config.t5_model_name = opts.t5ModelName;
  const d = c.model.diffusion;
  d.cross_attention_cond_ids = keep;
  d.gate = false;
  delete d.gate_type;
  delete d.gate_type_config;
  Object.assign(d.config, { embed_dim: opts.embedDim ?? 128, depth: opts.depth ?? 1, num_heads: opts.numHeads ?? 4 });
  return c;
}

export interface CheckpointTensor {
  key: string;
  data: Float32Array;
  shape: number[];
}

/** A torch.save zip of `{state_dict: {<tensors>}, epoch: 3, global_step: 120}` (Lightning's layout). */
export function trainingCheckpoint(tensors: CheckpointTensor[]): Buffer {
  const storages: Record<string, Uint8Array> = {};
  const items: Buffer[] = [];
  tensors.forEach((t, i) => {
    const key = String(i);
    storages[key] = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    items.push(pk.str(t.key), tensorPickle({ key, shape: t.shape, stride }, t.data.length));
  });
  const pkl = Buffer.concat([
    pk.proto(),
    pk.ops(OP.EMPTY_DICT, OP.MARK),
    pk.str('state_dict'),
    pk.ops(OP.EMPTY_DICT, OP.MARK),
    ...items,
    pk.ops(OP.SETITEMS),
    pk.str('epoch'), pk.int(3),
    pk.str('global_step'), pk.int(120),
    pk.ops(OP.SETITEMS, OP.STOP),
  ]);
  return torchArchive(pkl, storages);
}

/** The model's tensors (deterministic, `salt` mixed into the seeds), keyed by state-dict key. */
export function modelTensors(config: AudioXConfig, salt = ''): CheckpointTensor[] {
  const w = createModelFromConfig(config);
  try {
    return [...w.namedTensors()].map(([key, p]) => {
      const t = demoWeight(`${salt}${key}`, p);
      const data = t.dataSync() as Float32Array;
      tf.dispose(t);
      return { key, data: Float32Array.from(data), shape: p.shape };
    });
  } finally {
    w.dispose();
  }
}

/**
 * A training checkpoint of `config`'s model: `diffusion.<key>` for every tensor, an EMA copy of the `model.` part
 * under `diffusion_ema.ema_model.` (other values: salt "ema:"), the EMA's bookkeeping and one unrelated tensor.
 */
export function writeTrainingCheckpoint(file: string, config: AudioXConfig, opts: { ema?: boolean } = {}): void {
  const online = modelTensors(config);
  const out: CheckpointTensor[] = online.map((t) => ({ ...t, key: `diffusion.${t.key}` }));
  if (opts.ema ?? true) {
    for (const t of modelTensors(config, 'ema:')) {
      if (t.key.startsWith('model.')) out.push({ ...t, key: `diffusion_ema.ema_model.${t.key.slice('model.'.length)}` });
    }
    out.push({ key: 'diffusion_ema.initted', data: new Float32Array([1]), shape: [1] });
    out.push({ key: 'diffusion_ema.step', data: new Float32Array([120]), shape: [1] });
  }
  out.push({ key: 'losses.mrstft.window', data: new Float32Array(4), shape: [4] });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, trainingCheckpoint(out));
}
