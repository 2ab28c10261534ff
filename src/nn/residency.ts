// Weight residency as a declared contract. A layer that transforms its parameters at load says so
// (`Module.derivation()`): how the tensors its forward reads are derived, from which parameters, whether
// they can be cached in their final layout, and — for pure re-layouts — which views of which parameter they
// are. Where a module's weights live between forwards is its `residency` (null: on the backend), set by the
// loader from the memory plan. The loader, weight streaming (streaming.ts) and the memory planner
// (models/memory.ts) read these declarations; nothing is inferred from a module's class or prototype.
import type * as tf from '@tensorflow/tfjs';
import { relaid, type LayoutView } from '../io/safetensors.ts';
import type { Parameter } from './module.ts';

/**
 * - `replace`: the derived tensors replace their sources, which are released (the weights are held once);
 * - `copy`: the derived tensors sit next to their sources (one more copy of them on the backend);
 * - `rewrite`: the sources (a child's parameters) are rewritten in place before the child derives its own;
 * - `computed`: tensors computed from the configuration, not from parameters (negligible size).
 */
export type DerivationMode = 'replace' | 'copy' | 'rewrite' | 'computed';

/** What a derivation produced, for streaming's cache (see `WeightDerivation.exportDerived`). */
export interface DerivedTensors {
  /** The derived tensors by the names `importDerived` takes. */
  tensors: Record<string, tf.Tensor>;
  /** Own parameters that `forward` does not read once the derived tensors are installed. */
  unused?: Parameter[];
}

export type { LayoutView };

/** One derived tensor that is a view of one source parameter (see `WeightDerivation.views`). */
export interface DerivedView extends LayoutView {
  /** Key under which `importDerived` takes it. */
  name: string;
  /** The parameter it is a view of. */
  source: Parameter;
}

/**
 * A derived tensor that the module's forward reads only as the weight operand of a matrix product
 * (`tf.matMul(x, w)`) or as the filter of a 1-D convolution: such a tensor may live in host memory
 * (nn/kernels.ts TO_HOST) where the backend's kernels read it in place.
 */
export interface HostableTensor {
  /** Its key in `exportDerived` / `importDerived`. */
  name: string;
  /** The parameter it is derived from (for the memory plan: its elements, or a share of them). */
  source: Parameter;
  /** Its elements. */
  elements: number;
}

/** How a module derives the tensors its forward reads from its parameters (`Module.derivation()`). */
export interface WeightDerivation {
  /** Whether the derived tensors replace, copy or rewrite their sources, or are computed (see DerivationMode). */
  readonly mode: DerivationMode;
  /** The parameters the derivation reads (own or a descendant's); `copy` holds one more copy of them. */
  readonly sources: readonly Parameter[];
  /** Runs once every tensor is loaded, parents before children. */
  derive(): void;
  /**
   * The derived tensors in the layout `forward` reads (references) and the own parameters it no longer
   * reads. With `importDerived`, lets a streamed module keep its final layout on the host; without,
   * a streamed module re-derives after every upload.
   */
  exportDerived?(): DerivedTensors;
  /** Installs tensors as `exportDerived` names them (taking ownership), instead of deriving. */
  importDerived?(tensors: Record<string, tf.Tensor>): void;
  /**
   * Set when every derived tensor is a re-layout of a source (`replace` only): a loader may read the
   * sources directly in these layouts (no torch-layout tensor on the backend, no `derive`) and install
   * them with `importDerived`.
   */
  readonly views?: readonly DerivedView[];
  /** The derived tensors read only as a product's weight operand (see HostableTensor). */
  readonly hostable?: readonly HostableTensor[];
}

/**
 * Where a module's weights live between its forwards: on the backend, in host memory uploaded per forward,
 * or with the weight operands of its products in host memory read in place by the backend's kernels.
 */
export type Placement = 'resident' | 'streamed' | 'host';

/** The holder of a module's weights when they do not simply stay on the backend. */
export interface WeightResidency {
  /** Where the weights are between forwards. */
  readonly placement: Placement;
  /** Runs `call` (the module's forward) with the module's weights usable, releasing them afterwards if needed. */
  run<T>(call: () => T): T;
  /** Host (non-backend) bytes it holds. */
  hostBytes(): number;
}

/** The view of a [rows, …] tensor `t` as a new tensor, with tf ops (the fallback when a source cannot read views). */
export const viewOf = relaid;
