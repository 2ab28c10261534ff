// `audiox inspect`: one sampling step with module outputs captured and saved as safetensors.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/io/safetensors.ts';
import { listDir, tempDir } from '../pipeline/media-helpers.ts';
import { tinyMMDiTConfig, writeModelDir } from '../models/tiny-model-dir.ts';
import { runCli } from './run-cli.ts';

let dir: string;

beforeAll(() => {
  dir = tempDir('inspect');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('audiox inspect (demo model)', () => {
  it('captures the named modules into <out>/captures.safetensors', async () => {
    const out = path.join(dir, 'caps');
    const r = await runCli([
      'inspect', '--model', 'demo', '--prompt', 'rain on a tin roof', '--seconds', '1', '--seed', '5',
      '--capture', 'model.model.transformer.layers.0', 'conditioner.conditioners.text_prompt', 'maf_block',
      '--out', out,
    ]);
    expect(r.code).toBe(0);
    expect(listDir(out)).toEqual(['captures.safetensors']);
    const f = SafetensorsFile.open(path.join(out, 'captures.safetensors'));
    try {
      expect(f.keys().sort()).toEqual([
        'conditioner.conditioners.text_prompt#embedding',
        'conditioner.conditioners.text_prompt#mask',
        'maf_block#audio',
        'maf_block#text',
        'maf_block#video',
        'model.model.transformer.layers.0', // one step, one (batched-CFG) call
      ]);
      // [cond ; uncond] × (1 prepended timestep token + 215 latents) × embed_dim 64
      expect(f.shape('model.model.transformer.layers.0')).toEqual([2, 216, 64]);
      expect(f.shape('conditioner.conditioners.text_prompt#embedding')).toEqual([1, 32, 32]);
      const meta = f.metadata;
      expect(meta.model).toBe('demo');
      expect(JSON.parse(meta.params)).toMatchObject({ steps: 1, seed: 5, prompt: 'rain on a tin roof' });
      const layer = f.read('model.model.transformer.layers.0');
      expect((layer.dataSync() as Float32Array).every(Number.isFinite)).toBe(true);
      layer.dispose();
    } finally {
      f.close();
    }
    expect(r.stdout).toMatch(/model\.model\.transformer\.layers\.0 {2}\[2, 216, 64\] float32/);
    expect(r.stdout).toContain(`wrote ${path.join(out, 'captures.safetensors')}`);
  });

  it('--per-path writes one file per module', async () => {
    const out = path.join(dir, 'per-path');
    const r = await runCli(['inspect', '--model', 'demo', '--seconds', '1', '--capture', 'model.model.transformer', 'pretransform.model.decoder', '--per-path', '--out', out]);
    expect(r.code).toBe(0);
    expect(listDir(out)).toEqual(['model.model.transformer.safetensors', 'pretransform.model.decoder.safetensors']);
  });

  it('an unknown path fails before the model loads, naming the valid ones; nothing is written', async () => {
    const out = path.join(dir, 'bad');
    const r = await runCli(['inspect', '--model', 'demo', '--capture', 'model.model.transformer.layerz.0', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /unknown module path "model\.model\.transformer\.layerz\.0": "model\.model\.transformer" has no child "layerz"; valid: .*model\.model\.transformer\.layers/,
    );
    expect(fs.existsSync(out)).toBe(false);
    const top = await runCli(['inspect', '--model', 'demo', '--capture', 'dit', '--out', out]);
    expect(top.stderr).toMatch(/there is no top-level module "dit"; valid: model, conditioner, pretransform, maf_block/);
  });

  it('--list prints the module paths (under a prefix)', async () => {
    const r = await runCli(['inspect', '--model', 'demo', '--list', 'model.model.transformer.layers.1']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('model.model.transformer.layers.1');
    expect(lines).toContain('model.model.transformer.layers.1.cross_attn.to_kv');
    expect(lines.every((l) => l.startsWith('model.model.transformer.layers.1'))).toBe(true);
  });

  it('says the model computes in float32, naming the model_half keys it does not apply and keys nothing reads', async () => {
    const demo = await runCli(['inspect', '--model', 'demo', '--list', 'maf_block']);
    expect(demo.stderr).toContain('precision: float32 everywhere (config.json sets no model_half)');
    const model = path.join(dir, 'half');
    const config = tinyMMDiTConfig({ not_a_key: true });
    config.model.pretransform.model_half = true;
    await writeModelDir(model, config);
    const r = await runCli(['inspect', '--model', model, '--list', 'pretransform']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('pretransform');
    expect(r.stderr).toContain('precision: float32 everywhere; config.json asks for half precision (model.pretransform.model_half), which is not applied');
    expect(r.stderr).toContain('config keys not read by audiox-ts: model.conditioning.configs[audio_autoencoder_v2].config.not_a_key');
  });
});
