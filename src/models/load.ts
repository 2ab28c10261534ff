// loadModel: config.json + converted weights → a ready model (wrapper + the parts that live outside
// the checkpoint: the T5 encoder and tokenizer, the Synchformer), with strict key checks and a memory plan.
import fs from 'node:fs';
import path from 'node:path';
import { activeBackend, formatBytes, initBackend } from '../backend/index.ts';
import { SafetensorsFile } from '../io/safetensors.ts';
import { modelDir, MODELS } from '../hub/models.ts';
import { readConfig, type AudioXConfig } from './config.ts';
import { CLIPWithSyncWithEmptyFeatureConditioner } from './conditioners/clip.ts';
import { T5Conditioner, loadT5Pretrained } from './conditioners/t5.ts';
import { DEMO_DIR, initDemoWeights } from './demo.ts';
import { Synchformer } from './synchformer/synchformer.ts';
import { T5EncoderModel, type T5Config } from './t5.ts';
import { TextTokenizer } from './tokenizer.ts';
import { ConditionedDiffusionModelWrapper, createModelFromConfig } from './wrapper.ts';

export const RELEASED_MODELS = ['AudioX', 'AudioX-MAF', 'AudioX-MAF-MMDiT'] as const;

export interface ModelInfo {
  name: string;
  dir: string;
  demo: boolean;
  variant: string;
  parameters: number;
  bytes: number;
  sampleRate: number;
  sampleSize: number;
  conditioners: { id: string; type: string }[];
  synchformer: boolean;
}

/** A loaded model: the checkpoint's module tree plus the parts the reference keeps outside it. */
export class AudioXModel {
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly config: AudioXConfig,
    readonly wrapper: ConditionedDiffusionModelWrapper,
    readonly synchformer: Synchformer | null,
    readonly demo: boolean,
  ) {}

  get sampleRate(): number {
    return this.config.sample_rate;
  }
  get sampleSize(): number {
    return this.config.sample_size;
  }
  get videoFps(): number {
    return this.config.video_fps ?? 5;
  }
  /** Seconds of audio one generation produces before trimming (sample_size / sample_rate). */
  get maxSeconds(): number {
    return this.sampleSize / this.sampleRate;
  }

  info(): ModelInfo {
    const manifest = this.wrapper.parameterManifest();
    let n = 0;
    for (const s of Object.values(manifest)) n += s.reduce((a, b) => a * b, 1);
    const d = this.config.model.diffusion;
    return {
      name: this.name,
      dir: this.dir,
      demo: this.demo,
      variant: `${d.type}${d.gate ? ' + MAF' : ''}`,
      parameters: n,
      bytes: this.wrapper.parameterBytes(),
      sampleRate: this.sampleRate,
      sampleSize: this.sampleSize,
      conditioners: this.config.model.conditioning.configs.map((c) => ({ id: c.id, type: c.type })),
      synchformer: this.synchformer !== null,
    };
  }

  dispose(): void {
    this.wrapper.dispose();
    this.synchformer?.dispose();
  }
}

export class ModelNotFoundError extends Error {}

/** Where a model name or path lives: 'demo', a released name (cache dir), or a directory. */
export function resolveModelDir(nameOrDir: string): { name: string; dir: string; demo: boolean } {
  if (nameOrDir === 'demo') return { name: 'demo', dir: DEMO_DIR, demo: true };
  const released = RELEASED_MODELS.find((m) => m.toLowerCase() === nameOrDir.toLowerCase());
  if (released) return { name: released, dir: modelDir(released), demo: false };
  if (fs.existsSync(nameOrDir) && fs.statSync(nameOrDir).isDirectory()) {
    return { name: path.basename(path.resolve(nameOrDir)), dir: path.resolve(nameOrDir), demo: false };
  }
  throw new ModelNotFoundError(
    `unknown model "${nameOrDir}": use one of ${['demo', ...RELEASED_MODELS].join(', ')} or a directory with config.json and model.safetensors`,
  );
}

function requireFile(dir: string, file: string, name: string, hint: string): string {
  const p = path.join(dir, file);
  if (!fs.existsSync(p)) throw new ModelNotFoundError(`model "${name}": ${p} is missing. ${hint}`);
  return p;
}

