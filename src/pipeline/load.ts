// The library's loadModel: the edge where a caller that brings no Runtime gets a default one (the backend
// from `backend` / AUDIOX_BACKEND, its budget or `memoryBudget`), which is then passed down to the models.
import { createRuntime } from '../backend/runtime.ts';
import { loadModel as loadModelOn, type AudioXModel, type CustomModelRef, type LoadModelOptions } from '../models/load.ts';

/**
 * Loads a released model, a model directory, `demo`, or a custom config + checkpoint (see models/load.ts) on
 * `opts.runtime`, or on a runtime created here from `opts.backend` when none is given.
 */
export async function loadModel(nameOrDir: string | CustomModelRef, opts: LoadModelOptions = {}): Promise<AudioXModel> {
  const runtime = opts.runtime ?? (await createRuntime({ backend: opts.backend }));
  return loadModelOn(nameOrDir, { ...opts, runtime });
}
