// The Runtime made at the edge: what it reports about the running backend, and that loadModel hands its
// budget down to the modules that plan their own memory.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activeBackend, budgetOf, WASM_BUDGET } from '../../src/backend/index.ts';
import { createRuntime } from '../../src/backend/runtime.ts';
import { defaultHostBudget } from '../../src/models/memory.ts';
import { checkBudget, UNLIMITED_BUDGET } from '../../src/nn/runtime.ts';
import { loadModel } from '../../src/pipeline/load.ts';

describe('createRuntime', () => {
  it('describes the running backend: name, threads, budget, kernels', async () => {
    const rt = await createRuntime();
    const info = activeBackend();
    expect(rt.backend).toBe(info.name);
    expect(rt.threads).toBe(info.threads);
    expect(rt.budget).toEqual(budgetOf(info.name));
    expect(rt.budget.bytes).toBe(info.memoryBudget);
    expect(Array.isArray(rt.kernels)).toBe(true);
    expect(['auto', 'resident', 'streamed']).toContain(rt.weights.mode);
  });

  it('takes a memory budget and a weight policy from the caller', async () => {
    const rt = await createRuntime({ memoryBudget: 1234, streamWeights: true, hostDType: 'float16' });
    expect(rt.budget.bytes).toBe(1234);
    expect(rt.weights).toMatchObject({ mode: 'streamed', hostDType: 'float16' });
  });

  it('refuses a budget that is not a positive number of bytes', async () => {
    await expect(createRuntime({ memoryBudget: 0 })).rejects.toThrow(/memoryBudget must be a positive number of bytes, got 0/);
    await expect(createRuntime({ memoryBudget: Number.NaN })).rejects.toThrow(/memoryBudget must be a positive number/);
  });
});

describe('memory budgets', () => {
  it('wasm: 3.5 GiB, the heap taken from host memory, and why the limit is there', () => {
    const b = budgetOf('wasm');
    expect(b.bytes).toBe(WASM_BUDGET);
    expect(b.hostReserve).toBe(4 * 1024 ** 3);
    expect(b.hint).toMatch(/wasm heap is 4 GiB/);
  });

  it('the host budget for streamed weights subtracts what the backend itself takes', () => {
    const free = defaultHostBudget({ backend: 'gpu', bytes: 1, hostReserve: 0 }, 5e9);
    expect(defaultHostBudget({ backend: 'wasm', bytes: 1, hostReserve: 4e9 }, 5e9)).toBe(free - 4e9);
    expect(defaultHostBudget({ backend: 'cpu', bytes: 1, hostReserve: 'tensors' }, 5e9)).toBe(free - 5e9);
  });

  it('checkBudget names the need, the budget and the fix; an unlimited budget never refuses', () => {
    const b = { backend: 'wasm', bytes: tf.memory().numBytes + 100, hostReserve: 0, hint: 'why' };
    expect(() => checkBudget(b, 101, 'the thing')).toThrow(/the thing needs 101 B on top of .* exceeds the wasm backend's budget .* \(why\)\. Use weight streaming/);
    expect(() => checkBudget(b, 100, 'the thing')).not.toThrow();
    expect(() => checkBudget(UNLIMITED_BUDGET, 1e15, 'anything')).not.toThrow();
  });
});

describe('loadModel on a runtime', () => {
  it('keeps the runtime and hands its budget to the VAE; a default runtime is made when none is given', async () => {
    const rt = await createRuntime({ memoryBudget: 3 * 1024 ** 3 });
    const model = await loadModel('demo', { runtime: rt });
    try {
      expect(model.runtime).toBe(rt);
      expect(model.wrapper.pretransform.model.budget).toEqual(rt.budget);
      expect(model.memoryPlan?.budget).toBe(3 * 1024 ** 3);
      expect(model.memoryPlan?.backend).toBe(rt.backend);
    } finally {
      model.dispose();
    }
    const plain = await loadModel('demo');
    try {
      expect(plain.runtime?.backend).toBe(activeBackend().name);
      expect(plain.wrapper.pretransform.model.budget.bytes).toBe(activeBackend().memoryBudget);
    } finally {
      plain.dispose();
    }
  });
});
