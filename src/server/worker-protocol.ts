// Messages between the server (main thread) and the generation worker process (generation-worker.ts).
import type { JobFiles, JobResult } from './jobs.ts';
import type { JobParams } from './params.ts';

export interface WorkerInit {
  /** The backend the server was started with (initBackend's name); absent: the default order. */
  backend?: string;
}

/** What the server asks of the worker; each is answered by one 'done' or 'error' with the request's id. */
export type WorkerRequest =
  | { type: 'run'; model: string; params: JobParams; files: JobFiles; outputDir: string }
  | { type: 'preload'; model: string }
  | { type: 'memory' };

export type ToWorker =
  | (WorkerRequest & { id: number })
  | { type: 'abort'; id: number; reason: string }
  /** The answer to a job's 'reserve': output names made by the server, or why there are none. */
  | { type: 'names'; id: number; names: string[] | null; error?: string };

export interface WorkerError {
  name: string;
  message: string;
}

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'fatal'; error: WorkerError }
  | { type: 'progress'; id: number; stage?: string; step?: number; steps?: number | null; fraction?: number }
  | { type: 'preview'; id: number; png: Uint8Array }
  /** The job is about to write its results: the server reserves the names (so it can always remove them). */
  | { type: 'reserve'; id: number; suffixes: string[] }
  | { type: 'done'; id: number; value: JobResult | WorkerMemory | null }
  | { type: 'error'; id: number; error: WorkerError };

export interface WorkerMemory {
  numTensors: number;
  numBytes: number;
}
