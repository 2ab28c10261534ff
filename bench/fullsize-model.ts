// Full-size model directories with random weights, offline: what `audiox download <model>` produces
// (config.json, model.safetensors, synchformer.safetensors, t5-base/) under an AUDIOX_HOME. Shared by
// bench/fullsize-smoke.ts and the end-to-end bench (bench/e2e.ts).
//
// The weights are N(0, 0.02) (norm weights 1, Snake alpha/beta 0 = their reference init), written under
// exactly the keys of `createModelFromConfig(config).parameterManifest({ persistent: true })` (checked
// against test/fixtures/manifests).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatBytes } from '../src/backend/index.ts';
import { f32ToF16, writeSafetensors } from '../src/io/safetensors.ts';
import { runFfmpeg } from '../src/io/ffmpeg.ts';
import { readConfig } from '../src/models/config.ts';
import { T5EncoderModel } from '../src/models/t5.ts';
import { createModelFromConfig } from '../src/models/wrapper.ts';
import type { Module } from '../src/nn/module.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MANIFESTS = path.join(ROOT, 'test/fixtures/manifests');

export type FullsizeModelName = 'AudioX' | 'AudioX-MAF' | 'AudioX-MAF-MMDiT';
export const FULLSIZE_MODELS: Record<FullsizeModelName, { config: string; manifest: string; sync: boolean }> = {
  AudioX: { config: 'configs/AudioX.json', manifest: 'audiox.json', sync: false },
  'AudioX-MAF': { config: 'configs/AudioX-MAF.assumed.json', manifest: 'audiox-maf.assumed.json', sync: true },
  'AudioX-MAF-MMDiT': { config: 'configs/AudioX-MAF-MMDiT.assumed.json', manifest: 'audiox-maf-mmdit.assumed.json', sync: true },
};

export function isFullsizeModel(name: string): name is FullsizeModelName {
  return Object.hasOwn(FULLSIZE_MODELS, name);
}

/** HF's google-t5/t5-base config.json (the keys the encoder reads, as published). */
export const T5_BASE_HF_CONFIG = {
  architectures: ['T5ForConditionalGeneration'],
  d_ff: 3072,
  d_kv: 64,
  d_model: 768,
  decoder_start_token_id: 0,
  dropout_rate: 0.1,
  eos_token_id: 1,
  initializer_factor: 1.0,
  is_encoder_decoder: true,
  layer_norm_epsilon: 1e-6,
  model_type: 't5',
  n_positions: 512,
  num_heads: 12,
  num_layers: 12,
  output_past: true,
  pad_token_id: 0,
  relative_attention_num_buckets: 32,
  vocab_size: 32128,
};

export type WeightDtype = 'F16' | 'F32';
export type Log = (line: string) => void;

// ---- random weights ----
let pool: { f32: Float32Array; f16: Uint16Array; n: number } | null = null;
function randomPool(): { f32: Float32Array; f16: Uint16Array; n: number } {
  if (pool) return pool;
  // N(0, 0.02) by Box–Muller from a seeded LCG; tensors copy windows of it at random offsets.
  const n = 1 << 20;
  const f = new Float32Array(n + 4096);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  for (let i = 0; i < f.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    f[i] = 0.02 * r * Math.cos(t);
    if (i + 1 < f.length) f[i + 1] = 0.02 * r * Math.sin(t);
  }
  pool = { f32: f, f16: f32ToF16(f), n };
  return pool;
}

function initValue(key: string): number | null {
  const leaf = key.split('.').pop()!;
  if (leaf === 'alpha' || leaf === 'beta') return 0; // SnakeBeta (log-scale): exp(0) = 1, the reference init
  if (/norm/i.test(key) && (leaf === 'weight' || leaf === 'gamma' || leaf === 'scale')) return 1;
  return null;
}

function randomBytes(key: string, shape: number[], dtype: WeightDtype | 'I32'): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'I32') return new Uint8Array(n * 4);
  const c = initValue(key);
  const f32 = dtype === 'F32';
  const out = f32 ? new Float32Array(n) : new Uint16Array(n);
  const p = randomPool();
  const src = f32 ? p.f32 : p.f16;
  if (c !== null) out.fill(f32 ? c : c === 1 ? 0x3c00 : 0);
  else {
    let off = (key.length * 7919) % p.n;
    for (let i = 0; i < n; i += 4096) {
      off = (off * 1103515245 + 12345) % p.n;
      out.set(src.subarray(off, off + Math.min(4096, n - i)) as never, i);
    }
  }
  return new Uint8Array(out.buffer);
}

