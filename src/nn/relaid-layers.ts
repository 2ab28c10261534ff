// Generic layers whose torch-layout weights are re-laid out once at load (declared derivations, residency.ts),
// so that every forward is one plain native op: a Linear kept as Wᵀ, a channels-last Conv1d kept as a tf filter.
import * as tf from '@tensorflow/tfjs';
import { Module, type Parameter } from './module.ts';
import { viewOf, type DerivedTensors, type DerivedView, type WeightDerivation } from './residency.ts';

/**
 * torch.nn.Linear (weight [out, in] in the state dict) computed as x·Wᵀ with Wᵀ materialised once
 * at load time; the torch-layout tensor is then released so the weights are held only once.
 * `chunks` > 1 splits the output features into equal contiguous parts (torch `.chunk(n, -1)`),
 * each its own matmul, so q/k/v or value/gate come out without slicing.
 */
export class TransposedLinear extends Module {
  /** The state dict's `weight` [out, in]; released once derived (`loaded` is false afterwards). */
  readonly weight: Parameter;
  /** The state dict's `bias` [out], or null without one; released once derived. */
  readonly bias: Parameter | null;
  private parts: { w: tf.Tensor2D; b: tf.Tensor1D | null }[] = [];
  /**
   * @param inFeatures input features (the last axis of x)
   * @param outFeatures output features, all chunks together
   * @param opts `bias` (default true); `chunks` (default 1) equal parts of the outputs; throws unless they divide outFeatures
   */
  constructor(
    /** Input features. */
    readonly inFeatures: number,
    /** Output features of all chunks together. */
    readonly outFeatures: number,
    opts: { bias?: boolean; chunks?: number } = {},
  ) {
    super();
    this.chunks = opts.chunks ?? 1;
    if (outFeatures % this.chunks !== 0) throw new Error(`${outFeatures} outputs do not split into ${this.chunks} chunks`);
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : this.param('bias', [outFeatures]);
  }
  /** Number of equal output parts, each its own product. */
  readonly chunks: number;

  /** Each chunk's rows of the torch weight, transposed to [in, n], replace it (and the bias's rows the bias). */
  override derivation(): WeightDerivation {
    const n = this.outFeatures / this.chunks;
    const views: DerivedView[] = [];
    for (let i = 0; i < this.chunks; i++) {
      views.push({ name: `w${i}`, source: this.weight, rows: [i * n, n], transpose: true });
      if (this.bias) views.push({ name: `b${i}`, source: this.bias, rows: [i * n, n] });
    }
    return {
      mode: 'replace',
      sources: this.bias ? [this.weight, this.bias] : [this.weight],
      views,
      hostable: views.filter((v) => v.transpose).map((v) => ({ name: v.name, source: this.weight, elements: n * this.inFeatures })),
      derive: () => {
        if (!this.weight.loaded) return; // already derived by an earlier load
        const tensors: Record<string, tf.Tensor> = {};
        for (const v of views) tensors[v.name] = viewOf(v.source.value, v);
        this.installParts(tensors);
        this.weight.dispose();
        this.bias?.dispose();
      },
      exportDerived: (): DerivedTensors => {
        const tensors: Record<string, tf.Tensor> = {};
        this.parts.forEach(({ w, b }, i) => {
          tensors[`w${i}`] = w;
          if (b) tensors[`b${i}`] = b;
        });
        return { tensors };
      },
      importDerived: (t) => this.installParts(t),
    };
  }
  protected override onDispose(): void {
    this.releaseParts();
  }
  private installParts(t: Record<string, tf.Tensor>): void {
    this.releaseParts();
    this.parts = Array.from({ length: this.chunks }, (_, i) => ({
      w: tf.keep(t[`w${i}`] as tf.Tensor2D),
      b: t[`b${i}`] ? tf.keep(t[`b${i}`] as tf.Tensor1D) : null,
    }));
  }
  private releaseParts(): void {
    for (const p of this.parts) tf.dispose([p.w, ...(p.b ? [p.b] : [])]);
    this.parts = [];
  }

