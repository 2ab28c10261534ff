// Weight streaming: some submodules ("units", e.g. the transformer blocks of the diffusion model)
// keep their weights as host arrays and are made resident on the backend only while their
// `forward` runs: upload the unit's torch-layout tensors → its declared derivations (transposes,
// folds; nn/residency.ts) → forward → dispose all of it. Everything else stays resident as usual.
// Numerically identical to resident execution (same tensors, same ops); the cost is one upload per
// call. After the first call, a unit whose derivations all declare `exportDerived`/`importDerived`
// keeps the tensors its forward reads in their final layout instead: later calls upload those and
// install them without deriving again (no transposes, no folds). A unit's state is its `residency`.
import * as tf from '@tensorflow/tfjs';
import { bf16ToF32, decodeBytes, f16ToF32, f32ToBf16, f32ToF16, halfBitsTensor, SafetensorsFile, type TensorSource } from '../io/safetensors.ts';
import { kernelRegistered, TO_HOST } from './kernels.ts';
import { Module, ViewLoad, type LoadOptions, type LoadReport, type Parameter } from './module.ts';
import type { Placement, WeightDerivation, WeightResidency } from './residency.ts';
import { backendBytes } from './runtime.ts';

/** How host copies are kept: 'keep' = the checkpoint's precision (f16/bf16 stay 2 bytes, lossless); 'float16' = rounded to f16 (lossy, half of f32). */
export type HostDType = 'keep' | 'float16';

/** One tensor kept on the host. `f16`/`bf16` are raw half-precision bits, widened at upload. */
interface HostTensor {
  shape: number[];
  encoding: 'f32' | 'f16' | 'bf16' | 'i32';
  data: Float32Array | Uint16Array | Int32Array;
}

/** A unit's tensors in the layout its forward reads (see `exportDerived`), captured after its first load. */
interface Derived {
  params: Map<Parameter, HostTensor>;
  /** What each derivation of the unit exported, in `derivations(unit)` order. */
  modules: Record<string, HostTensor>[];
}

/** Counters of the streamed forwards since the last reset (tests, benchmarks, `--verbose`). */
export const streamStats = {
  uploads: 0,
  uploadedBytes: 0,
  uploadMs: 0,
  /** Uploads of derived tensors that skipped `derive` (a subset of `uploads`). */
  derivedUploads: 0,
  /** Highest backend bytes (`backendBytes()`) seen while a unit was resident (sampled after upload and after its forward). */
  peakBytes: 0,
  reset(): void {
    this.uploads = this.uploadedBytes = this.uploadMs = this.derivedUploads = this.peakBytes = 0;
  },
};

export function isStreamed(m: Module): boolean {
  return m.placement === 'streamed';
}

/** Bytes the streamed units of `root` hold on the host. */
export function hostBytes(root: Module): number {
  let n = 0;
  for (const [, m] of root.namedModules()) n += m.residency?.hostBytes() ?? 0;
  return n;
}

/** The declared derivations of a unit's modules, parents first (the order `finishLoad` runs them). */
function derivations(unit: Module): WeightDerivation[] {
  const out: WeightDerivation[] = [];
  for (const [, m] of unit.namedModules()) {
    const d = m.derivation();
    if (d) out.push(d);
  }
  return out;
}

const HALF = [
  ['f16', f32ToF16, f16ToF32],
  ['bf16', f32ToBf16, bf16ToF32],
] as const;

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** A backend tensor's values as a host tensor, as half-precision bits where that is lossless (bit-exact). */
function toHost(t: tf.Tensor): HostTensor {
  const data = t.dataSync();
  if (t.dtype === 'int32') return { shape: t.shape, encoding: 'i32', data: data as Int32Array };
  const f32 = data as Float32Array;
  for (const [encoding, narrow, widen] of HALF) {
    const head = f32.subarray(0, 1024); // most f32-only tensors fail here, before a full conversion
    if (!sameBits(widen(narrow(head)), head)) continue;
    const half = narrow(f32);
    if (sameBits(widen(half), f32)) return { shape: t.shape, encoding, data: half };
  }
  return { shape: t.shape, encoding: 'f32', data: f32 };
}

function sample(): void {
  streamStats.peakBytes = Math.max(streamStats.peakBytes, backendBytes());
}

