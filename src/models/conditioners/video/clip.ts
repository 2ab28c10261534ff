// CLIP video conditioners (audiox/models/conditioners.py, docs/REFERENCE.md §4.2, §4.8, quirks 9, 10, 25):
// `clip` → CLIPConditioner, `clip-with-sync-w-empty-feat` → CLIPWithSyncWithEmptyFeatureConditioner.
//
//   video [B, T, 3, H, W] (uint8 values) ─/255, CLIP norm─► CLIP ViT-B/32 ─► last_hidden_state [B·T, Q, D]
//   ─(b t) q h → (b q) t h─► + Temp_pos_embedding ─► SA_Transformer ─(b q) t h → b (t q) h─►
//   view [B·D, T·Q] ─► proj ─► view [B, out, D]  (+ sync_weight · proj_sync(sync.view [B·D, 240]).view [B, out, D])
//   ─► items whose raw video is all zero get empty_visual_feat ─► (embedding [B, out, D], mask ones [B, 1])
import * as tf from '@tensorflow/tfjs';
import { Module, type Parameter } from '../../../nn/module.ts';
import { Linear } from '../../../nn/layers.ts';
import { CLIP_VIT_B32, CLIPVisionModelWithProjection, clipPixelValues, type CLIPVisionConfig } from '../../clip.ts';
import { SA_Transformer } from '../../temporal-transformer.ts';
import type { ConditionerOutput } from '../../conditioning.ts';
import type { Conditioner, ConditionerMedia, ExternalModelKind, MediaField, MediaOptions, PrepareOptions } from '../conditioner.ts';
import { repeatBatch, syncFeatures, videoFrames, visualReuseKey } from './input.ts';

/** The `config` object of a conditioner entry in the released model config (reference keyword names). */
export interface CLIPConditionerConfig {
  clip_model_name?: string;
  video_fps?: number;
  /** Honoured by the sync variant only; `clip` forces 128 (quirk 25). */
  out_features?: number;
  project_out?: boolean;
  /** Ignored by the reference (recomputed as 50·video_fps·10). */
  in_features?: number;
  enable_grad?: boolean;
}

/**
 * Sizes the reference hard-codes (§11.2). Overriding them builds the shrunk modules of the fixtures; a real
 * checkpoint needs the defaults.
 */
export interface VideoConditionerSizes {
  /** Width of the CLIP tokens and of the output (768; default: the CLIP tower's hidden_size). */
  temporal_dim: number;
  /** Frames per item = duration · video_fps (50). */
  frames: number;
  /** CLIP tokens per frame, CLS + patches (50). */
  tokens: number;
  /** Output tokens (128). */
  out_features: number;
  sa_depth: number;
  num_heads: number;
  dim_head: number;
  mlp_dim: number;
  /** Sync feature tokens (240 = 30 segments × 8). */
  sync_tokens: number;
  /**
   * The CLIP tower inside the conditioner (`visual_encoder_model.*`); null builds the tail only, fed with a
   * precomputed last_hidden_state (`forwardFromHidden`).
   */
  clip_vision: CLIPVisionConfig | null;
}

export const CLIP_MODELS = ['clip-vit-base-patch32'];
const DURATION = 10;
/** The reference's `Conditioner(dim=768, …)`: proj_out exists iff output_dim ≠ 768 or project_out. */
const CONDITIONER_DIM = 768;

export interface VideoConditionerOutput {
  /** [B, out_features, D] */
  embedding: tf.Tensor3D;
  /** ones [B, 1] */
  mask: tf.Tensor2D;
}

export type VideoConditionerKind = 'clip' | 'clip-with-sync-w-empty-feat';

/** The input of a video conditioner: frames [B, T, 3, H, W] (uint8 values) and, for the sync variant, Synchformer features [B, 240, D]. */
export interface VideoInput {
  video: tf.Tensor;
  syncFeatures?: tf.Tensor;
}

const VIDEO_READS: readonly MediaField[] = ['video', 'image', 'secondsStart'];

abstract class VideoConditionerBase extends Module implements Conditioner<VideoInput> {
  readonly modality = 'video';
  readonly reads = VIDEO_READS;
  abstract readonly kind: VideoConditionerKind;
  readonly empty_visual_feat: Parameter;
  readonly visual_encoder_model: CLIPVisionModelWithProjection | null;
  readonly proj: Linear;
  readonly Temp_transformer: SA_Transformer;
  readonly Temp_pos_embedding: Parameter;
  /** Built for state-dict compatibility only: the reference never applies it (§4.2). */
  readonly proj_out: Linear | null;
  readonly sizes: VideoConditionerSizes;
  readonly inFeatures: number;