/** Writes random weights for `manifest` (dtypes from `m`'s tensors) to `file`, unless it exists. */
async function writeRandom(
  file: string,
  m: Module | null,
  manifest: Record<string, number[]>,
  dtype: WeightDtype,
  log: Log,
  skip: (k: string) => boolean = () => false,
): Promise<void> {
  if (fs.existsSync(file)) return log(`reuse ${file}`);
  const dtypes = new Map<string, string>(m ? [...m.namedTensors()].map(([k, p]) => [k, p.dtype]) : []);
  const entries = Object.entries(manifest)
    .filter(([k]) => !skip(k))
    .map(([name, shape]) => {
      const dt = dtypes.get(name) === 'int32' ? 'I32' : dtype;
      return { name, dtype: dt, shape, bytes: () => randomBytes(name, shape, dt) } as const;
    });
  const t0 = performance.now();
  // Written next to the target and renamed, so an interrupted run leaves no truncated file to "reuse".
  const tmp = `${file}.partial`;
  await writeSafetensors(tmp, entries.map((e) => ({ ...e })));
  fs.renameSync(tmp, file);
  log(`wrote ${file}: ${entries.length} tensors, ${formatBytes(fs.statSync(file).size)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Compares our manifest with the released one; false on any difference (logged). */
function compareManifest(what: string, ours: Record<string, number[]>, file: string, log: Log): boolean {
  if (!fs.existsSync(file)) {
    log(`${what}: no reference manifest ${file}`);
    return true;
  }
  const ref = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number[]>;
  const missing = Object.keys(ref).filter((k) => !(k in ours));
  const extra = Object.keys(ours).filter((k) => !(k in ref));
  const shape = Object.keys(ref).filter((k) => k in ours && ref[k].join() !== ours[k].join());
  const ok = !missing.length && !extra.length && !shape.length;
  log(`${what}: ${Object.keys(ours).length} keys vs ${path.basename(file)}: ${ok ? 'identical' : `MISMATCH missing ${missing.slice(0, 5)} extra ${extra.slice(0, 5)} shape ${shape.slice(0, 5)}`}`);
  return ok;
}

export interface PreparedModel {
  /** AUDIOX_HOME/models/<name> */
  dir: string;
  /** Whether our parameter manifest matches the released one. */
  manifestOk: boolean;
  /** The weight files loadModel reads (model, synchformer, t5-base). */
  weightFiles: string[];
}

/** Lays out `<home>/models/<name>` and `<home>/models/t5-base` with random weights (reused when present). */
export async function prepareFullsizeModel(name: FullsizeModelName, home: string, dtype: WeightDtype, log: Log): Promise<PreparedModel> {
  const spec = FULLSIZE_MODELS[name];
  const dir = path.join(home, 'models', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(ROOT, spec.config), path.join(dir, 'config.json'));
  const w = createModelFromConfig(readConfig(path.join(dir, 'config.json')));
  const manifest = w.parameterManifest({ persistent: true });
  const manifestOk = compareManifest(name, manifest, path.join(MANIFESTS, spec.manifest), log);
  const weightFiles = [path.join(dir, 'model.safetensors')];
  await writeRandom(weightFiles[0], w, manifest, dtype, log);
  if (spec.sync) {
    // synchformer_state_dict.pth converted as is (download.ts: → synchformer.safetensors, keys unchanged).
    const sync = JSON.parse(fs.readFileSync(path.join(MANIFESTS, 'synchformer.json'), 'utf8')) as Record<string, number[]>;
    weightFiles.push(path.join(dir, 'synchformer.safetensors'));
    await writeRandom(weightFiles.at(-1)!, null, sync, dtype, log);
  }
  const t5Dir = path.join(home, 'models', 't5-base');
  fs.mkdirSync(t5Dir, { recursive: true });
  fs.writeFileSync(path.join(t5Dir, 'config.json'), JSON.stringify(T5_BASE_HF_CONFIG, null, 2));
  // No t5-base tokenizer offline: the demo Unigram tokenizer (ids < 261 < vocab_size 32128).
  fs.copyFileSync(path.join(ROOT, 'configs/demo/tokenizer.json'), path.join(t5Dir, 'tokenizer.json'));
  const t5 = T5EncoderModel.fromConfig(T5_BASE_HF_CONFIG);
  weightFiles.push(path.join(t5Dir, 'model.safetensors'));
  // HF's t5-base model.safetensors stores the tied embedding once, as shared.weight.
  await writeRandom(weightFiles.at(-1)!, t5, t5.parameterManifest({ persistent: true }), dtype, log, (k) => k === 'encoder.embed_tokens.weight');
  return { dir, manifestOk, weightFiles };
}

/** A 10 s 320×240 25 fps test pattern (ffmpeg's testsrc) under `home`, made once. */
export async function testVideo(home: string): Promise<string> {
  const file = path.join(home, 'testsrc-10s.mp4');
  if (!fs.existsSync(file)) {
    const tmp = path.join(home, 'testsrc-10s.partial.mp4');
    await runFfmpeg(['-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', tmp]);
    fs.renameSync(tmp, file);
  }
  return file;
}

/** 12 s of a 440 Hz stereo tone under `home`, made once. */
export async function testTone(home: string): Promise<string> {
  const file = path.join(home, 'sine-12s.wav');
  if (!fs.existsSync(file)) {
    const tmp = path.join(home, 'sine-12s.partial.wav');
    await runFfmpeg(['-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100:duration=12', '-ac', '2', tmp]);
    fs.renameSync(tmp, file);
  }
  return file;
}