function upload(h: HostTensor): tf.Tensor {
  switch (h.encoding) {
    case 'f32':
      return tf.tensor(h.data as Float32Array, h.shape, 'float32');
    case 'f16':
      return halfBitsTensor(h.data as Uint16Array, h.shape);
    case 'bf16':
      return tf.tensor(bf16ToF32(h.data as Uint16Array), h.shape, 'float32');
    case 'i32':
      return tf.tensor(h.data as Int32Array, h.shape, 'int32');
  }
}

/**
 * The residency of a streamed unit: its weights on the host, uploaded for the duration of each forward.
 * Once the unit has been derived, and when every derivation in it declares `exportDerived`/`importDerived`,
 * the host copies are the derived tensors in their final layout and later uploads skip `derive`.
 */
class StreamedWeights implements WeightResidency {
  placement: Placement = 'streamed';
  /** Bytes moved to host memory by `pin` (the 'host' placement). */
  pinnedBytes = 0;
  /** Torch-layout tensors; emptied once `derived` is captured. */
  readonly tensors = new Map<Parameter, HostTensor>();
  private derived: Derived | null = null;
  /** > 0 while resident (re-entrant calls, e.g. a unit inside a unit, upload once). */
  private depth = 0;
  private readonly cacheable: boolean;

  constructor(readonly unit: Module) {
    this.cacheable = derivations(unit).every((d) => d.exportDerived && d.importDerived);
  }

  hostBytes(): number {
    let n = this.pinnedBytes;
    for (const h of this.tensors.values()) n += h.data.byteLength;
    for (const h of this.derived?.params.values() ?? []) n += h.data.byteLength;
    for (const rec of this.derived?.modules ?? []) for (const h of Object.values(rec)) n += h.data.byteLength;
    return n;
  }

  run<T>(fn: () => T): T {
    if (this.depth > 0 || this.placement === 'host') return fn();
    const t0 = performance.now();
    try {
      this.install();
    } catch (e) {
      this.unit.dispose();
      throw e;
    }
    streamStats.uploads++;
    streamStats.uploadMs += performance.now() - t0;
    sample();
    this.depth++;
    try {
      const out = fn();
      sample();
      return out;
    } finally {
      this.depth--;
      this.unit.dispose(); // its parameters and, through onDispose, what was derived from them
    }
  }

  /**
   * The 'host' placement: uploads and derives the unit once, moves every derived tensor its derivations
   * declare `hostable` into host memory (TO_HOST: the backend's product kernels read them in place) and
   * keeps the rest resident; forwards then run with no upload. The host copies are dropped. The modules
   * `views` reads (pure re-layouts, see ViewLoad) are not uploaded nor derived: their views come from the
   * source, the hostable ones straight into host memory.
   */
  pin(views?: ViewLoad): void {
    this.install(false, views?.install);
    const direct = new Set(views?.installed);
    let moved = 0;
    try {
      for (const [, m] of this.unit.namedModules()) {
        const d = m.derivation();
        if (!d?.hostable?.length) continue;
        if (direct.has(m)) {
          for (const h of d.hostable) moved += h.elements * 4;
          continue;
        }
        if (!d.exportDerived || !d.importDerived) throw new Error(`${this.unit.path}: a derivation declares hostable tensors but cannot export them`);
        const hostable = new Set(d.hostable.map((h) => h.name));
        const next: Record<string, tf.Tensor> = {};
        for (const [k, t] of Object.entries(d.exportDerived().tensors)) {
          if (!hostable.has(k)) {
            next[k] = t.clone();
            continue;
          }
          next[k] = tf.engine().runKernel(TO_HOST, { x: t }) as tf.Tensor;
          moved += t.size * 4;
        }
        d.importDerived(next); // releases the exported tensors
      }
    } catch (e) {
      this.unit.dispose();
      throw e;
    }
    this.tensors.clear();
    this.derived = null;
    this.pinnedBytes = moved;
    this.placement = 'host';
    sample();
  }

  private install(capture = true, hook?: (m: Module, d: WeightDerivation) => boolean): void {
    if (this.derived) {
      installDerived(this.derived, derivations(this.unit));
      streamStats.derivedUploads++;
      return;
    }
    const uploaded = new Map<Parameter, tf.Tensor>();
    for (const [p, h] of this.tensors) {
      p.set(upload(h));
      uploaded.set(p, p.value);
      streamStats.uploadedBytes += h.data.byteLength;
    }
    this.unit.finishLoad(undefined, hook);
    if (this.cacheable && capture) {
      this.derived = this.capture(uploaded);
      this.tensors.clear();
    }
  }