  constructor(
    readonly outputDim: number,
    config: CLIPConditionerConfig,
    sizes: VideoConditionerSizes,
  ) {
    super();
    const name = config.clip_model_name ?? 'clip-vit-base-patch32';
    if (!CLIP_MODELS.includes(name)) throw new Error(`unknown clip model name "${name}" (known: ${CLIP_MODELS.join(', ')})`);
    this.sizes = sizes;
    const { temporal_dim: d, frames, tokens, out_features: out } = sizes;
    this.inFeatures = tokens * frames;
    this.empty_visual_feat = this.param('empty_visual_feat', [1, out, d]);
    this.visual_encoder_model = sizes.clip_vision
      ? this.module('visual_encoder_model', CLIPVisionModelWithProjection.fromConfig(sizes.clip_vision))
      : null;
    if (this.visual_encoder_model && (this.visual_encoder_model.numTokens !== tokens || sizes.clip_vision!.hidden_size !== d)) {
      throw new Error(
        `video conditioner: the CLIP tower gives ${this.visual_encoder_model.numTokens} tokens × ${sizes.clip_vision!.hidden_size}, ` +
          `but the tail expects ${tokens} × ${d}`,
      );
    }
    this.proj = this.module('proj', new Linear(this.inFeatures, out));
    this.Temp_transformer = this.module(
      'Temp_transformer',
      new SA_Transformer({ dim: d, depth: sizes.sa_depth, heads: sizes.num_heads, dim_head: sizes.dim_head, mlp_dim: sizes.mlp_dim }),
    );
    this.Temp_pos_embedding = this.param('Temp_pos_embedding', [1, frames, d]);
    this.proj_out = outputDim !== CONDITIONER_DIM || config.project_out ? this.module('proj_out', new Linear(CONDITIONER_DIM, outputDim)) : null;
  }

  /** Whether the input carries Synchformer features. */
  protected abstract readonly takesSync: boolean;

  /** The window's CLIP frames (and sync features), repeated over the batch; zeros without a video or image. */
  async prepareInput(media: ConditionerMedia, opts: PrepareOptions): Promise<VideoInput> {
    const source = { video: media.video, image: media.image };
    const video = repeatBatch(await videoFrames(opts.host, this, source, opts), opts.batchSize);
    if (!this.takesSync) return { video };
    try {
      return { video, syncFeatures: repeatBatch(await syncFeatures(opts.host, this, source, opts), opts.batchSize) };
    } catch (e) {
      video.dispose();
      throw e;
    }
  }

  condition(input: VideoInput): ConditionerOutput {
    if (!(input && input.video instanceof tf.Tensor)) throw new Error(`video conditioner "${this.kind}" expects {video: [B, T, 3, H, W]}`);
    if (this.takesSync && !input.syncFeatures) throw new Error(`video conditioner "${this.kind}" needs Synchformer features`);
    return this.forward(input.video, input.syncFeatures);
  }

  disposeInput(input: VideoInput): void {
    tf.dispose([input.video, ...(input.syncFeatures ? [input.syncFeatures] : [])]);
  }

  /** Deterministic (no random draws): equal media give equal outputs. */
  reuseKey(media: ConditionerMedia, opts: MediaOptions): string {
    return visualReuseKey(media, opts);
  }

  /** Full path: raw frames [B, T, 3, H, W] (uint8 values; int32 or float) → embedding, mask. */
  forward(video: tf.Tensor, syncFeatures?: tf.Tensor): VideoConditionerOutput {
    const enc = this.visual_encoder_model;
    if (!enc) throw new Error('video conditioner was built without its CLIP tower: use forwardFromHidden()');
    this.checkVideo(video);
    const [b, t, c, h, w] = video.shape;
    const hidden = tf.tidy(() => enc.lastHiddenState(clipPixelValues(video).reshape([b * t, c, h, w]) as tf.Tensor4D));
    try {
      return this.forwardFromHidden(video, hidden, syncFeatures);
    } finally {
      hidden.dispose();
    }
  }

