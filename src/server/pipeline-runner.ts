// The production job runner. Generation runs in a worker process (generation-worker.ts, see worker-client.ts)
// that initialises the server's backend and keeps one model loaded, so the HTTP event loop stays free while a
// model samples: status, SSE, cancel and the page answer at once. A cancel is sent to the worker and takes effect at the sampler's next
// step. Progress, previews (decoded and rendered in the worker) and results come back as messages. Whatever a
// job reserved in the output directory is removed unless it finished: cancelled, failed, or the worker died.
import { activeBackend } from '../backend/index.ts';
import { inspectModel } from '../models/source.ts';
import { GenerateError, configLimits, resolveParams, type ModelLimits } from '../pipeline/generate.ts';
import type { DiffusionObjective } from '../sampling/registry.ts';
import { checkLongformRequest, toGenerateOptions } from './job-executor.ts';
import { isLongform } from '../pipeline/longform.ts';
import type { JobFiles, JobResult, RunJob } from './jobs.ts';
import { reserveOutputs } from './files.ts';
import { removeOutputs, resultFiles } from './outputs.ts';
import { BadRequestError, type JobParams } from './params.ts';
import { GenerationWorker } from './worker-client.ts';
import type { FromWorker, WorkerMemory } from './worker-protocol.ts';

export { decodePreview, toGenerateOptions } from './job-executor.ts';

export interface PipelineRunnerOptions {
  outputDir: string;
  /** Backend for the worker (default: the one initialised in this process, else initBackend's default). */
  backend?: string;
}

export interface PipelineRunner {
  runJob: RunJob;
  /** Checks a request against the model's limits before it is queued (BadRequestError → HTTP 400). */
  validate(model: string, params: JobParams, files: JobFiles): void;
  /** The model's diffusion objective from its config.json (undefined when the config cannot be read). */
  objectiveOf(model: string): DiffusionObjective | undefined;
  /** Loads `name` in the worker now (e.g. at start-up) so the first job does not wait for it. */
  preload(name: string): Promise<void>;
  /** The worker's tfjs memory (tests check it for leaks); starts the worker if needed. */
  memory(): Promise<WorkerMemory>;
  /** Stops the worker (a running job is abandoned and its files removed). */
  dispose(): Promise<void>;
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  const e = r instanceof Error ? r : new Error(typeof r === 'string' ? r : 'cancelled');
  return e;
}

export function createPipelineRunner(opts: PipelineRunnerOptions): PipelineRunner {
  let backend = opts.backend;
  if (backend === undefined) {
    try {
      backend = activeBackend().name;
    } catch {
      backend = undefined; // not initialised here: the worker picks the default order
    }
  }
  const worker = new GenerationWorker({ backend });
  const limits = new Map<string, ModelLimits>();

  /** The model's length limit and objective from its config.json (no weights loaded). */
  function limitsOf(name: string): ModelLimits {
    let l = limits.get(name);
    if (!l) {
      const src = inspectModel(name, { requireFiles: false });
      l = configLimits(src.name, src.config);
      limits.set(name, l);
    }
    return l;
  }

  const runJob: RunJob = async (ctx): Promise<JobResult> => {
    ctx.signal.throwIfAborted();
    // Every output name the job may write, reserved here: whatever becomes of the worker, they can be removed.
    const reserved: string[] = [];
    let id = 0;
    const onEvent = (m: FromWorker): void => {
      if (m.type === 'progress') ctx.progress({ stage: m.stage, step: m.step, steps: m.steps, fraction: m.fraction });
      else if (m.type === 'preview') ctx.preview(Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength));
      else if (m.type === 'reserve') {
        try {
          ctx.signal.throwIfAborted();
          const names = reserveOutputs(opts.outputDir, m.suffixes);
          reserved.push(...names);
          worker.send({ type: 'names', id, names });
        } catch (e) {
          worker.send({ type: 'names', id, names: null, error: (e as Error).message });
        }
      }
    };
    const req = await worker.request<JobResult>(
      { type: 'run', model: ctx.model, params: ctx.params, files: ctx.files, outputDir: opts.outputDir },
      onEvent,
    );
    id = req.id;
    const result = req.result;
    const onAbort = (): void => worker.send({ type: 'abort', id, reason: abortReason(ctx.signal).message });
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await result;
      // The cancel crossed the finished job on its way to the worker: drop what it wrote.
      if (ctx.signal.aborted) {
        removeOutputs(opts.outputDir, [...reserved, ...resultFiles(res.items)]);
        throw abortReason(ctx.signal);
      }
      return res;
    } catch (e) {
      removeOutputs(opts.outputDir, reserved);
      throw e;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  };

  return {
    runJob,
    validate(model, params, files) {
      try {
        const limits = limitsOf(model);
        if (isLongform(limits, params)) checkLongformRequest(limits, params, files);
        else resolveParams(limits, toGenerateOptions(params, files));
      } catch (e) {
        if (e instanceof GenerateError) throw new BadRequestError(e.message);
        throw new BadRequestError(`Model "${model}" is not usable: ${(e as Error).message}`);
      }
    },
    objectiveOf(model) {
      try {
        return limitsOf(model).objective;
      } catch {
        return undefined;
      }
    },
    async preload(name) {
      await (await worker.request<null>({ type: 'preload', model: name })).result;
    },
    async memory() {
      return (await worker.request<WorkerMemory>({ type: 'memory' })).result;
    },
    dispose: () => worker.dispose(),
  };
}
