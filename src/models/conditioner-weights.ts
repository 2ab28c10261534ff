// Weights of an audio conditioner's own autoencoder that the main checkpoint may not carry. The reference
// loads them when it builds the conditioner, from the entry's `pretransform_ckpt_path` (AudioX-MAF-MMDiT:
// VAE.ckpt), and then copies model.ckpt over the model key by key (copy_state_dict), so model.ckpt wins
// wherever it has a key. Here: each key missing from model.safetensors is taken from that file's
// conversion (or from VAE.safetensors, what `audiox download` leaves), and nothing is missing silently.
import fs from 'node:fs';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { SafetensorsFile, type TensorSource } from '../io/safetensors.ts';
import { AutoencoderPretransform } from './vae/pretransform.ts';
import type { ConditionedDiffusionModelWrapper } from './wrapper.ts';

/** Where `audiox download AudioX-MAF-MMDiT` puts the converted VAE.ckpt. */
export const VAE_FILE = 'VAE.safetensors';

/** A weights file a conditioner needs (VAE, T5, Synchformer) is missing; the message says how to get it. */
export class MissingWeightsError extends Error {}

/**
 * Key layouts a VAE checkpoint may have, for a model key `conditioner.conditioners.<id>.pretransform.<rest>`
 * (rest = `model.encoder.…`). The first is what the reference's strict `load_state_dict` accepts.
 */
const LAYOUTS: { name: string; key: (id: string, rest: string) => string }[] = [
  { name: 'AutoencoderPretransform state dict', key: (_, rest) => rest },
  { name: 'autoencoder state dict', key: (_, rest) => rest.replace(/^model\./, '') },
  { name: 'autoencoder training checkpoint', key: (_, rest) => `autoencoder.${rest.replace(/^model\./, '')}` },
  { name: 'full model checkpoint', key: (id, rest) => `conditioner.conditioners.${id}.pretransform.${rest}` },
];

/** The main source, with the keys it lacks taken from other sources. */
export class OverlaySource implements TensorSource {
  constructor(
    private readonly main: TensorSource,
    private readonly extra: ReadonlyMap<string, { source: TensorSource; key: string }>,
  ) {}
  keys(): string[] {
    return [...this.main.keys(), ...[...this.extra.keys()].filter((k) => !this.main.has(k))];
  }
  has(key: string): boolean {
    return this.main.has(key) || this.extra.has(key);
  }
  locate(key: string): { source: TensorSource; key: string } {
    if (this.main.has(key)) return this.main.locate?.(key) ?? { source: this.main, key };
    const e = this.extra.get(key);
    if (!e) throw new Error(`no tensor "${key}"`);
    return e;
  }
  shape(key: string): number[] {
    const { source, key: k } = this.locate(key);
    return source.shape(k);
  }
  read(key: string): tf.Tensor {
    const { source, key: k } = this.locate(key);
    return source.read(k);
  }
}

export interface ConditionerWeights {
  /** What to load the wrapper from: `main`, or an overlay of it. */
  source: TensorSource;
  /** Files the missing keys come from (kept open until `close`). */
  files: string[];
  close(): void;
}

/** The files that may hold a conditioner's autoencoder weights, in order of preference. */
export function vaeFileCandidates(dir: string, ckptPath: string | undefined): string[] {
  const out: string[] = [];
  const add = (p: string) => {
    if (/\.(ckpt|pth|pt|bin)$/i.test(p)) out.push(p.replace(/\.[^./\\]+$/, '.safetensors'));
    out.push(p);
  };
  if (ckptPath) {
    add(path.resolve(dir, ckptPath));
    add(path.join(dir, path.basename(ckptPath))); // the reference's paths are relative to its own checkout
  }
  out.push(path.join(dir, VAE_FILE));
  return [...new Set(out)];
}

function listKeys(keys: string[], n = 3): string {
  return keys.length <= n ? keys.join(', ') : `${keys.slice(0, n).join(', ')}, … and ${keys.length - n} more`;
}

export interface ResolveOptions {
  /** The model's name, for the error message. */
  name: string;
  dir: string;
  /** The main checkpoint's path, for the error message. */
  mainFile: string;
  /** What to tell the user to run when weights are missing. */
  fix: string;
}

/**
 * The main checkpoint, completed with the autoencoder weights of audio conditioners that it lacks.
 * Throws MissingWeightsError naming the missing keys and the files looked in when no file has them.
 */
export function withConditionerWeights(wrapper: ConditionedDiffusionModelWrapper, main: TensorSource, o: ResolveOptions): ConditionerWeights {
  const extra = new Map<string, { source: TensorSource; key: string }>();
  const opened = new Map<string, SafetensorsFile>();
  const close = () => {
    for (const f of opened.values()) f.close();
    opened.clear();
  };
  const open = (file: string): SafetensorsFile => {
    let f = opened.get(file);
    if (!f) {
      f = SafetensorsFile.open(file);
      opened.set(file, f);
    }
    return f;
  };
  const used = new Set<string>();
  try {
    for (const entry of wrapper.config.model.conditioning.configs) {
      const pretransform = (wrapper.conditioner.conditioners.entries.get(entry.id) as { pretransform?: unknown } | undefined)?.pretransform;
      if (!(pretransform instanceof AutoencoderPretransform)) continue;
      const prefix = `conditioner.conditioners.${entry.id}.pretransform.`;
      const needed = [...pretransform.namedTensors()].filter(([, p]) => !p.optional).map(([k]) => k);
      const missing = needed.filter((k) => !main.has(prefix + k));
      if (!missing.length) continue;

      const ckptPath = (entry.config as { pretransform_ckpt_path?: unknown }).pretransform_ckpt_path;
      const candidates = vaeFileCandidates(o.dir, typeof ckptPath === 'string' && ckptPath ? ckptPath : undefined);
      const looked: string[] = [];
      let found = false;
      for (const file of candidates) {
        if (!fs.existsSync(file)) {
          looked.push(`${file} (absent)`);
          continue;
        }
        if (!file.endsWith('.safetensors')) {
          looked.push(`${file} (a PyTorch checkpoint: convert it with \`audiox convert ${file} ${file.replace(/\.[^./\\]+$/, '.safetensors')}\`)`);
          continue;
        }
        const f = open(file);
        let best = { layout: LAYOUTS[0], hits: -1 };
        for (const layout of LAYOUTS) {
          const hits = missing.filter((k) => f.has(layout.key(entry.id, k))).length;
          if (hits > best.hits) best = { layout, hits };
        }
        if (best.hits === missing.length) {
          for (const k of missing) extra.set(prefix + k, { source: f, key: best.layout.key(entry.id, k) });
          used.add(file);
          found = true;
          break;
        }
        looked.push(`${file} (has ${best.hits} of the ${missing.length} keys)`);
      }
      if (!found) {
        const where = ckptPath ? ` (its pretransform_ckpt_path is ${JSON.stringify(ckptPath)})` : '';
        throw new MissingWeightsError(
          `model "${o.name}": the weights of the "${entry.id}" conditioner's autoencoder${where} are missing: ` +
            `${missing.length} keys are not in ${o.mainFile} (${listKeys(missing.map((k) => prefix + k))}), ` +
            `and no VAE file has them: looked in ${looked.join('; ')}. ${o.fix}`,
        );
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  if (!extra.size) {
    close();
    return { source: main, files: [], close: () => {} };
  }
  return { source: new OverlaySource(main, extra), files: [...used], close };
}
