// Module base: a tree of named children whose parameter paths are exactly the PyTorch state-dict
// keys, strict state-dict loading, parameter manifests without allocation, and output capture.
import * as tf from '@tensorflow/tfjs';
import { readViewsWithOps, type TensorSource } from '../io/safetensors.ts';
import { TO_HOST } from './kernels.ts';
import { type DerivedView, type Placement, type WeightDerivation, type WeightResidency } from './residency.ts';

export type { DerivedTensors } from './residency.ts';

/** A tensor shape, outermost axis first (torch order). */
export type Shape = number[];
/** A trained parameter, or a buffer (a saved constant such as rotary `inv_freq`), as torch distinguishes them. */
export type ParamKind = 'parameter' | 'buffer';
/** The dtypes a parameter is held in on the backend (checkpoint halves are widened to float32). */
export type ParamDType = 'float32' | 'int32';

/** One named tensor slot of a module (a parameter or a buffer), empty until loaded. */
export class Parameter {
  private tensor: tf.Tensor | null = null;
  /**
   * @param shape The shape every value must have.
   * @param kind Parameter or buffer.
   * @param dtype The dtype values are cast to when set.
   */
  constructor(
    readonly shape: Shape,
    readonly kind: ParamKind = 'parameter',
    readonly dtype: ParamDType = 'float32',
    /** Buffers that PyTorch does not persist (or that the reference may omit) may be missing. */
    readonly optional = false,
    /**
     * Whether the reference's state dict holds this tensor. An optional buffer is by default one
     * that torch does not persist (HF `position_ids`); a persisted buffer that older checkpoints
     * may lack (rotary `inv_freq`, quirk 18) sets this to true.
     */
    readonly persistent = !optional,
  ) {}

  /** Whether a value has been set. */
  get loaded(): boolean {
    return this.tensor !== null;
  }

  /** The tensor (owned by the parameter); throws when read before it is loaded. */
  get value(): tf.Tensor {
    if (!this.tensor) throw new Error('parameter read before it was loaded (call loadStateDict or init first)');
    return this.tensor;
  }

  /**
   * Takes ownership of `t` (cast to `dtype` if needed) and disposes the previous value.
   * @throws Error when `t`'s shape is not `shape`.
   */
  set(t: tf.Tensor): void {
    if (!sameShape(t.shape, this.shape)) {
      throw new Error(`shape mismatch: expected [${this.shape}], got [${t.shape}]`);
    }
    const v = t.dtype === this.dtype ? t : tf.tidy(() => t.cast(this.dtype));
    if (v !== t) t.dispose();
    this.tensor?.dispose();
    this.tensor = tf.keep(v);
  }

  /** Frees the value; the parameter is empty again. */
  dispose(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }
}

/** Whether two shapes are equal axis by axis. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Options of `Module.loadStateDict` and `Module.checkStateDict`. */
export interface LoadOptions {
  /** Throw on missing / unexpected keys and shape mismatches (default true). */
  strict?: boolean;
  /** Key prefix in the source for this module (e.g. "model.model."). */
  prefix?: string;
  /** Keys under these prefixes in the source are ignored instead of reported as unexpected. */
  ignorePrefixes?: string[];
}

/** What a state-dict load found, by source key. */
export interface LoadReport {
  /** Keys read into parameters. */
  loaded: string[];
  /** Keys the module needs that the source lacks. */
  missing: string[];
  /** Keys of the source that no parameter takes. */
  unexpected: string[];
  /** Keys present with another shape than the parameter's. */
  mismatched: { key: string; expected: Shape; found: Shape }[];
}

/** Thrown by a strict load when the weights do not fit the module; the message lists the keys. */
export class StateDictError extends Error {
  /**
   * @param report The load's findings (also kept as `report`).
   * @param what What was being loaded, for the message ("model", a file name).
   */
  constructor(readonly report: LoadReport, what: string) {
    const lines: string[] = [];
    const list = (title: string, items: string[]) => {
      if (!items.length) return;
      lines.push(`${title} (${items.length}):`);
      for (const i of items.slice(0, 30)) lines.push(`  ${i}`);
      if (items.length > 30) lines.push(`  … and ${items.length - 30} more`);
    };
    list('missing keys', report.missing);
    list('unexpected keys', report.unexpected);
    list(
      'shape mismatches',
      report.mismatched.map((m) => `${m.key}: expected [${m.expected}], found [${m.found}]`),
    );
    super(`state dict does not match ${what}:\n${lines.join('\n')}`);
  }
}

