// The server's side of the generation worker: a child process (generation-worker.ts, forked with an IPC channel)
// and the request/response bookkeeping. A process, not a worker thread: the native BLAS kernels use OpenBLAS,
// whose fork handler joins its threads, so a server thread that spawns ffmpeg (upload checks) while another
// thread of the same process is inside a BLAS call deadlocks in fork(). In its own process the generation code
// calls BLAS and spawns ffmpeg from one thread, as the CLI does.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker, WorkerError, WorkerInit, WorkerRequest } from './worker-protocol.ts';

const ENTRY = fileURLToPath(new URL('./generation-worker.mjs', import.meta.url));

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onEvent?(m: FromWorker): void;
}

function fromWorkerError(e: WorkerError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

export class GenerationWorker {
  private child: ChildProcess | null = null;
  private ready: Promise<ChildProcess> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly init: WorkerInit) {}

  private start(): Promise<ChildProcess> {
    if (this.ready) return this.ready;
    const child = fork(ENTRY, [JSON.stringify(this.init)], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [], // not the server's loader flags (e.g. vitest's): the entry registers tsx itself
    });
    this.child = child;
    this.ready = new Promise<ChildProcess>((resolve, reject) => {
      const fail = (e: Error): void => {
        reject(e);
        this.stopped(child, e);
      };
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') return resolve(child);
        if (m.type === 'fatal') {
          child.kill('SIGKILL');
          return fail(new Error(`The generation worker could not start: ${m.error.message}`));
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        if (m.type === 'done') {
          this.pending.delete(m.id);
          p.resolve(m.value);
        } else if (m.type === 'error') {
          this.pending.delete(m.id);
          p.reject(fromWorkerError(m.error));
        } else p.onEvent?.(m);
        this.updateRef();
      });
      child.on('error', (e) => fail(new Error(`The generation worker failed: ${e.message}`)));
      child.on('exit', (code, signal) =>
        fail(new Error(`The generation worker stopped (${signal ?? `exit code ${code}`}); the next job starts a new one.`)),
      );
    });
    // Nothing rejects it unobserved: callers await it, and a failed start is reported to every pending request.
    this.ready.catch(() => {});
    return this.ready;
  }

  /** The worker is gone: every request still waiting fails, and the next one starts a new worker. */
  private stopped(child: ChildProcess, e: Error): void {
    if (this.child !== child) return;
    this.child = null;
    this.ready = null;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(e);
  }

  /** Keeps this process alive only while a request is in flight. */
  private updateRef(): void {
    const c = this.child;
    if (!c) return;
    const channel = c.channel as { ref?(): void; unref?(): void } | null | undefined;
    if (this.pending.size > 0) {
      c.ref();
      channel?.ref?.();
    } else {
      c.unref();
      channel?.unref?.();
    }
  }

  /** Sends a request; `result` settles with its 'done' or 'error' (or when the worker dies). */
  async request<T>(msg: WorkerRequest, onEvent?: (m: FromWorker) => void): Promise<{ id: number; result: Promise<T> }> {
    const child = await this.start();
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
    });
    this.updateRef();
    child.send({ ...msg, id } satisfies ToWorker);
    return { id, result };
  }

  /** A message about a request in flight (no answer expected). */
  send(m: Extract<ToWorker, { type: 'abort' | 'names' }>): void {
    if (this.child?.connected) this.child.send(m);
  }

  /**
   * Aborts what runs and waits up to `graceMs` for it to wind down (the worker removes its partial files and
   * stops its ffmpeg children), then kills the worker.
   */
  async dispose(graceMs = 3000): Promise<void> {
    const child = this.child;
    if (!child) return;
    for (const id of this.pending.keys()) this.send({ type: 'abort', id, reason: 'the server is shutting down' });
    const deadline = Date.now() + graceMs;
    while (this.pending.size > 0 && this.child === child && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    this.stopped(child, new Error('The generation worker was stopped (server shutting down).'));
  }
}
