// Pluggable randomness with named streams, so that every random draw of a generation can be
// reproduced from a seed or injected (parity with the reference's recorded draws).
import * as tf from '@tensorflow/tfjs';

/**
 * - `initial`: the starting noise of the sampler
 * - `sde`: the per-step draws of the SDE samplers (call order)
 * - `vae`: the VAE bottleneck's reparameterisation noise
 * - `mask`: the mel conditioner's random masking (uniform `rand` and integer `randint` draws)
 * - `inpaint`: the per-step re-noising of the init latents when inpainting with a mask
 */
export type NoiseStream = 'initial' | 'sde' | 'vae' | 'mask' | 'inpaint';

/** Where the samplers, the VAE and the conditioners get their random draws, by stream. */
export interface NoiseSource {
  /** Standard normal draws of the given shape. */
  randn(stream: NoiseStream, shape: number[]): tf.Tensor;
  /** Uniform [0, 1) draws. */
  rand(stream: NoiseStream, shape: number[]): tf.Tensor;
  /** Uniform integers in [low, high). */
  randint(stream: NoiseStream, low: number, high: number, shape: number[]): tf.Tensor;
}

/** A small, fast, well-distributed 32-bit PRNG (sfc32) seeded through splitmix32. */
class Sfc32 {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.next();
  }
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    return ((this.next() >>> 5) * 67108864 + (this.next() >>> 6)) / 9007199254740992;
  }
}

function hashStream(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Seeded noise, reproducible across runs and backends (drawn on the host). Streams are independent. */
export class SeededNoise implements NoiseSource {
  private readonly gens = new Map<NoiseStream, Sfc32>();
  /**
   * @param seed An integer in [0, 2³²); every stream has its own generator derived from it.
   * @throws Error for any other seed.
   */
  constructor(readonly seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
  }
  private gen(stream: NoiseStream): Sfc32 {
    let g = this.gens.get(stream);
    if (!g) {
      g = new Sfc32((this.seed ^ hashStream(stream)) >>> 0);
      this.gens.set(stream, g);
    }
    return g;
  }
  randn(stream: NoiseStream, shape: number[]): tf.Tensor {
    const g = this.gen(stream);
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      // Box–Muller; 1 − u keeps the log argument in (0, 1].
      const r = Math.sqrt(-2 * Math.log(1 - g.uniform()));
      const th = 2 * Math.PI * g.uniform();
      out[i] = r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = r * Math.sin(th);
    }
    return tf.tensor(out, shape);
  }
  rand(stream: NoiseStream, shape: number[]): tf.Tensor {
    const g = this.gen(stream);
    const n = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(Float32Array.from({ length: n }, () => g.uniform()), shape);
  }
  randint(stream: NoiseStream, low: number, high: number, shape: number[]): tf.Tensor {
    if (!(high > low)) throw new Error(`randint: empty range [${low}, ${high})`);
    const g = this.gen(stream);
    const n = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(Int32Array.from({ length: n }, () => low + Math.floor(g.uniform() * (high - low))), shape, 'int32');
  }
}

/**
 * Replays recorded draws: each stream is a queue of tensors consumed in call order. A draw whose
 * shape differs from the next recorded tensor, or a draw from an exhausted stream, is an error —
 * unless a `fallback` source is given for streams that were not recorded.
 */
export class InjectedNoise implements NoiseSource {
  private readonly queues = new Map<NoiseStream, tf.Tensor[]>();
  /**
   * @param streams Recorded draws per stream: one tensor, or a queue of them in call order.
   * @param fallback Source for the streams not recorded (without it, drawing from one throws).
   */
  constructor(
    streams: Partial<Record<NoiseStream, tf.Tensor | tf.Tensor[]>>,
    private readonly fallback?: NoiseSource,
  ) {
    for (const [k, v] of Object.entries(streams)) {
      if (v) this.queues.set(k as NoiseStream, Array.isArray(v) ? [...v] : [v]);
    }
  }
  private take(stream: NoiseStream, shape: number[], kind: string): tf.Tensor | null {
    const q = this.queues.get(stream);
    if (!q) return null;
    const t = q.shift();
    if (!t) throw new Error(`injected noise stream "${stream}" is exhausted (a ${kind} draw of shape [${shape}] was requested)`);
    if (t.shape.join(',') !== shape.join(',')) {
      throw new Error(`injected noise stream "${stream}": next draw has shape [${t.shape}], but [${shape}] was requested`);
    }
    return t.clone();
  }
  /** How many recorded draws of a stream are still unused. */
  remaining(stream: NoiseStream): number {
    return this.queues.get(stream)?.length ?? 0;
  }
  private missing(stream: NoiseStream): NoiseSource {
    if (!this.fallback) throw new Error(`no injected draws for noise stream "${stream}" and no fallback source`);
    return this.fallback;
  }
  randn(stream: NoiseStream, shape: number[]): tf.Tensor {
    return this.take(stream, shape, 'randn') ?? this.missing(stream).randn(stream, shape);
  }
  rand(stream: NoiseStream, shape: number[]): tf.Tensor {
    return this.take(stream, shape, 'rand') ?? this.missing(stream).rand(stream, shape);
  }
  randint(stream: NoiseStream, low: number, high: number, shape: number[]): tf.Tensor {
    return this.take(stream, shape, 'randint') ?? this.missing(stream).randint(stream, low, high, shape);
  }
}
