// The memory plan of a generation: which weights stay on the backend, which are streamed from host
// memory (src/nn/streaming.ts), and the peak backend bytes of each phase, checked against the
// backend's budget before a single weight is read (README "Memory").
//
// Phases (one at a time; their activations never coexist):
//   conditioning — CLIP tower over the video frames, VAE encoder over the audio prompt;
//   sampling     — one diffusion-transformer step with CFG (batch 2) at the config's sample_size;
//   decoding     — the VAE decoder over the latents (chunked when one pass does not fit).
// Activation estimates are upper bounds calibrated on the wasm backend (`tf.profile` peak of a
// full-size block: DiT ≈ 40, MMDiT ≈ 71 [B, L, D] activations alive at once besides its weights).
import os from 'node:os';
import { windowFrameCount } from '../io/frames.ts';
import { DTYPE_SIZE, SafetensorsFile, type TensorSource } from '../io/safetensors.ts';
import { Module } from '../nn/module.ts';
import { backendBytes, formatBytes, type MemoryBudget } from '../nn/runtime.ts';
import type { HostDType } from '../nn/streaming.ts';
import { CLIPVisionTransformer } from './clip.ts';
import { latentLength } from './config.ts';
import { CONDITIONING_SECONDS } from './conditioners/conditioner.ts';
import { SYNC_FPS, syncFeatureBytes } from './synchformer/features.ts';
import { Synchformer } from './synchformer/synchformer.ts';
import { OobleckDecoder, OobleckEncoder } from './vae/oobleck.ts';
import { decodeMemoryEstimate, encodeMemoryEstimate } from './vae/pretransform.ts';
import type { ConditionedDiffusionModelWrapper } from './wrapper.ts';

const F32 = 4;
/** [B, L, D] activations a transformer block keeps alive at once (measured ≤ 71, see above). */
const BLOCK_ACTIVATIONS = 96;
/** Upper bound on the cross-attention tokens of a DiT (released configs: video + text + audio ≤ 1024). */
const MAX_CONTEXT_TOKENS = 1024;
/** Windows of the chunked VAE decode (AutoencoderPretransform.decode's default chunk size). */
const DECODE_CHUNK = 128;

/**
 * - `resident`: every weight on the backend;
 * - `host`: the diffusion transformer's blocks keep their products' weight operands in host memory, read in
 *   place by the backend's kernels (no per-step traffic; needs the TO_HOST kernel), the rest as `streamed`;
 * - `streamed`: the big modules' weights in host memory, uploaded for each forward.
 */
export type WeightMode = 'resident' | 'host' | 'streamed';

export interface MemoryPhase {
  name: 'conditioning' | 'sampling' | 'decoding';
  /** Peak backend bytes of the phase on top of the resident weights. */
  bytes: number;
  detail: string;
}

export interface MemoryPlan {
  mode: WeightMode;
  backend: string;
  budget: number;
  /** Backend bytes already in use before loading. */
  inUse: number;
  /** Weights on the backend for the whole session (incl. load-time derived copies and `extraResident`). */
  residentBytes: number;
  /** Host copies of the streamed modules' weights. */
  hostBytes: number;
  hostBudget: number;
  phases: MemoryPhase[];
  /** inUse + residentBytes + the largest phase. */
  peak: number;
  fits: boolean;
  /** The modules whose weights are streamed (empty when resident), including the `hostUnits`. */
  units: Module[];
  /** The units placed 'host' (the transformer blocks in `host` mode; see WeightMode). */
  hostUnits: Module[];
}

export interface PlanOptions {
  /** The runtime's budget (its bytes, and how much host memory the backend itself takes). */
  budget: MemoryBudget;
  inUse?: number;
  /**
   * Models loaded besides the checkpoint (T5 encoder, Synchformer; built, not loaded), with the
   * submodules streamed in 'streamed' mode (run once per generation, at conditioning).
   */
  extra?: { module: Module; streamable: Module[] }[];
  /** Gives the stored dtype of each tensor (host copies keep it). */
  source?: TensorSource;
  hostDType?: HostDType;
  /** Host memory available for streamed weights (default: see `defaultHostBudget`). */
  hostBudget?: number;
  /** Whether the backend can hold weight operands in host memory (the `host` mode; default false). */
  hostTensors?: boolean;
}