  /**
   * Right after the first derivation: what each module derived (`exportDerived`) and the parameters its
   * forward still reads, in their current values (a parent's `rewrite` may have changed them; unchanged
   * ones keep their host copy).
   */
  private capture(uploaded: Map<Parameter, tf.Tensor>): Derived {
    const unused = new Set<Parameter>();
    const modules = derivations(this.unit).map((d) => {
      const x = d.exportDerived!();
      for (const p of x.unused ?? []) unused.add(p);
      const rec: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(x.tensors)) rec[k] = toHost(t);
      return rec;
    });
    const params = new Map<Parameter, HostTensor>();
    for (const [p, h] of this.tensors) {
      if (!p.loaded || unused.has(p)) continue;
      params.set(p, p.value === uploaded.get(p) ? h : toHost(p.value));
    }
    return { params, modules };
  }
}

/** Uploads the captured tensors of a unit and installs them (parameters, then each derivation's, in order). */
function installDerived(d: Derived, ds: WeightDerivation[]): void {
  for (const [p, h] of d.params) {
    p.set(upload(h));
    streamStats.uploadedBytes += h.data.byteLength;
  }
  const records = d.modules;
  if (records.length !== ds.length) throw new Error(`streamed unit changed its derivations (${records.length} captured, ${ds.length} now)`);
  records.forEach((rec, i) => {
    const tensors: Record<string, tf.Tensor> = {};
    try {
      for (const [k, h] of Object.entries(rec)) {
        tensors[k] = tf.keep(upload(h));
        streamStats.uploadedBytes += h.data.byteLength;
      }
      ds[i].importDerived!(tensors);
    } catch (e) {
      tf.dispose(Object.values(tensors));
      throw e;
    }
  });
}

/**
 * Runs `fn` with the weights of `unit` usable: for a streamed unit not yet resident, uploads them and
 * disposes them (and everything derived from them) afterwards, also when `fn` throws; otherwise just `fn()`.
 */
export function withResident<T>(unit: Module, fn: () => T): T {
  return unit.residency ? unit.residency.run(fn) : fn();
}

/** Reads one tensor into host memory; a safetensors file is read as raw bytes (no backend tensor). */
function readHost(from: TensorSource, fromKey: string, hostDType: HostDType): HostTensor {
  const { source, key } = from.locate?.(fromKey) ?? { source: from, key: fromKey };
  let h: HostTensor;
  if (source instanceof SafetensorsFile) {
    const { dtype, shape } = source.entry(key);
    const bytes = source.readBytes(key); // a fresh, aligned buffer
    if (dtype === 'F32') h = { shape, encoding: 'f32', data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
    else if (dtype === 'F16' || dtype === 'BF16') {
      h = { shape, encoding: dtype === 'F16' ? 'f16' : 'bf16', data: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) };
    } else {
      const data = decodeBytes(bytes, dtype, `${source.file}: tensor "${key}"`);
      h = { shape, encoding: data instanceof Float32Array ? 'f32' : 'i32', data };
    }
  } else {
    const t = source.read(key);
    try {
      const data = t.dataSync();
      h = { shape: t.shape, encoding: t.dtype === 'float32' ? 'f32' : 'i32', data: data as Float32Array | Int32Array };
    } finally {
      t.dispose();
    }
  }
  if (hostDType === 'float16' && h.encoding === 'f32') h = { ...h, encoding: 'f16', data: f32ToF16(h.data as Float32Array) };
  return h;
}

export interface StreamedLoadOptions extends LoadOptions {
  /** Precision of the host copies of streamed weights (default 'keep'). */
  hostDType?: HostDType;
  /**
   * Abort (dispose what was loaded, throw) as soon as the backend holds more than this many bytes
   * (`backendBytes()`): a last line of defence behind the memory plan.
   */
  maxBackendBytes?: number;
  /**
   * Units (among the streamed ones) placed 'host' instead: derived once at the end of the load, their
   * products' weight operands in host memory read in place, the rest resident (`pin`).
   */
  hostUnits?: readonly Module[];
}

/**
 * `root.loadStateDict(source)` where the tensors of `streamedUnits` (descendants of `root`) go to
 * host memory instead of the backend and those units are marked streamed: their `forward` then
 * runs under `withResident`. Same strict key check; tensors are read one by one.
 */