/** Outputs recorded during a capture, by module path (k-th repeated call: `path.k`, k ≥ 1). */
export type Captures = Record<string, tf.Tensor>;

interface CaptureContext {
  wanted: Set<string>;
  all: boolean;
  out: Captures;
  counts: Map<string, number>;
}

let captureCtx: CaptureContext | null = null;

function captureOutput(path: string, value: unknown): void {
  const ctx = captureCtx;
  if (!ctx || !(ctx.all || ctx.wanted.has(path))) return;
  const tensors: [string, tf.Tensor][] = [];
  if (value instanceof tf.Tensor) tensors.push(['', value]);
  else if (Array.isArray(value)) {
    value.forEach((v, i) => v instanceof tf.Tensor && tensors.push([`#${i}`, v]));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (v instanceof tf.Tensor) tensors.push([`#${k}`, v]);
  }
  const n = ctx.counts.get(path) ?? 0;
  ctx.counts.set(path, n + 1);
  for (const [suffix, t] of tensors) {
    const key = `${path}${suffix}${n ? `.${n}` : ''}`;
    ctx.out[key] = tf.keep(t.clone());
  }
}

/**
 * A tree of named children and tensors whose dotted paths are the reference's PyTorch state-dict keys, with
 * strict loading, parameter manifests without allocation and output capture by module path.
 */
export abstract class Module {
  private readonly _children = new Map<string, Module>();
  private readonly _params = new Map<string, Parameter>();
  private _parent: Module | null = null;
  private _name = '';

  /** Registers a child; calls to its `forward` are recorded under its path while capturing. */
  protected module<M extends Module>(name: string, m: M): M {
    if (this._children.has(name) || this._params.has(name)) throw new Error(`duplicate member name "${name}"`);
    m._parent = this;
    m._name = name;
    this._children.set(name, m);
    const f = (m as unknown as { forward?: (...a: unknown[]) => unknown }).forward;
    if (typeof f === 'function' && !Object.prototype.hasOwnProperty.call(m, 'forward')) {
      Object.defineProperty(m, 'forward', {
        value: (...args: unknown[]) => {
          const out = m.residency ? m.residency.run(() => f.apply(m, args)) : f.apply(m, args);
          if (captureCtx) captureOutput(m.path, out);
          return out;
        },
        configurable: true,
        writable: true,
      });
    }
    return m;
  }

  protected param(name: string, shape: Shape, dtype: ParamDType = 'float32'): Parameter {
    return this.addTensor(name, new Parameter(shape, 'parameter', dtype));
  }

  protected buffer(name: string, shape: Shape, dtype: ParamDType = 'float32', optional = false, persistent = !optional): Parameter {
    return this.addTensor(name, new Parameter(shape, 'buffer', dtype, optional, persistent));
  }

  private addTensor(name: string, p: Parameter): Parameter {
    if (this._children.has(name) || this._params.has(name)) throw new Error(`duplicate member name "${name}"`);
    this._params.set(name, p);
    return p;
  }

  /**
   * Where this module's weights live between forwards (null: resident on the backend). Set by the
   * loader (weight streaming, src/nn/streaming.ts); every call of the module's `forward` as a registered
   * child runs through it.
   */
  residency: WeightResidency | null = null;

  /** Where the weights live now: 'resident' unless a residency (weight streaming) says otherwise. */
  get placement(): Placement {
    return this.residency?.placement ?? 'resident';
  }

  /** The module this one is registered in (null for a root). */
  get parentModule(): Module | null {
    return this._parent;
  }

  /** Full dotted path from the root (empty for the root). */
  get path(): string {
    const parts: string[] = [];
    for (let m: Module | null = this; m && m._parent; m = m._parent) parts.unshift(m._name);
    return parts.join('.');
  }

  /** The direct children by name. */
  get children(): ReadonlyMap<string, Module> {
    return this._children;
  }

  /** This module and every descendant with its dotted path (this one first, under `prefix`). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, c] of this._children) yield* c.namedModules(prefix ? `${prefix}.${n}` : n);
  }

  /** Every parameter and buffer of the subtree with its state-dict key (under `prefix`). */
  *namedTensors(prefix = ''): Generator<[string, Parameter]> {
    for (const [n, p] of this._params) yield [prefix ? `${prefix}.${n}` : n, p];
    for (const [n, c] of this._children) yield* c.namedTensors(prefix ? `${prefix}.${n}` : n);
  }