  /** [..., in] → one [..., out/chunks] tensor per chunk. */
  forwardChunks(x: tf.Tensor): tf.Tensor[] {
    if (!this.parts.length) throw new Error(`${this.path || 'TransposedLinear'}: weights not loaded`);
    const inF = x.shape[x.rank - 1];
    if (inF !== this.inFeatures) {
      throw new Error(`${this.path || 'TransposedLinear'}: expected ${this.inFeatures} input features, got [${x.shape}]`);
    }
    return tf.tidy(() => {
      const x2 = x.reshape([-1, inF]);
      const lead = x.shape.slice(0, -1);
      return this.parts.map(({ w, b }) => {
        const y = tf.matMul(x2, w);
        return (b ? y.add(b) : y).reshape([...lead, w.shape[1]]);
      });
    });
  }
  /** [..., in] → [..., out] (the chunks concatenated); throws when the weights are not loaded or the features differ. */
  forward(x: tf.Tensor): tf.Tensor {
    const ys = this.forwardChunks(x);
    if (ys.length === 1) return ys[0];
    return tf.tidy(() => tf.concat(ys, -1));
  }
}

/**
 * nn.Conv1d applied channels-last ([B, L, Cin] → [B, L', Cout]), torch weight [Cout, Cin, k]: one
 * tf conv1d (a native GEMM-based kernel, with no im2col stack on the wasm heap), its filter
 * [k, Cin, Cout] derived once at load time (the torch-layout copy is then released).
 */
export class ChannelLastConv1d extends Module {
  /** The state dict's `weight` [Cout, Cin, k]; released once derived. */
  readonly weight: Parameter;
  /** The state dict's `bias` [Cout], or null without one; released once derived. */
  readonly bias: Parameter | null;
  private folded: { filter: tf.Tensor3D; b: tf.Tensor1D | null } | null = null;
  /**
   * @param inChannels Cin
   * @param outChannels Cout
   * @param kernelSize k (stride 1)
   * @param padding zero samples added on each side of L
   * @param opts `bias` (default true)
   */
  constructor(
    /** Input channels (Cin). */
    readonly inChannels: number,
    /** Output channels (Cout). */
    readonly outChannels: number,
    /** Kernel width k. */
    readonly kernelSize: number,
    /** Zero padding on each side, in samples. */
    readonly padding: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param('weight', [outChannels, inChannels, kernelSize]);
    this.bias = opts.bias === false ? null : this.param('bias', [outChannels]);
  }

  /** The filter [k, Cin, Cout] (and a copy of the bias) replace the torch-layout tensors. */
  override derivation(): WeightDerivation {
    return {
      mode: 'replace',
      sources: this.bias ? [this.weight, this.bias] : [this.weight],
      hostable: [{ name: 'filter', source: this.weight, elements: this.outChannels * this.inChannels * this.kernelSize }],
      derive: () => {
        if (!this.weight.loaded) return; // already derived by an earlier load
        this.onDispose();
        const w = this.weight.value;
        this.folded = {
          filter: tf.tidy(() => w.transpose([2, 1, 0]) as tf.Tensor3D),
          b: this.bias ? tf.keep(this.bias.value.clone() as tf.Tensor1D) : null,
        };
        this.weight.dispose();
        this.bias?.dispose();
      },
      exportDerived: (): DerivedTensors => {
        const f = this.folded;
        if (!f) throw new Error(`${this.path || 'ChannelLastConv1d'}: weights not loaded`);
        return { tensors: f.b ? { filter: f.filter, b: f.b } : { filter: f.filter } };
      },
      importDerived: (t) => {
        this.onDispose();
        this.folded = { filter: tf.keep(t.filter as tf.Tensor3D), b: t.b ? tf.keep(t.b as tf.Tensor1D) : null };
      },
    };
  }

  protected override onDispose(): void {
    if (this.folded) tf.dispose([this.folded.filter, ...(this.folded.b ? [this.folded.b] : [])]);
    this.folded = null;
  }

  /** [B, L, Cin] → [B, L + 2·padding − k + 1, Cout]; throws when the weights are not loaded or the shape differs. */
  forward(x: tf.Tensor): tf.Tensor {
    const f = this.folded;
    if (!f) throw new Error(`${this.path || 'ChannelLastConv1d'}: weights not loaded`);
    if (x.rank !== 3 || x.shape[2] !== this.inChannels) {
      throw new Error(`${this.path || 'ChannelLastConv1d'}: expected [B, L, ${this.inChannels}], got [${x.shape}]`);
    }
    return tf.tidy(() => {
      const p = this.padding;
      const y = tf.conv1d(x as tf.Tensor3D, f.filter, 1, p ? [[0, 0], [0, 0], [p, p], [0, 0]] : 'valid');
      return f.b ? y.add(f.b) : y;
    });
  }
}