export function loadStateDictStreamed(
  root: Module,
  source: TensorSource,
  streamedUnits: readonly Module[],
  opts: StreamedLoadOptions = {},
): LoadReport {
  const { prefix = '', hostDType = 'keep', maxBackendBytes = Infinity, hostUnits = [] } = opts;
  const pinned = new Set(hostUnits);
  for (const m of pinned) if (!streamedUnits.includes(m)) throw new Error(`host unit "${m.path}" is not among the streamed units`);
  if (pinned.size && !kernelRegistered(TO_HOST)) {
    throw new Error(`host-resident weights need the ${TO_HOST} kernel (wasm with the native BLAS addon); stream the weights instead`);
  }
  const owner = new Map<Parameter, StreamedWeights>();
  const fresh: StreamedWeights[] = [];
  const inside = new Set([...root.namedModules()].map(([, m]) => m));
  for (const m of streamedUnits) {
    if (!inside.has(m) || m === root) throw new Error(`streamed unit "${m.path}" is not a submodule of the loaded module`);
    if (m.residency) throw new Error(`${m.path}: already streamed`);
    const u = new StreamedWeights(m);
    for (const [, p] of m.namedTensors()) {
      if (owner.has(p)) throw new Error(`streamed units overlap at "${m.path}"`);
      owner.set(p, u);
    }
    fresh.push(u);
  }
  const report = root.checkStateDict(source, opts);
  const check = (what: string) => {
    const used = backendBytes();
    if (used > maxBackendBytes) {
      throw new Error(`loading ${what} brought the backend to ${used} bytes, over the planned maximum of ${maxBackendBytes}`);
    }
  };
  const skip = new Set(streamedUnits);
  try {
    const views = new ViewLoad(root, source, report, prefix, skip, (m) => check(`"${m.path}"`));
    // inside the host units: pure re-layouts read from the source in their final layout, hostable views to host memory
    const hostViews = pinned.size ? new ViewLoad(root, source, report, prefix, new Set(), (m) => check(`"${m.path}"`), pinned) : null;
    for (const [k, p] of root.namedTensors()) {
      const key = prefix + k;
      if (!views.present(p) || views.viewed.has(p) || hostViews?.viewed.has(p)) continue;
      const u = owner.get(p);
      if (u) u.tensors.set(p, readHost(source, key, hostDType));
      else p.set(source.read(key));
      report.loaded.push(key);
      check(`"${key}"`);
    }
    root.finishLoad(skip, views.install);
    for (const u of fresh) {
      if (!pinned.has(u.unit)) continue;
      u.pin(hostViews ?? undefined);
      check(`"${u.unit.path}" (host placement)`);
    }
  } catch (e) {
    root.dispose();
    throw e;
  }
  for (const u of fresh) u.unit.residency = u;
  return report;
}

/**
 * Moves already loaded modules to host memory and marks them streamed. Only for modules whose
 * derivations keep every tensor loaded (e.g. T5, the Synchformer); one that released its
 * torch-layout tensors (TransposedLinear) must be loaded with `loadStateDictStreamed` instead.
 */
export function offloadToHost(streamedUnits: readonly Module[], hostDType: HostDType = 'keep'): void {
  for (const m of streamedUnits) {
    if (m.residency) throw new Error(`${m.path}: already streamed`);
    const tensors: [string, Parameter][] = [...m.namedTensors()].filter(([, p]) => p.loaded || !p.optional);
    const released = tensors.filter(([, p]) => !p.loaded).map(([k]) => k);
    if (released.length) {
      throw new Error(`cannot offload ${m.constructor.name} "${m.path}": ${released.slice(0, 3).join(', ')} not loaded (released by its derivation?)`);
    }
    const u = new StreamedWeights(m);
    for (const [, p] of tensors) {
      const t = p.value;
      let h: HostTensor = { shape: t.shape, encoding: t.dtype === 'float32' ? 'f32' : 'i32', data: t.dataSync() as Float32Array | Int32Array };
      if (hostDType === 'float16' && h.encoding === 'f32') h = { ...h, encoding: 'f16', data: f32ToF16(h.data as Float32Array) };
      u.tensors.set(p, h);
    }
    m.dispose();
    m.residency = u;
  }
}

/** Drops the host copies of the streamed units under `root` (after `root.dispose()`). */
export function releaseStreamed(root: Module): void {
  // (host-placed units' weights are backend tensors of the module: its dispose() frees them)
  for (const [, m] of root.namedModules()) if (m.residency instanceof StreamedWeights) m.residency = null;
}
