// The generation worker thread: initialises the backend the server was started with, holds the loaded model,
// and runs jobs one at a time (job-executor.ts), so that sampling never blocks the HTTP event loop. An abort
// from the server lands at the sampler's next step (it yields to this thread's event loop between steps).
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend/index.ts';
import { ModelSlot, executeJob } from './job-executor.ts';
import type { FromWorker, ToWorker, WorkerError, WorkerInit } from './worker-protocol.ts';

const port = parentPort;
if (!port) throw new Error('generation-worker.ts must run in a worker thread (see pipeline-runner.ts)');

const send = (m: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const toError = (e: unknown): WorkerError =>
  e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };

const init = workerData as WorkerInit;
const slot = new ModelSlot();
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
          preview: (png) => {
            const copy = new Uint8Array(png);
            send({ type: 'preview', id: m.id, png: copy }, [copy.buffer]);
          },
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

try {
  const info = await initBackend(init.backend);
  port.on('message', onMessage);
  send({ type: 'ready', backend: info.name });
} catch (e) {
  send({ type: 'fatal', error: toError(e) });
}
