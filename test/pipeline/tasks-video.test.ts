// The video task shapes of AudioX on the demo model: V2A, V2M, TV2A, TV2M (the task is set by the prompt),
// with a 3 s test video brought to the 10 s conditioning window (CLIP frames and Synchformer features).
// Kept apart from generate.test.ts because the Synchformer pass makes each run take several seconds.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AudioXModel } from '../../src/models/load.ts';
import { loadModel } from '../../src/pipeline/load.ts';
import { generate } from '../../src/pipeline/generate.ts';
import type { GenerateResult } from '../../src/pipeline/types.ts';
import { makeVideo, tempDir } from './media-helpers.ts';

let model: AudioXModel;
let dir: string;
let video: string;
const results: Record<string, GenerateResult> = {};
const fast = { steps: 3, secondsTotal: 1, seed: 11 };
let noVideo: GenerateResult;

beforeAll(async () => {
  model = await loadModel('demo');
  dir = tempDir('tasks');
  video = await makeVideo(path.join(dir, 'clip.mp4'), 3);
  // Also creates the conditioners' lazily built constant tensors before the leak checks.
  noVideo = await generate(model, { ...fast, prompt: '' });
});

afterAll(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

const TASKS: [string, string][] = [
  ['V2A', ''],
  ['V2M', 'Generate music for the video'],
  ['TV2A', 'footsteps on gravel while a car passes'],
  ['TV2M', 'a calm ambient piano piece for this video'],
];

describe('video task shapes', () => {
  for (const [task, prompt] of TASKS) {
    it(`${task}: video${prompt ? ' + text' : ''} → stereo 44.1 kHz`, async () => {
      const before = tf.memory().numTensors;
      const r = await generate(model, { ...fast, prompt, video });
      expect(tf.memory().numTensors).toBe(before);
      expect(r.sampleRate).toBe(44100);
      expect(r.audio[0]).toHaveLength(2);
      expect(r.audio[0][0]).toHaveLength(44100);
      expect(r.audio[0][0].every(Number.isFinite)).toBe(true);
      expect(r.params).toMatchObject({ video, prompt });
      results[task] = r;
    });
  }

  it('the tasks differ (the prompt sets the task), and the video matters', async () => {
    const diff = (a: GenerateResult, b: GenerateResult) => a.audio[0][0].reduce((m, v, k) => Math.max(m, Math.abs(v - b.audio[0][0][k])), 0);
    const names = Object.keys(results);
    expect(names).toHaveLength(4);
    for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) expect(diff(results[names[i]], results[names[j]])).toBeGreaterThan(1e-3);
    expect(diff(noVideo, results.V2A)).toBeGreaterThan(1e-3);
  });
});
