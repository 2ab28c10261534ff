// Multi-threaded tfjs-backend-wasm in Node.
//
// tfjs 4.22 never enables wasm threads in Node (WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false
// there, tensorflow/tfjs#3830), and its loader could not work anyway: it hands Emscripten blob: URLs
// for the pthread worker and for the main script, which Node's worker_threads cannot load. This module
// re-registers the 'wasm' backend with a loader that instantiates the threaded-SIMD build itself, with
// the worker script written to a file and the main script given as the package's own file path.
// The stock BackendWasm class and kernels are reused unchanged; only the module loading differs.
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);

interface EmscriptenModule {
  cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number;
  PThread?: { runningWorkers?: { unref?: () => void }[] };
  tfjs?: Record<string, unknown>;
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** Default thread count: all cores up to 8 (tfjs' own default is half the cores, i.e. 1 here). */
export function defaultWasmThreads(): number {
  const env = Number(process.env.AUDIOX_WASM_THREADS);
  if (Number.isFinite(env) && env >= 1) return Math.floor(env);
  return Math.max(1, Math.min(8, os.availableParallelism?.() ?? os.cpus().length));
}

/**
 * A directory only this user can write: `<root>/audiox-<uid>` (mode 0700, ours, not a symlink), or — when
 * that name is taken by something else (another user, a symlink, loose permissions) — a fresh mkdtemp one.
 */
export function privateDir(root = os.tmpdir()): string {
  const uid = process.getuid?.() ?? 0;
  const dir = path.join(root, `audiox-${uid}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = fs.lstatSync(dir);
  const ours = st.isDirectory() && !st.isSymbolicLink() && (process.getuid === undefined || st.uid === uid) && (st.mode & 0o077) === 0;
  return ours ? dir : fs.mkdtempSync(path.join(root, 'audiox-'));
}

/**
 * The pthread worker script in a private directory; rewritten when missing, different, or not a regular file
 * of ours (a planted FIFO or symlink is removed, never opened).
 */
export function workerScriptPath(version: string, contents: string, root?: string): string {
  const file = path.join(privateDir(root), `tfjs-wasm-${version}.worker.js`);
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(file);
  } catch {
    st = null;
  }
  const regular = st !== null && st.isFile() && (process.getuid === undefined || st.uid === process.getuid());
  if (regular && fs.readFileSync(file, 'utf8') === contents) return file;
  if (st !== null) fs.rmSync(file, { force: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true }); // a leftover of a crashed run with our pid
  // O_EXCL | O_NOFOLLOW: never write through something planted under the temporary name either.
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, contents);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return file;
}

/**
 * Registers a 'wasm' backend factory that loads the threaded-SIMD module with `threads` threads.
 * Returns a function restoring the stock (single-threaded) factory, for a fallback after a failure.
 */
export async function registerThreadedWasm(threads: number, timeoutMs = 30_000): Promise<() => void> {
  const wasmPkg = (await import('@tensorflow/tfjs-backend-wasm')) as typeof import('@tensorflow/tfjs-backend-wasm');
  const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const mainScript = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const wasmBinary = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.wasm');
  const factory = require(mainScript) as Factory;
  const { wasmWorkerContents } = require(path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // The contents come from a template literal whose "\n" escapes became real newlines inside string
  // literals; tfjs escapes them back before use, and so must we.
  const workerFile = workerScriptPath(wasmPkg.version_wasm, wasmWorkerContents.replace(/\n/g, '\\n'));

  const stock = tf.findBackendFactory('wasm');
  const engine = tf.engine();
  const priority = engine.registryFactory.wasm?.priority ?? 2;
  const BackendWasm = wasmPkg.BackendWasm as unknown as new (m: EmscriptenModule) => tf.KernelBackend;

  const threadedFactory = async (): Promise<tf.KernelBackend> => {
    let timer: NodeJS.Timeout | undefined;
    let rejectInit: (e: unknown) => void = () => {};
    const timeout = new Promise<never>((_, reject) => {
      rejectInit = reject;
      timer = setTimeout(() => reject(new Error(`threaded wasm did not start within ${timeoutMs} ms`)), timeoutMs);
    });
    const config: Record<string, unknown> = {
      locateFile: (p: string, prefix: string) => {
        if (p.endsWith('.worker.js')) return workerFile;
        if (p.endsWith('.wasm')) return wasmBinary;
        return prefix + p;
      },
      mainScriptUrlOrBlob: mainScript,
      // The C++ side caps the pool at emscripten_num_logical_cores() / 2 (read once by a static
      // initialiser), i.e. 1 thread on a 2-core machine. Report twice the wanted count so that
      // setThreadsCount decides; everything else is the stock instantiation.
      instantiateWasm: (
        info: { env: Record<string, unknown> } & Record<string, unknown>,
        receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void,
      ) => {
        const imports = { ...info, env: { ...info.env, emscripten_num_logical_cores: () => 2 * threads } };
        WebAssembly.compile(fs.readFileSync(wasmBinary))
          .then(async (m) => receive(await WebAssembly.instantiate(m, imports as WebAssembly.Imports), m))
          .catch((e: unknown) => rejectInit(e));
        return {};
      },
    };

    // Emscripten's Node prelude adds process-wide handlers that rethrow every uncaught exception and
    // unhandled rejection (its own attempt to remove them again is a no-op); drop them so that the
    // host application, not the wasm module, decides what an unhandled error does.
    const before = {
      uncaughtException: new Set(process.listeners('uncaughtException')),
      unhandledRejection: new Set(process.listeners('unhandledRejection')),
    };
    const module = await Promise.race([factory(config), timeout]).finally(() => {
      clearTimeout(timer);
      for (const l of process.listeners('uncaughtException')) {
        if (!before.uncaughtException.has(l)) process.removeListener('uncaughtException', l);
      }
      for (const l of process.listeners('unhandledRejection')) {
        if (!before.unhandledRejection.has(l)) process.removeListener('unhandledRejection', l);
      }
    });
    module.tfjs = {
      init: module.cwrap('init', null, []),
      initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
      getThreadsCount: module.cwrap('get_threads_count', 'number', []),
      registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
      disposeData: module.cwrap('dispose_data', null, ['number']),
      dispose: module.cwrap('dispose', null, []),
    };
    wasmPkg.setThreadsCount(threads);
    const backend = new BackendWasm(module);
    // XNNPACK's pool threads live forever; Emscripten keeps running pthread workers ref'd, which
    // would stop Node from exiting when the script ends.
    for (const w of module.PThread?.runningWorkers ?? []) w.unref?.();
    return backend;
  };

  tf.removeBackend('wasm');
  tf.registerBackend('wasm', threadedFactory, priority);
  return () => {
    tf.removeBackend('wasm');
    if (stock) tf.registerBackend('wasm', stock, priority);
    wasmPkg.setThreadsCount(1);
  };
}