export interface LoadModelOptions {
  /** Directory of the t5-base snapshot (default: the download cache's t5-base). */
  t5Dir?: string;
  backend?: string;
}

export async function loadModel(nameOrDir: string, opts: LoadModelOptions = {}): Promise<AudioXModel> {
  await initBackend(opts.backend);
  const { name, dir, demo } = resolveModelDir(nameOrDir);
  const download = RELEASED_MODELS.includes(name as (typeof RELEASED_MODELS)[number])
    ? `Run \`audiox download ${name}\` first.`
    : 'Convert the checkpoint with `audiox convert model.ckpt model.safetensors`.';
  const config = readConfig(requireFile(dir, 'config.json', name, download));
  const wrapper = createModelFromConfig(config);
  let synchformer: Synchformer | null = null;
  try {
    const plan = wrapper.parameterBytes();
    const budget = activeBackend().memoryBudget;
    if (plan > budget * 0.8) {
      throw new Error(
        `model "${name}" needs ${formatBytes(plan)} of weights, more than 80% of the ${activeBackend().name} backend's ` +
          `budget (${formatBytes(budget)}); the rest is needed for activations. Use a backend with more memory ` +
          '(tensorflow / tensorflow-gpu), see README "Memory".',
      );
    }
    const needsSync = [...wrapper.conditioner.conditioners.entries.values()].some(
      (c) => c instanceof CLIPWithSyncWithEmptyFeatureConditioner,
    );
    if (demo) {
      initDemoWeights(wrapper);
      const extra = config.audiox_ts ?? {};
      const tokenizer = TextTokenizer.fromFile(path.join(dir, extra.tokenizer ?? 'tokenizer.json'));
      const t5 = T5EncoderModel.fromConfig(extra.t5 as unknown as T5Config);
      initDemoWeights(t5);
      attachT5(wrapper, t5, tokenizer);
      if (needsSync) {
        const s = (extra.synchformer ?? {}) as { embed_dim?: number; depth?: number; num_heads?: number; mlp_ratio?: number };
        synchformer = Synchformer.fromVitOverrides({ EMBED_DIM: s.embed_dim, DEPTH: s.depth, NUM_HEADS: s.num_heads, MLP_RATIO: s.mlp_ratio });
        initDemoWeights(synchformer);
      }
    } else {
      const file = SafetensorsFile.open(requireFile(dir, 'model.safetensors', name, download));
      try {
        wrapper.loadStateDict(file);
      } finally {
        file.close();
      }
      if (hasT5(wrapper)) {
        const t5Dir = opts.t5Dir ?? modelDir('t5-base');
        requireFile(t5Dir, 'model.safetensors', 't5-base', 'Run `audiox download t5-base` first.');
        const { encoder, tokenizer } = loadT5Pretrained(t5Dir);
        attachT5(wrapper, encoder, tokenizer);
      }
      if (needsSync) {
        const p = path.join(dir, 'synchformer.safetensors');
        // Like the reference UI: without the Synchformer weights the sync features are zeros.
        if (fs.existsSync(p)) {
          synchformer = new Synchformer();
          const sf = SafetensorsFile.open(p);
          try {
            synchformer.load(sf);
          } finally {
            sf.close();
          }
        }
      }
    }
    return new AudioXModel(name, dir, config, wrapper, synchformer, demo);
  } catch (e) {
    wrapper.dispose();
    synchformer?.dispose();
    throw e;
  }
}

function hasT5(w: ConditionedDiffusionModelWrapper): boolean {
  return [...w.conditioner.conditioners.entries.values()].some((c) => c instanceof T5Conditioner);
}

function attachT5(w: ConditionedDiffusionModelWrapper, encoder: T5EncoderModel, tokenizer: TextTokenizer): void {
  for (const c of w.conditioner.conditioners.entries.values()) if (c instanceof T5Conditioner) c.attach(encoder, tokenizer);
}

/** Names of models whose files are present locally (for pickers). */
export function localModels(): string[] {
  const out = ['demo'];
  for (const m of RELEASED_MODELS) {
    if (fs.existsSync(path.join(modelDir(m), 'model.safetensors'))) out.push(m);
  }
  return out;
}

export { MODELS };