/** The model does not fit the backend's memory budget in any weight placement; refused before anything is allocated. */
export class MemoryPlanError extends Error {
  /**
   * @param message What does not fit, and what to do (stream weights, another backend, a bigger budget).
   * @param plans The placements that were tried, with their byte counts.
   */
  constructor(
    message: string,
    readonly plans: MemoryPlan[],
  ) {
    super(message);
  }
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/**
 * Backend bytes of `m`'s weights once loaded: every tensor as float32/int32, plus one more copy of the
 * sources of each derivation declared `copy` (Conv1d's tf filter, weight-norm folds, Snake folds, CLIP's
 * patch matrix — a reshape is a copy on wasm); a `replace` derivation holds its weights once.
 */
export function residentWeightBytes(m: Module): number {
  let n = m.parameterBytes();
  for (const [, c] of m.namedModules()) {
    const d = c.derivation();
    if (d?.mode === 'copy') for (const p of d.sources) n += numel(p.shape) * F32;
  }
  return n;
}

/** Float32 bytes of the derived tensors of `m` declared hostable (moved to host memory in the `host` placement). */
export function hostableBytes(m: Module): number {
  let n = 0;
  for (const [, c] of m.namedModules()) for (const h of c.derivation()?.hostable ?? []) n += h.elements * F32;
  return n;
}

/** Backend peak while a streamed unit is resident: its weights and one transient re-layout copy. */
function unitPeakBytes(m: Module): number {
  let largest = 0;
  for (const [, p] of m.namedTensors()) largest = Math.max(largest, numel(p.shape) * F32);
  return residentWeightBytes(m) + largest;
}

/**
 * The modules that can be streamed: every block of the diffusion transformer (uploaded once per
 * sampling step; the bulk of the weights) and the towers run once per generation (CLIP vision
 * transformer, VAE encoders/decoders, incl. the audio conditioner's copy). Each is entered only
 * through its `forward`, which is what streaming hooks.
 */
export function streamableUnits(w: ConditionedDiffusionModelWrapper): { perStep: Module[]; perGeneration: Module[] } {
  const perStep = [...w.getSubmodule('model.model.transformer.layers').children.values()];
  const perGeneration: Module[] = [];
  for (const [, m] of w.namedModules()) {
    if (m instanceof CLIPVisionTransformer || m instanceof OobleckEncoder || m instanceof OobleckDecoder) perGeneration.push(m);
  }
  return { perStep, perGeneration };
}

/** Host memory for streamed weights: ¾ of RAM, less what the backend itself may take from it. */
export function defaultHostBudget(budget: MemoryBudget, backendPeak: number): number {
  const host = Math.floor(os.totalmem() * 0.75);
  return host - (budget.hostReserve === 'tensors' ? backendPeak : budget.hostReserve);
}

function hostTensorBytes(fromKey: string, shape: number[], dtype: string, from: TensorSource | undefined, hostDType: HostDType): number {
  const { source, key } = from?.locate?.(fromKey) ?? { source: from, key: fromKey };
  const n = numel(shape);
  if (dtype === 'int32') return n * 4;
  if (hostDType === 'float16') return n * 2;
  if (source instanceof SafetensorsFile && source.has(key)) {
    const d = source.entry(key).dtype;
    return n * (d === 'F16' || d === 'BF16' ? 2 : Math.min(DTYPE_SIZE[d], 4));
  }
  return n * F32;
}

/** Activations of one sampling step: CFG batch 2 over the latent tokens of sample_size. */
function samplingActivations(w: ConditionedDiffusionModelWrapper): { bytes: number; detail: string } {
  const c = w.config.model.diffusion.config as { embed_dim?: number; depth?: number; num_heads?: number; _latent_seq_len?: number };
  const d = c.embed_dim ?? 768;
  const depth = c.depth ?? 12;
  const mmdit = w.config.model.diffusion.type === 'mmdit';
  // MMDiT: the timestep token + the latents it was trained on; its head count is embed_dim / num_heads (quirk 6).
  const L = mmdit ? (c._latent_seq_len ?? 237) : latentLength(w.config) + 1;
  const heads = mmdit ? Math.floor(d / (c.num_heads ?? 8)) : (c.num_heads ?? 8);
  const S = mmdit ? L : Math.max(L, MAX_CONTEXT_TOKENS);
  const B = w.crossAttnCondIds.length ? 2 : 1;
  // Block outputs stay alive until the end of the transformer's tidy (depth), plus one block's temporaries and scores.
  const bytes = F32 * (B * L * d * (depth + BLOCK_ACTIVATIONS) + B * heads * L * S);
  return { bytes, detail: `one step, batch ${B} × ${L} tokens × ${d}` };
}

function clipActivations(m: CLIPVisionTransformer, frames: number): number {
  const [tokens, hidden] = m.getSubmodule('embeddings.position_embedding').parameterManifest().weight;
  const layers = m.getSubmodule('encoder.layers').children.size;
  return F32 * frames * tokens * hidden * (layers + 32);
}

/** The plan for one mode (see `chooseMemoryPlan`). */
export function planMemory(w: ConditionedDiffusionModelWrapper, mode: WeightMode, opts: PlanOptions): MemoryPlan {
  const { perStep, perGeneration } = streamableUnits(w);
  const extra = opts.extra ?? [];
  const units = mode === 'resident' ? [] : [...perStep, ...perGeneration];
  const hostUnits = mode === 'host' ? perStep : [];
  const pinned = new Set(hostUnits);
  const extraUnits = mode === 'resident' ? [] : extra.flatMap((e) => e.streamable);
  const streamed = new Set([...units, ...extraUnits].filter((u) => !pinned.has(u)));
  const inUse = opts.inUse ?? backendBytes();
  let hostBytes = 0;
  for (const u of units) {
    if (pinned.has(u)) continue;
    for (const [k, p] of u.namedTensors()) hostBytes += hostTensorBytes(`${u.path}.${k}`, p.shape, p.dtype, opts.source, opts.hostDType ?? 'keep');
  }
  // Host-placed units: their weight operands in host memory as float32, the rest resident; loading one
  // takes its torch-layout upload and derivation on the backend once.
  const hostPlaced = hostUnits.reduce((n, u) => n + hostableBytes(u), 0);
  hostBytes += hostPlaced;
  const pinLoad = Math.max(0, ...hostUnits.map(unitPeakBytes));
  for (const u of extraUnits) {
    for (const [, p] of u.namedTensors()) hostBytes += hostTensorBytes('', p.shape, p.dtype, undefined, opts.hostDType ?? 'keep');
  }
  const modules = [w, ...extra.map((e) => e.module)];
  const residentBytes =
    modules.reduce((n, m) => n + residentWeightBytes(m), 0) -
    [...streamed].reduce((n, u) => n + residentWeightBytes(u), 0) -
    hostPlaced;
  const upload = (m: Module) => (streamed.has(m) ? unitPeakBytes(m) : 0);

  const samplesCfg = w.config.sample_size;
  const frames = Math.ceil(((w.config.video_fps ?? 5) * samplesCfg) / w.config.sample_rate);
  const cond: { bytes: number; detail: string }[] = [{ bytes: 0, detail: 'nothing to encode' }];
  // Activations of T5 (≤ 128 tokens) are negligible; the Synchformer's (frames + one segment) are not.
  for (const e of extra) {
    if (e.module instanceof Synchformer) {
      const syncFrames = windowFrameCount(CONDITIONING_SECONDS, SYNC_FPS);
      const m = e.module.vfeat_extractor;
      cond.push({ bytes: upload(m) + syncFeatureBytes(m.config, syncFrames), detail: `Synchformer over ${syncFrames} frames` });
    } else for (const u of e.streamable) if (streamed.has(u)) cond.push({ bytes: unitPeakBytes(u), detail: `streamed ${u.constructor.name}` });
  }
  for (const m of perGeneration) {
    if (m instanceof CLIPVisionTransformer) cond.push({ bytes: upload(m) + clipActivations(m, frames), detail: `CLIP over ${frames} frames` });
    if (m instanceof OobleckEncoder) cond.push({ bytes: upload(m) + encodeMemoryEstimate(m, samplesCfg), detail: `VAE encode of ${samplesCfg} samples` });
  }
  const conditioning = cond.reduce((a, b) => (b.bytes > a.bytes ? b : a));

  const act = samplingActivations(w);
  const block = Math.max(0, ...perStep.map(upload));
  const sampling = { bytes: block + act.bytes, detail: act.detail + (block ? `, + ${formatBytes(block)} for one streamed block` : '') };

  const decoder = w.pretransform.model.decoder;
  const T = w.latentLength(samplesCfg);
  const avail = opts.budget.bytes - inUse - residentBytes - upload(decoder);
  const full = decodeMemoryEstimate(decoder, T);
  const chunked = full > avail && T > DECODE_CHUNK;
  const decoding = {
    bytes: upload(decoder) + (chunked ? decodeMemoryEstimate(decoder, DECODE_CHUNK) : full),
    detail: chunked ? `VAE decode in ${DECODE_CHUNK}-latent windows` : `VAE decode of ${T} latents`,
  };

  const phases: MemoryPhase[] = [
    { name: 'conditioning', ...conditioning },
    { name: 'sampling', ...sampling },
    { name: 'decoding', ...decoding },
  ];
  const peak = inUse + Math.max(residentBytes + Math.max(...phases.map((p) => p.bytes)), pinLoad);
  const hostBudget = opts.hostBudget ?? defaultHostBudget(opts.budget, peak);
  return {
    mode,
    backend: opts.budget.backend,
    budget: opts.budget.bytes,
    inUse,
    residentBytes,
    hostBytes,
    hostBudget,
    phases,
    peak,
    fits: peak <= opts.budget.bytes && hostBytes <= hostBudget,
    units,
    hostUnits,
  };
}

export function describePlan(p: MemoryPlan): string {
  const lines = [
    `${p.mode}: peak ${formatBytes(p.peak)} of the ${p.backend} budget ${formatBytes(p.budget)}` +
      ` (${formatBytes(p.residentBytes)} resident weights${p.inUse ? `, ${formatBytes(p.inUse)} already in use` : ''})`,
    ...p.phases.map((ph) => `  ${ph.name}: + ${formatBytes(ph.bytes)} (${ph.detail})`),
  ];
  if (p.mode === 'host') {
    lines.push(
      `  ${p.hostUnits.length} transformer blocks with their weight operands in host memory, ${p.units.length - p.hostUnits.length} streamed modules: ` +
        `${formatBytes(p.hostBytes)} of ${formatBytes(p.hostBudget)} host memory`,
    );
  }
  if (p.mode === 'streamed') lines.push(`  host copies of ${p.units.length} streamed modules: ${formatBytes(p.hostBytes)} of ${formatBytes(p.hostBudget)} host memory`);
  return lines.join('\n');
}

/**
 * Resident when it fits, streamed otherwise (or the forced mode); throws a MemoryPlanError naming
 * the numbers and the alternatives when nothing fits.
 */
export function chooseMemoryPlan(
  w: ConditionedDiffusionModelWrapper,
  what: string,
  opts: PlanOptions & { mode?: WeightMode | 'auto' },
): MemoryPlan {
  if (opts.mode === 'host' && !opts.hostTensors) {
    throw new Error(`model "${what}": host-resident weights need the wasm backend with the native BLAS addon (\`audiox doctor\` tells why it is off); stream the weights instead`);
  }
  const modes: WeightMode[] =
    !opts.mode || opts.mode === 'auto' ? (opts.hostTensors ? ['resident', 'host', 'streamed'] : ['resident', 'streamed']) : [opts.mode];
  const plans = modes.map((m) => planMemory(w, m, opts));
  const ok = plans.find((p) => p.fits);
  if (ok) return ok;
  const hints = [
    modes.length === 1 && modes[0] === 'resident' ? 'weight streaming (AUDIOX_STREAM_WEIGHTS=1 or loadModel({ streamWeights: true }))' : '',
    plans.some((p) => p.mode !== 'resident' && p.peak <= p.budget && p.hostBytes > p.hostBudget)
      ? 'half-precision host copies (AUDIOX_STREAM_FP16=1 / hostDType "float16"; lossy for float32 checkpoints) or more RAM'
      : '',
    'a backend with more memory (tensorflow: ¾ of host RAM; tensorflow-gpu: set AUDIOX_GPU_MEMORY_GB)',
    'freeing other models first',
  ].filter(Boolean);
  throw new MemoryPlanError(
    `model "${what}" does not fit in memory:\n${plans.map(describePlan).join('\n')}\nAlternatives: ${hints.join('; ')}. See README "Memory".`,
    plans,
  );
}
