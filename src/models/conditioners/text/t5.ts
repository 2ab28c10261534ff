// T5Conditioner (docs/REFERENCE.md §4.5): prompt → T5 tokens (always padded/truncated to max_length, quirk 23) →
// frozen T5 encoder → proj_out (Identity for t5-base → 768) → padded positions zeroed.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { Module } from '../../../nn/module.ts';
import { Linear } from '../../../nn/layers.ts';
import { SafetensorsFile } from '../../../io/safetensors.ts';
import { T5EncoderModel, type T5Config } from '../../t5.ts';
import { TextTokenizer } from '../../tokenizer.ts';
import type { Conditioner, ConditionerMedia, ExternalModel, ExternalModelKind, MediaField, PrepareOptions } from '../conditioner.ts';

/** The reference's T5_MODEL_DIMS (width of each supported encoder). */
export const T5_MODEL_DIMS: Record<string, number> = {
  't5-small': 512,
  't5-base': 768,
  't5-large': 1024,
  't5-3b': 1024,
  't5-11b': 1024,
  'google/flan-t5-small': 512,
  'google/flan-t5-base': 768,
  'google/flan-t5-large': 1024,
  'google/flan-t5-xl': 2048,
  'google/flan-t5-xxl': 4096,
};

/** The conditioner's config keys as the AudioX factory passes them (`output_dim` = `cond_dim`). */
export interface T5ConditionerConfig {
  output_dim: number;
  t5_model_name?: string;
  max_length?: number;
  project_out?: boolean;
  enable_grad?: boolean;
}

export type TextConditioning = {
  /** [B, max_length, output_dim]; exactly 0 at padded positions. */
  embedding: tf.Tensor3D;
  /** [B, max_length] bool, true on real tokens (the reference returns the bool attention mask). */
  mask: tf.Tensor2D;
};

const TEXT_READS: readonly MediaField[] = ['prompt'];

export class T5Conditioner extends Module implements Conditioner<string[]> {
  readonly modality = 'text';
  readonly reads = TEXT_READS;
  readonly externalModels: readonly ExternalModelKind[] = ['text-encoder'];
  readonly dim: number;
  readonly outputDim: number;
  readonly maxLength: number;
  /** `Linear(dim, output_dim)` iff the widths differ or `project_out`; otherwise Identity (null). */
  readonly proj_out: Linear | null;
  // Held outside the module tree: the T5 weights are not part of the AudioX state dict.
  private encoder: T5EncoderModel | null = null;
  private tokenizer: TextTokenizer | null = null;

  constructor(config: T5ConditionerConfig & { dim?: number }) {
    super();
    const name = config.t5_model_name ?? 't5-base';
    const dim = config.dim ?? T5_MODEL_DIMS[name];
    if (!dim) throw new Error(`T5Conditioner: unknown T5 model "${name}" (known: ${Object.keys(T5_MODEL_DIMS).join(', ')})`);
    this.dim = dim;
    this.outputDim = config.output_dim;
    this.maxLength = config.max_length ?? 128;
    this.proj_out =
      dim !== config.output_dim || config.project_out ? this.module('proj_out', new Linear(dim, config.output_dim)) : null;
  }

  static fromConfig(config: T5ConditionerConfig): T5Conditioner {
    return new T5Conditioner(config);
  }

  /** Attaches the (separately loaded) encoder and tokenizer; the conditioner takes ownership of the encoder. */
  attach(encoder: T5EncoderModel, tokenizer: TextTokenizer | null = null): this {
    if (encoder.cfg.d_model !== this.dim) {
      throw new Error(`T5Conditioner: encoder width ${encoder.cfg.d_model} ≠ expected ${this.dim}`);
    }
    if (this.encoder && this.encoder !== encoder) this.encoder.dispose();
    this.encoder = encoder;
    this.tokenizer = tokenizer;
    return this;
  }

  /** loadModel's way in: the text encoder this conditioner's `t5_model_name` names, with its tokenizer. */
  attachExternal(kind: ExternalModelKind, model: ExternalModel): void {
    if (kind !== 'text-encoder' || !(model.module instanceof T5EncoderModel)) {
      throw new Error(`T5Conditioner: cannot attach a ${kind} (${model.module.constructor.name}); it runs a T5 encoder`);
    }
    this.attach(model.module, model.tokenizer ?? null);
  }

  /** The prompt, once per batch item. */
  async prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<string[]> {
    return Array.from({ length: opts.batchSize }, () => media.prompt);
  }

  condition(input: string[]): TextConditioning {
    if (!Array.isArray(input) || !input.every((s) => typeof s === 'string')) throw new Error('T5Conditioner expects a list of strings');
    return this.forward(input);
  }

  disposeInput(): void {}

  /** Deterministic (no random draws): equal prompts give equal outputs. */
  reuseKey(media: ConditionerMedia): string {
    return `text\0${media.prompt}`;
  }

  /** texts → `{embedding [B, max_length, output_dim], mask [B, max_length]}` */
  forward(texts: string[]): TextConditioning {
    if (!this.tokenizer) throw new Error('T5Conditioner: no tokenizer attached (call attach(encoder, tokenizer))');
    const { inputIds, attentionMask, shape } = this.tokenizer.encode(texts, this.maxLength);
    return tf.tidy(() =>
      this.forwardIds(tf.tensor2d(inputIds, shape, 'int32'), tf.tensor2d(attentionMask, shape, 'int32').cast('bool') as tf.Tensor2D),
    );
  }

  /** Pre-tokenised input: ids [B, L] int32, mask [B, L] (bool or 0/1). */
  forwardIds(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): TextConditioning {
    if (!this.encoder) throw new Error('T5Conditioner: no T5 encoder attached (call attach(encoder, tokenizer))');
    const encoder = this.encoder;
    return tf.tidy(() => {
      const mask = attentionMask.cast('bool') as tf.Tensor2D;
      const h = encoder.forward(inputIds, mask);
      return { embedding: this.project(h, mask), mask };
    });
  }

  /** The conditioner tail on a last_hidden_state [B, L, dim]: proj_out, then padded tokens → 0. */
  project(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const e = this.proj_out ? this.proj_out.forward(hidden) : hidden;
      return e.mul(mask.cast('float32').expandDims(-1)) as tf.Tensor3D;
    });
  }

  protected override onDispose(): void {
    this.encoder?.dispose();
    this.encoder = null;
  }
}

/**
 * Loads a Hugging Face T5 snapshot directory (`config.json`, `model.safetensors`, `tokenizer.json`,
 * optional `tokenizer_config.json`), e.g. t5-base, through the project's safetensors loader.
 */
export function loadT5Pretrained(dir: string): { encoder: T5EncoderModel; tokenizer: TextTokenizer } {
  const need = (f: string) => {
    const p = path.join(dir, f);
    if (!fs.existsSync(p)) throw new Error(`T5 snapshot "${dir}" has no ${f}`);
    return p;
  };
  const config = JSON.parse(fs.readFileSync(need('config.json'), 'utf8')) as T5Config;
  const tokenizer = TextTokenizer.fromFile(need('tokenizer.json'), path.join(dir, 'tokenizer_config.json'));
  const encoder = T5EncoderModel.fromConfig(config);
  const file = SafetensorsFile.open(need('model.safetensors'));
  try {
    encoder.loadPretrained(file);
  } catch (e) {
    encoder.dispose();
    throw e;
  } finally {
    file.close();
  }
  return { encoder, tokenizer };
}
