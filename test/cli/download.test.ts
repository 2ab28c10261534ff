// `audiox download` against a mock hub: the model, then the text encoder its config names.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../helpers.ts';
import { MockHub } from '../mock-hub.ts';
import { runCli } from './run-cli.ts';

const hub = new MockHub();
let tmp: string;

beforeAll(async () => {
  await hub.start();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-cli-download-'));
  const config = { model: { conditioning: { configs: [{ id: 'text_prompt', type: 't5', config: { t5_model_name: 't5-small' } }] } } };
  hub.serve('HKUSTAudio/AudioX', 'config.json', Buffer.from(JSON.stringify(config)), false);
  hub.serve('HKUSTAudio/AudioX', 'model.ckpt', fs.readFileSync(path.join(FIXTURES, 'convert', 'model.ckpt')), true);
  hub.serve('google-t5/t5-small', 'config.json', Buffer.from('{}'), false);
  hub.serve('google-t5/t5-small', 'tokenizer.json', Buffer.from('{}'), false);
  hub.serve('google-t5/t5-small', 'model.safetensors', fs.readFileSync(path.join(FIXTURES, 'convert', 'views.safetensors')), true);
});
afterAll(async () => {
  await hub.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('audiox download', () => {
  it('fetches the text encoder the config names, unless --no-text-encoder', async () => {
    const env = (home: string) => ({ env: { HF_ENDPOINT: hub.hubUrl, AUDIOX_HOME: path.join(tmp, home), HF_TOKEN: '' } });
    const r = await runCli(['download', 'AudioX'], env('a'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`AudioX is ready in ${path.join(tmp, 'a', 'models', 'AudioX')}:`);
    expect(r.stdout).toContain(`t5-small is ready in ${path.join(tmp, 'a', 'models', 't5-small')}:`);
    expect(fs.existsSync(path.join(tmp, 'a', 'models', 't5-small', 'model.safetensors'))).toBe(true);

    const only = await runCli(['download', 'AudioX', '--no-text-encoder'], env('b'));
    expect(only.code).toBe(0);
    expect(only.stdout).not.toContain('t5-small');
    expect(fs.existsSync(path.join(tmp, 'b', 'models', 't5-small'))).toBe(false);
  });
});