  /**
   * The descendant at a dotted path relative to this module ('' is this module).
   * @throws Error naming the missing part and the children there.
   */
  getSubmodule(path: string): Module {
    let m: Module = this;
    for (const part of path.split('.').filter(Boolean)) {
      const c = m._children.get(part);
      if (!c) throw new Error(`no module "${path}" (missing "${part}"; children: ${[...m._children.keys()].join(', ')})`);
      m = c;
    }
    return m;
  }

  /**
   * `{key: shape}` of every parameter and buffer, without allocating anything. `optional: false`
   * drops every optional buffer; `persistent: true` drops only those the reference does not save
   * (the keys of a released checkpoint).
   */
  parameterManifest(opts: { buffers?: boolean; optional?: boolean; persistent?: boolean } = {}): Record<string, Shape> {
    const out: Record<string, Shape> = {};
    for (const [k, p] of this.namedTensors()) {
      if (p.kind === 'buffer' && opts.buffers === false) continue;
      if (p.optional && opts.optional === false) continue;
      if (!p.persistent && opts.persistent === true) continue;
      out[k] = [...p.shape];
    }
    return out;
  }

  /** Number of float32-equivalent bytes the module's tensors occupy once loaded. */
  parameterBytes(): number {
    let n = 0;
    for (const [, p] of this.namedTensors()) n += p.shape.reduce((a, b) => a * b, 1) * 4;
    return n;
  }

  /**
   * Loads tensors by state-dict key. Strict by default: every missing key, unexpected key under
   * the prefix and shape mismatch is reported in one error; nothing is silently skipped.
   */
  loadStateDict(source: TensorSource, opts: LoadOptions = {}): LoadReport {
    const { prefix = '' } = opts;
    const report = this.checkStateDict(source, opts);
    const views = new ViewLoad(this, source, report, prefix, new Set());
    for (const [k, p] of this.namedTensors()) {
      const key = prefix + k;
      if (!views.present(p) || views.viewed.has(p)) continue;
      p.set(source.read(key));
      report.loaded.push(key);
    }
    this.finishLoad(new Set(), views.install);
    return report;
  }

  /**
   * The key check of `loadStateDict` without reading any tensor: missing / unexpected keys and
   * shape mismatches (`loaded` stays empty). Strict by default: throws one error listing them all.
   */
  checkStateDict(source: TensorSource, opts: LoadOptions = {}): LoadReport {
    const { strict = true, prefix = '', ignorePrefixes = [] } = opts;
    const report: LoadReport = { loaded: [], missing: [], unexpected: [], mismatched: [] };
    const expected = new Map(this.namedTensors());
    for (const [k, p] of expected) {
      const key = prefix + k;
      if (!source.has(key)) {
        if (!p.optional) report.missing.push(key);
        continue;
      }
      const shape = source.shape(key);
      if (!sameShape(shape, p.shape)) report.mismatched.push({ key, expected: p.shape, found: shape });
    }
    for (const key of source.keys()) {
      if (!key.startsWith(prefix) || ignorePrefixes.some((ip) => key.startsWith(ip))) continue;
      if (!expected.has(key.slice(prefix.length))) report.unexpected.push(key);
    }
    if (strict && (report.missing.length || report.unexpected.length || report.mismatched.length)) {
      throw new StateDictError(report, this.constructor.name);
    }
    return report;
  }

  /**
   * Runs the declared derivation of this module and its descendants (parents first), as loading does
   * once every tensor is set; the subtrees rooted at the modules in `skip` are left out. `install`
   * may take over a module's derivation (returning true), e.g. to install views read from a source.
   */
  finishLoad(skip?: ReadonlySet<Module>, install?: (m: Module, d: WeightDerivation) => boolean): void {
    if (skip?.has(this)) return;
    const d = this.derivation();
    if (d && !install?.(this, d)) d.derive();
    for (const c of this._children.values()) c.finishLoad(skip, install);
  }

  /** Fills every parameter from a generator (synthetic / random weights). */
  initWeights(init: (key: string, p: Parameter) => tf.Tensor): void {
    for (const [k, p] of this.namedTensors()) p.set(init(k, p));
    this.finishLoad();
  }

  /**
   * How this module derives what its forward reads from its loaded parameters (src/nn/residency.ts);
   * null (the default): it reads them as loaded. Loading runs `derive`; streaming and the memory
   * planner read the rest of the declaration. Tensors derived here are released in `onDispose`.
   */
  derivation(): WeightDerivation | null {
    return null;
  }

