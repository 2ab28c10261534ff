// The public API loads, and the demo model generates through it.
import { describe, expect, it } from 'vitest';
import * as audiox from '../src/index.ts';

describe('public API', () => {
  it('exports the entry points', () => {
    for (const name of ['loadModel', 'generate', 'convertCheckpoint', 'downloadModel', 'initBackend', 'runHarness', 'createModelFromConfig']) {
      expect(typeof (audiox as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('captures a layer by its state-dict path during a generation', async () => {
    const model = await audiox.loadModel('demo');
    try {
      const { result, captures } = await model.wrapper.capture(['model.model.transformer.layers.0'], () =>
        audiox.generate(model, { prompt: 'rain', steps: 1, secondsTotal: 1, seed: 1 }),
      );
      expect(result.audio[0]).toHaveLength(2);
      expect(captures['model.model.transformer.layers.0'].shape[0]).toBe(2); // CFG batch [cond; uncond]
      for (const t of Object.values(captures)) t.dispose();
    } finally {
      model.dispose();
    }
  });
});
