// The generation worker process (forked by worker-client.ts): creates the runtime (backend) the server was
// started with, holds the loaded model, and runs jobs one at a time (job-executor.ts), so that sampling never blocks the
// HTTP event loop. An abort from the server lands at the sampler's next step (the sampler yields to this
// process's event loop between steps). Signals are the server's business: it cancels and then stops this
// process; when the server goes away (the IPC channel closes) running jobs are aborted and the process exits.
import * as tf from '@tensorflow/tfjs';
import { createRuntime } from '../backend/runtime.ts';
import { loadModel } from '../pipeline/load.ts';
import { ModelSlot, executeJob } from './job-executor.ts';
import type { FromWorker, ToWorker, WorkerError, WorkerInit } from './worker-protocol.ts';

if (!process.send) throw new Error('generation-worker.ts must be forked with an IPC channel (see worker-client.ts)');

const send = (m: FromWorker): void => {
  if (process.connected) process.send!(m);
};
const toError = (e: unknown): WorkerError =>
  e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };

const init = JSON.parse(process.argv[2] ?? '{}') as WorkerInit;
/** The runtime every model of this process loads on (made once, here at the edge). */
const runtimeReady = createRuntime({ backend: init.backend });
const slot = new ModelSlot((name) => runtimeReady.then((runtime) => loadModel(name, { runtime })));
const controllers = new Map<number, AbortController>();
/** Jobs waiting for the server's answer to their 'reserve'. */
const naming = new Map<number, { resolve(names: string[]): void; reject(e: Error): void }>();

function reserve(id: number, suffixes: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    naming.set(id, { resolve, reject });
    send({ type: 'reserve', id, suffixes });
  });
}
/** Jobs and preloads run one after another (they share the model and the backend). */
let chain: Promise<void> = Promise.resolve();

function serial(id: number, task: () => Promise<unknown>): void {
  chain = chain.then(async () => {
    try {
      send({ type: 'done', id, value: ((await task()) ?? null) as null });
    } catch (e) {
      send({ type: 'error', id, error: toError(e) });
    } finally {
      controllers.delete(id);
    }
  });
}

function onMessage(m: ToWorker): void {
  switch (m.type) {
    case 'run': {
      const ac = new AbortController();
      controllers.set(m.id, ac);
      serial(m.id, () =>
        executeJob(slot, m, ac.signal, {
          progress: (p) => send({ type: 'progress', id: m.id, ...p }),
          preview: (png) => send({ type: 'preview', id: m.id, png }),
          reserve: (suffixes) => reserve(m.id, suffixes),
        }),
      );
      return;
    }
    case 'names': {
      const n = naming.get(m.id);
      naming.delete(m.id);
      if (m.names) n?.resolve(m.names);
      else n?.reject(new Error(m.error ?? 'no output names'));
      return;
    }
    case 'abort':
      controllers.get(m.id)?.abort(new Error(m.reason));
      return;
    case 'preload':
      serial(m.id, async () => {
        await slot.use(m.model);
      });
      return;
    case 'memory': {
      const { numTensors, numBytes } = tf.memory();
      send({ type: 'done', id: m.id, value: { numTensors, numBytes } });
      return;
    }
  }
}

// Ctrl-C reaches the whole process group: the server decides (it cancels the job, then stops this process).
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => {
  for (const ac of controllers.values()) ac.abort(new Error('the server went away'));
  // Let the aborted job remove what it wrote, then go.
  void Promise.race([chain, new Promise((r) => setTimeout(r, 5000))]).finally(() => process.exit(0));
});

try {
  const runtime = await runtimeReady;
  process.on('message', onMessage);
  send({ type: 'ready', backend: runtime.backend });
} catch (e) {
  send({ type: 'fatal', error: toError(e) });
}
