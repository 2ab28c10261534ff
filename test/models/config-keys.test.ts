// Every key of the released configs is read or documented as ignored (README "Config keys we do not read").
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_KEYS_IGNORED,
  CONFIG_KEYS_READ,
  configKeyPaths,
  configReport,
  halfPrecisionKeys,
  keyStatus,
  matchingPatterns,
  precisionNote,
  unreadKeys,
} from '../../src/models/config-keys.ts';
import { validateConfig } from '../../src/models/config.ts';
import { FIXTURES, REPO } from '../helpers.ts';
import { tinyMMDiTConfig } from './tiny-model-dir.ts';

/** The released configs: the reference manifests' configs and this project's copies. */
const RELEASED = [
  ...fs.readdirSync(path.join(FIXTURES, 'manifests')).filter((f) => f.endsWith('.config.json')).map((f) => path.join(FIXTURES, 'manifests', f)),
  ...fs.readdirSync(path.join(REPO, 'configs')).filter((f) => f.endsWith('.json')).map((f) => path.join(REPO, 'configs', f)),
];
const read = (f: string): unknown => JSON.parse(fs.readFileSync(f, 'utf8'));

/** The keys listed in README's "Config keys we do not read" (the backticked lead of each bullet). */
function readmeIgnored(): string[] {
  const text = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = text.indexOf('### Config keys we do not read');
  expect(start).toBeGreaterThan(0);
  const section = text.slice(start).split(/\n#{2,3} /)[0];
  return [...section.matchAll(/^- `([^`]+)`/gm)].map((m) => m[1]);
}

describe('config keys', () => {
  it('finds the released configs', () => {
    expect(RELEASED.length).toBeGreaterThanOrEqual(6);
  });

  it.each(RELEASED.map((f) => [`${path.basename(path.dirname(f))}/${path.basename(f)}`, f]))('every key of %s is read or documented as ignored', (_n, file) => {
    const keys = configKeyPaths(read(file));
    expect(keys.length).toBeGreaterThan(50);
    expect(keys.filter((k) => keyStatus(k).status === 'unknown')).toEqual([]);
  });

  it('the demo config (project-only size keys) is fully read too', () => {
    expect(unreadKeys(read(path.join(REPO, 'configs/demo/config.json')))).toEqual([]);
  });

  it('each ignored pattern matches a key of a released config, and no key is both read and ignored', () => {
    const all = new Set(RELEASED.flatMap((f) => configKeyPaths(read(f))));
    for (const pattern of Object.keys(CONFIG_KEYS_IGNORED)) {
      expect([...all].some((k) => keyStatus(k).status === 'ignored' && (keyStatus(k) as { pattern: string }).pattern === pattern), pattern).toBe(true);
    }
    const both = [...all].filter((k) => {
      const m = matchingPatterns(k);
      return m.read.length > 0 && m.ignored.length > 0;
    });
    expect(both).toEqual([]);
    expect(Object.keys(CONFIG_KEYS_READ).length).toBeGreaterThan(40);
  });

  it('README lists exactly the ignored keys', () => {
    expect(readmeIgnored().sort()).toEqual(Object.keys(CONFIG_KEYS_IGNORED).map((p) => p.replace(/^\*\*\./, '')).sort());
  });

  it('walks conditioner entries by type and reports unknown keys of a custom config', () => {
    const c = tinyMMDiTConfig({ pretransform_ckpt_path: 'VAE.ckpt', surprise: 1 }) as unknown as Record<string, unknown>;
    c.training = { lr: 1e-4 };
    const keys = configKeyPaths(c);
    expect(keys).toContain('model.conditioning.configs[audio_autoencoder_v2].config.pretransform_ckpt_path');
    expect(keys).toContain('model.diffusion.cross_attention_cond_ids');
    expect(keyStatus('model.conditioning.configs[audio_autoencoder_v2].config.pretransform_ckpt_path').status).toBe('read');
    expect(keyStatus('model.conditioning.configs[t5].config.t5_model_name').status).toBe('read');
    expect(unreadKeys(c)).toEqual(['model.conditioning.configs[audio_autoencoder_v2].config.surprise', 'training.lr']);
  });
});

describe('model_half', () => {
  it('is found wherever it is set, and reported as not applied', () => {
    const c = tinyMMDiTConfig();
    expect(halfPrecisionKeys(c)).toEqual([]);
    expect(precisionNote(c)).toBe('precision: float32 everywhere (config.json sets no model_half)');
    c.model.pretransform.model_half = true;
    (c.model.conditioning.configs[0].config.pretransform_config as { model_half?: boolean }).model_half = true;
    validateConfig(c);
    expect(halfPrecisionKeys(c)).toEqual(['model.pretransform.model_half', 'model.conditioning.configs[0].config.pretransform_config.model_half']);
    expect(configReport(c)).toEqual([
      'precision: float32 everywhere; config.json asks for half precision (model.pretransform.model_half, ' +
        'model.conditioning.configs[0].config.pretransform_config.model_half), which is not applied',
    ]);
    expect(keyStatus('model.pretransform.model_half').status).toBe('read');
  });
});
