// `audiox serve` offers every cached model in its picker, custom conversions included: one converted earlier and one
// given with --model-config/--ckpt-path (converted at start-up, selected by default) are listed by /api/info and
// generate through the API; --server-name/--server-port are --host/--port; --share is refused with what to do instead.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWavHeader } from '../../src/io/wav.ts';
import { customConfig, writeTrainingCheckpoint } from '../models/custom-model-files.ts';
import { runCli, startCli } from '../cli/run-cli.ts';

let tmp = '';
let env: Record<string, string>;
let config = '';

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-serve-custom-'));
  env = { AUDIOX_HOME: path.join(tmp, 'home'), HF_ENDPOINT: 'http://127.0.0.1:9' };
  config = path.join(tmp, 'config.json');
  fs.writeFileSync(config, JSON.stringify(customConfig()));
  writeTrainingCheckpoint(path.join(tmp, 'earlier.ckpt'), customConfig());
  writeTrainingCheckpoint(path.join(tmp, 'finetune.ckpt'), customConfig(), { ema: false });
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('audiox serve with custom models', () => {
  it('lists cached and --model-config models in /api/info and runs a job on one', async () => {
    // A conversion already in the cache (as an earlier generate leaves it).
    const prep = await runCli(['inspect', '--model-config', config, '--ckpt-path', path.join(tmp, 'earlier.ckpt'), '--list'], { env });
    expect(prep.code, prep.stderr).toBe(0);

    const out = path.join(tmp, 'out');
    const { child, done } = startCli(
      ['serve', '--model-config', config, '--ckpt-path', path.join(tmp, 'finetune.ckpt'), '--server-name', '127.0.0.1', '--server-port', '0', '--no-preload', '--output-dir', out],
      { env },
    );
    try {
      let stdout = '';
      child.stdout!.on('data', (s: string) => (stdout += s));
      const url = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /audiox serve: (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
          if (m) {
            clearInterval(t);
            resolve(m[1]);
          }
        }, 50);
        void done.then((r) => {
          clearInterval(t);
          reject(new Error(`serve exited (${r.code}): ${r.stderr}`));
        });
      });
      const info = (await (await fetch(`${url}/api/info`)).json()) as { models: string[]; defaultModel: string; modelObjectives: Record<string, unknown> };
      expect(info.models).toEqual(['finetune', 'earlier', 'demo']);
      expect(info.defaultModel).toBe('finetune');
      expect(info.modelObjectives.earlier).toBe('v');

      const r = await fetch(`${url}/api/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'earlier', steps: 2, secondsTotal: 1, seed: 2 }),
      });
      expect(r.status).toBe(202);
      const job = (await r.json()) as { id: string; urls: { events: string } };
      await (await fetch(`${url}${job.urls.events}`)).text();
      const result = (await (await fetch(`${url}/api/jobs/${job.id}`)).json()) as { status: string; error?: string; result: { items: { audio: string }[] } };
      expect(result.status, result.error).toBe('done');
      expect(readWavHeader(path.join(out, result.result.items[0].audio))).toMatchObject({ sampleRate: 44100, channels: 2 });
    } finally {
      child.kill('SIGTERM');
      await done;
    }
  }, 240_000);

  it('--share is refused with how to expose the server safely', async () => {
    const r = await runCli(['serve', '--share', '--no-preload', '--server-port', '0'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--share is not supported: a public tunnel .* without authentication/);
    expect(r.stderr).toMatch(/reverse proxy with authentication/);
  });
});