  /** Returns the loaded tensors by key (references, not copies). */
  stateDict(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [k, p] of this.namedTensors()) if (p.loaded) out[k] = p.value;
    return out;
  }

  /** Frees every tensor of the subtree (parameters and derived ones); the modules stay usable for a new load. */
  dispose(): void {
    for (const [, p] of this.namedTensors()) p.dispose();
    for (const [, m] of this.namedModules()) m.onDispose();
  }

  protected onDispose(): void {}

  /**
   * Runs `fn` and returns its result together with the outputs of the named submodules (paths
   * relative to this module's root, i.e. state-dict paths; '*' captures every module). The
   * captured tensors are owned by the caller.
   */
  async capture<T>(paths: string[] | '*', fn: () => T | Promise<T>): Promise<{ result: T; captures: Captures }> {
    if (captureCtx) throw new Error('capture() calls cannot be nested');
    const root = this.path;
    const wanted = paths === '*' ? [] : paths.map((p) => (root ? `${root}.${p}` : p));
    if (paths !== '*') for (const p of paths) this.getSubmodule(p);
    const ctx: CaptureContext = { wanted: new Set(wanted), all: paths === '*', out: {}, counts: new Map() };
    captureCtx = ctx;
    try {
      const result = await fn();
      const captures: Captures = {};
      for (const [k, v] of Object.entries(ctx.out)) captures[root && k.startsWith(`${root}.`) ? k.slice(root.length + 1) : k] = v;
      return { result, captures };
    } catch (e) {
      for (const t of Object.values(ctx.out)) t.dispose();
      throw e;
    } finally {
      captureCtx = null;
    }
  }
}

/** A list of modules named 0, 1, 2, … like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  /** The children in order. */
  readonly items: M[];
  /** @param items The children, registered as "0", "1", …. */
  constructor(items: M[]) {
    super();
    this.items = items.map((m, i) => this.module(String(i), m));
  }
  /** Number of children. */
  get length(): number {
    return this.items.length;
  }
  /** The i-th child (undefined past the end, as an array's). */
  at(i: number): M {
    return this.items[i];
  }
}

/** A module with a one-tensor `forward`, as Sequential chains them. */
export interface UnaryModule extends Module {
  /** One tensor in, one out (owned by the caller). */
  forward(x: tf.Tensor): tf.Tensor;
}

/** torch.nn.Sequential: children named by index, applied in order. */
export class Sequential extends Module {
  /** The children in order. */
  readonly items: UnaryModule[];
  /** @param items The children, registered as "0", "1", …. */
  constructor(...items: UnaryModule[]) {
    super();
    this.items = items.map((m, i) => this.module(String(i), m));
  }
  /** Applies the children in order. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.items.reduce((h, m) => m.forward(h), x));
  }
}

/** Named children like torch.nn.ModuleDict (e.g. `conditioner.conditioners.<id>`). */
export class ModuleDict<M extends Module = Module> extends Module {
  /** The children by name, in insertion order. */
  readonly entries: Map<string, M> = new Map();
  /** @param items The children by name. */
  constructor(items: Record<string, M> | [string, M][] = {}) {
    super();
    for (const [k, m] of Array.isArray(items) ? items : Object.entries(items)) this.set(k, m);
  }
  /** Registers `m` under `name` (replacing any child of that name) and returns it. */
  set(name: string, m: M): M {
    this.entries.set(name, this.module(name, m));
    return m;
  }
  /** The child named `name`, if any. */
  get(name: string): M | undefined {
    return this.entries.get(name);
  }
}

/**
 * Loading weights straight into their derived layout: the parameters under `root` (outside `skip`) whose
 * module declares a `replace` derivation with views and `importDerived` — every source present in the
 * source, none rewritten by another derivation — are not read as parameters; `install` (a `finishLoad`
 * hook) reads their views (`TensorSource.readViews` where the source has it: one read per tensor, no
 * torch-layout tensor on the backend) and installs them instead of deriving.
 *
 * With `hostUnits` (the 'host' placement), only derivations inside those units are viewed, and the views a
 * derivation declares `hostable` are read as host-resident tensors (nn/kernels.ts TO_HOST): straight into
 * host memory where the source can (`TensorSource.readHostViews`), else read and then moved.
 */
export class ViewLoad {
  /** The parameters that are read as views (not loaded as parameters). */
  readonly viewed = new Set<Parameter>();
  /** The modules whose views `install` read and installed, in that order. */
  readonly installed: Module[] = [];
  private readonly keyOf = new Map<Parameter, string>();
  private readonly bad: Set<string>;