  /**
   * Tail given the CLIP output: `video` [B, T, 3, H, W] (for the empty-video test and B, T) and
   * `lastHiddenState` [B·T, Q, D] (frames of one item consecutive).
   */
  forwardFromHidden(video: tf.Tensor, lastHiddenState: tf.Tensor, syncFeatures?: tf.Tensor): VideoConditionerOutput {
    this.checkVideo(video);
    const [b, t] = video.shape;
    const { tokens: q, temporal_dim: d, out_features: out } = this.sizes;
    if (lastHiddenState.rank !== 3 || lastHiddenState.shape[0] !== b * t || lastHiddenState.shape[1] !== q || lastHiddenState.shape[2] !== d) {
      throw new Error(`video conditioner: expected last_hidden_state [${b * t}, ${q}, ${d}] (B·T, Q, D), got [${lastHiddenState.shape}]`);
    }
    this.checkSync(b, syncFeatures);
    return tf.tidy(() => {
      const isZero = video.equal(0).all([1, 2, 3, 4]).reshape([b, 1, 1]); // quirk 10: exact zero test on raw pixels
      const h = this.temporal(lastHiddenState as tf.Tensor3D, b, t); // [B, T·Q, D]
      // Quirk 9: row-major reinterpretations, not transposes: rows of T·Q values straddle token boundaries.
      let y = this.proj.forward(h.reshape([b * d, this.inFeatures])).reshape([b, out, d]);
      const sync = this.syncTerm(b, syncFeatures);
      if (sync) y = y.add(sync);
      const embedding = tf.where(isZero, tf.broadcastTo(this.empty_visual_feat.value, [b, out, d]), y) as tf.Tensor3D;
      return { embedding, mask: tf.ones([b, 1]) as tf.Tensor2D };
    });
  }

  /** `(b t) q h → (b q) t h` + Temp_pos_embedding: the temporal transformer's input [B·Q, T, D]. */
  temporalInput(lastHiddenState: tf.Tensor3D, b: number, t: number): tf.Tensor3D {
    const { tokens: q, temporal_dim: d } = this.sizes;
    this.checkFrames(t);
    return tf.tidy(
      () =>
        lastHiddenState
          .reshape([b, t, q, d])
          .transpose([0, 2, 1, 3])
          .reshape([b * q, t, d])
          .add(this.Temp_pos_embedding.value) as tf.Tensor3D,
    );
  }

  /** [B·T, Q, D] → SA_Transformer over time per token position → `b (t q) h` [B, T·Q, D]. */
  private temporal(lastHiddenState: tf.Tensor3D, b: number, t: number): tf.Tensor3D {
    const { tokens: q, temporal_dim: d } = this.sizes;
    return tf.tidy(() => {
      const out = this.Temp_transformer.forward(this.temporalInput(lastHiddenState, b, t));
      return out.reshape([b, q, t, d]).transpose([0, 2, 1, 3]).reshape([b, t * q, d]) as tf.Tensor3D;
    });
  }

  protected checkVideo(video: tf.Tensor): void {
    if (video.rank !== 5 || video.shape[2] !== 3) {
      throw new Error(`video conditioner: expected video frames [B, T, 3, H, W], got [${video.shape}]`);
    }
    this.checkFrames(video.shape[1]!);
  }

  private checkFrames(t: number): void {
    const { frames } = this.sizes;
    if (t !== frames) {
      throw new Error(`video conditioner: got ${t} frames per item, but Temp_pos_embedding holds exactly ${frames} (= 10 s · video_fps; quirk 25)`);
    }
  }

  /** Throws on sync features this conditioner cannot take. */
  protected abstract checkSync(b: number, syncFeatures?: tf.Tensor): void;
  /** The sync branch's [B, out, D] term to add to the projection, or null (plain `clip`). */
  protected abstract syncTerm(b: number, syncFeatures?: tf.Tensor): tf.Tensor | null;
}

/** `clip`: the AudioX video conditioner. `out_features` is forced to 128 by the reference (quirk 25). */
export class CLIPConditioner extends VideoConditionerBase {
  readonly kind: VideoConditionerKind = 'clip';
  protected readonly takesSync = false;
  constructor(outputDim: number, config: CLIPConditionerConfig = {}, sizes: Partial<VideoConditionerSizes> = {}) {
    super(outputDim, config, resolveSizes(config, sizes, 128));
  }
  protected checkSync(_b: number, syncFeatures?: tf.Tensor): void {
    if (syncFeatures) throw new Error('CLIPConditioner ("clip") takes no sync features; use "clip-with-sync-w-empty-feat"');
  }
  protected syncTerm(): null {
    return null;
  }
}