  /**
   * @param root The module tree being loaded.
   * @param source The weights.
   * @param report The load's report so far (its shape mismatches are never viewed; viewed keys are added to `loaded`).
   * @param prefix Key prefix of `root` in the source.
   * @param skip Subtrees left out (loaded another way).
   */
  constructor(
    root: Module,
    private readonly source: TensorSource,
    private readonly report: LoadReport,
    prefix: string,
    skip: ReadonlySet<Module>,
    /** Called after each module's views are installed (e.g. a memory check). */
    private readonly after: (m: Module) => void = () => {},
    /** Host-placed units: only their derivations are viewed, their hostable views read into host memory. */
    private readonly hostUnits: ReadonlySet<Module> | null = null,
  ) {
    for (const [k, p] of root.namedTensors()) this.keyOf.set(p, prefix + k);
    this.bad = new Set(report.mismatched.map((m) => m.key));
    const rewritten = new Set<Parameter>();
    const candidates: WeightDerivation[] = [];
    for (const [, m] of root.namedModules()) {
      if ([...skip].some((u) => u === m || isInside(m, u))) continue;
      const d = m.derivation();
      if (d?.mode === 'rewrite') for (const p of d.sources) rewritten.add(p);
      if (hostUnits && ![...hostUnits].some((u) => isInside(m, u))) continue;
      if (d?.mode === 'replace' && d.views && d.importDerived && d.sources.length) candidates.push(d);
    }
    for (const d of candidates) {
      if (d.sources.every((p) => this.present(p) && !rewritten.has(p) && d.views!.some((v) => v.source === p))) {
        for (const p of d.sources) this.viewed.add(p);
      }
    }
  }

  /** Whether the source holds `p` with the right shape. */
  present(p: Parameter): boolean {
    const key = this.keyOf.get(p);
    return key !== undefined && this.source.has(key) && !this.bad.has(key);
  }

  /**
   * The `finishLoad` hook: reads and installs `m`'s views when its derivation is viewed; false otherwise (the
   * module then derives as usual).
   * @throws Error naming the module when a read fails (nothing of it is kept).
   */
  readonly install = (m: Module, d: WeightDerivation): boolean => {
    if (!d.sources.length || !this.viewed.has(d.sources[0])) return false;
    const tensors: Record<string, tf.Tensor> = {};
    try {
      for (const p of d.sources) {
        const views = d.views!.filter((v) => v.source === p);
        const { source, key } = this.source.locate?.(this.keyOf.get(p)!) ?? { source: this.source, key: this.keyOf.get(p)! };
        const read = this.hostUnits ? this.readHost(source, key, views, d) : null;
        (read ?? (source.readViews ? source.readViews(key, views) : readViewsWithOps(source, key, views))).forEach(
          (t, i) => (tensors[views[i].name] = tf.keep(t)),
        );
      }
      d.importDerived!(tensors);
    } catch (e) {
      tf.dispose(Object.values(tensors));
      throw new Error(`${m.path || m.constructor.name}: reading its weights in the derived layout failed: ${(e as Error).message}`);
    }
    for (const p of d.sources) this.report.loaded.push(this.keyOf.get(p)!);
    this.installed.push(m);
    this.after(m);
    return true;
  };

  /**
   * The views of one source with the hostable ones host-resident, or null when none is hostable (read as
   * usual). Views all hostable are read straight into host memory where the source can.
   */
  private readHost(source: TensorSource, key: string, views: readonly DerivedView[], d: WeightDerivation): tf.Tensor[] | null {
    const hostable = new Set((d.hostable ?? []).map((h) => h.name));
    const toHost = views.map((v) => hostable.has(v.name));
    if (!toHost.some(Boolean)) return null;
    if (toHost.every(Boolean)) {
      const direct = source.readHostViews?.(key, views);
      if (direct) return direct;
    }
    const read = source.readViews ? source.readViews(key, views) : readViewsWithOps(source, key, views);
    const out: tf.Tensor[] = [];
    try {
      read.forEach((t, i) => out.push(toHost[i] ? (tf.engine().runKernel(TO_HOST, { x: t }) as tf.Tensor) : t));
    } catch (e) {
      tf.dispose([...out, ...read]);
      throw e;
    }
    tf.dispose(read.filter((_, i) => toHost[i]));
    return out;
  }
}

function isInside(m: Module, ancestor: Module): boolean {
  for (let x: Module | null = m; x; x = x.parentModule) if (x === ancestor) return true;
  return false;
}