/**
 * `clip-with-sync-w-empty-feat` (AudioX-MAF): adds `sync_weight · proj_sync(Synchformer features)`.
 * Without sync features the reference substitutes zeros [B, 240, 768], which still contribute
 * `sync_weight · proj_sync.bias` through the reshape-scramble.
 */
export class CLIPWithSyncWithEmptyFeatureConditioner extends VideoConditionerBase {
  readonly kind: VideoConditionerKind = 'clip-with-sync-w-empty-feat';
  /** The Synchformer, read from the host when preparing the input (zeros when none is loaded). */
  readonly externalModels: readonly ExternalModelKind[] = ['synchformer'];
  protected readonly takesSync = true;
  readonly proj_sync: Linear;
  readonly sync_weight: Parameter;
  constructor(outputDim: number, config: CLIPConditionerConfig = {}, sizes: Partial<VideoConditionerSizes> = {}) {
    super(outputDim, config, resolveSizes(config, sizes, config.out_features ?? 128));
    this.proj_sync = this.module('proj_sync', new Linear(this.sizes.sync_tokens, this.sizes.out_features));
    this.sync_weight = this.param('sync_weight', []);
  }
  protected checkSync(b: number, syncFeatures?: tf.Tensor): void {
    const s = this.sizes.sync_tokens;
    if (syncFeatures && (syncFeatures.rank !== 3 || syncFeatures.shape[0] !== b || syncFeatures.shape[1] !== s)) {
      throw new Error(`video conditioner: expected sync features [${b}, ${s}, D], got [${syncFeatures.shape}]`);
    }
  }
  protected syncTerm(b: number, syncFeatures?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const { sync_tokens: s, out_features: out, temporal_dim: d } = this.sizes;
      const sync = syncFeatures ?? tf.zeros([b, s, d]);
      // Quirk 9 again: [B, 240, Ds] viewed as [B·Ds, 240], projected, viewed as [B, out, Ds].
      const y = this.proj_sync.forward(sync.reshape([-1, s])).reshape([b, out, -1]);
      return y.mul(this.sync_weight.value);
    });
  }
}

export type VideoConditioner = CLIPConditioner | CLIPWithSyncWithEmptyFeatureConditioner;

function resolveSizes(config: CLIPConditionerConfig, sizes: Partial<VideoConditionerSizes>, outFeatures: number): VideoConditionerSizes {
  const fps = config.video_fps ?? 5;
  const clip_vision = sizes.clip_vision === undefined ? CLIP_VIT_B32 : sizes.clip_vision;
  // The reference's temporal_dim=768 is the CLIP tower's hidden width (ViT-B/32).
  const temporal_dim = sizes.temporal_dim ?? clip_vision?.hidden_size ?? CLIP_VIT_B32.hidden_size;
  return {
    temporal_dim,
    frames: sizes.frames ?? DURATION * fps,
    tokens: sizes.tokens ?? (clip_vision ? (clip_vision.image_size / clip_vision.patch_size) ** 2 + 1 : 50),
    out_features: sizes.out_features ?? outFeatures,
    sa_depth: sizes.sa_depth ?? 4,
    num_heads: sizes.num_heads ?? 16,
    dim_head: sizes.dim_head ?? 64,
    mlp_dim: sizes.mlp_dim ?? 4 * temporal_dim,
    sync_tokens: sizes.sync_tokens ?? 240,
    clip_vision,
  };
}

/** A conditioner entry of the model config: `{id, type, config}`. */
export interface ConditionerEntry {
  id: string;
  type: string;
  config?: Record<string, unknown>;
}

/**
 * Builds the video conditioner of a config entry (`output_dim` = the conditioning's `cond_dim`).
 * `sizes` overrides the hard-coded full-size values (tiny test modules only).
 */
export function videoConditionerFromConfig(
  entry: ConditionerEntry,
  outputDim: number,
  sizes: Partial<VideoConditionerSizes> = {},
): VideoConditioner {
  const config = (entry.config ?? {}) as CLIPConditionerConfig;
  switch (entry.type) {
    case 'clip':
      return new CLIPConditioner(outputDim, config, sizes);
    case 'clip-with-sync-w-empty-feat':
      return new CLIPWithSyncWithEmptyFeatureConditioner(outputDim, config, sizes);
    default:
      throw new Error(`not a CLIP video conditioner type: "${entry.type}"`);
  }
}
