import path from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../backend/index.ts';
import { MODEL_HELP, modelFromCli, type ModelCliOptions } from '../custom-model.ts';

export const SHARE_REFUSED =
  '--share is not supported: a public tunnel would put this server on the internet without authentication, and anyone ' +
  'with the link could run jobs on your machine and read its outputs. To reach it from elsewhere, keep it on 127.0.0.1 ' +
  'and put a reverse proxy with authentication in front (e.g. nginx or Caddy with basic auth and TLS), or use an SSH ' +
  'tunnel (ssh -L 7860:127.0.0.1:7860 this-host).';

function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${what} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('start the local web UI and JSON API (one generation at a time, 127.0.0.1 by default)')
    .option('--model <name|dir>', `model selected by default: ${MODEL_HELP}`)
    .option('--model-config <config.json>', 'your own model (with --ckpt-path): converted into the cache and offered first')
    .option('--ckpt-path <file>', "your own model's checkpoint (.ckpt/.pth/.safetensors)")
    .option('--ema', 'take the EMA weights of a training checkpoint (the default when it has them)')
    .option('--no-ema', "take a training checkpoint's online weights")
    .option('--host <host>', 'address to bind (anything but loopback is reachable by others!)', '127.0.0.1')
    .option('--server-name <host>', 'same as --host (the reference demo\'s name)')
    .option('--port <port>', 'port (0: any free port)', positiveInt('--port'), 7860)
    .option('--server-port <port>', 'same as --port', positiveInt('--server-port'))
    .option('--share', 'refused: a public tunnel would expose this unauthenticated server (see the message)')
    .option('--output-dir <dir>', 'where results are written and served from', 'outputs')
    .option('--max-upload-mb <mb>', 'largest accepted upload per file, MB', positiveInt('--max-upload-mb'), 200)
    .option('--queue <n>', 'jobs allowed to wait behind the running one', positiveInt('--queue'), 4)
    .option('--preview-every <k>', 'default spectrogram preview interval in steps (0: off)', positiveInt('--preview-every'), 10)
    .option('--no-preload', 'do not load the default model at start-up')
    .action(async (o: ModelCliOptions & {
      host: string;
      serverName?: string;
      port: number;
      serverPort?: number;
      share?: boolean;
      outputDir: string;
      maxUploadMb: number;
      queue: number;
      previewEvery: number;
      preload: boolean;
    }) => {
      if (o.share) throw new Error(SHARE_REFUSED);
      const host = o.serverName ?? o.host;
      const port = o.serverPort ?? o.port;
      const custom = o.modelConfig !== undefined || o.ckptPath !== undefined || o.ema !== undefined ? await modelFromCli(o) : undefined;
      const info = await initBackend();
      const { createServer } = await import('../../server/server.ts');
      const { createPipelineRunner } = await import('../../server/pipeline-runner.ts');
      const { localModels } = await import('../../models/load.ts');
      // Every cached model (released, then custom conversions), then the built-in demo model.
      const local = localModels();
      const models = [...local.filter((m) => m !== 'demo' && m !== custom), 'demo'];
      const chosen = custom ?? o.model;
      // A model given on the command line comes first (a listed --model keeps its place).
      if (chosen && !models.includes(chosen)) models.unshift(chosen);
      const defaultModel = chosen ?? models[0];
      const outputDir = path.resolve(o.outputDir);
      const runner = createPipelineRunner({ outputDir });
      if (o.preload) {
        console.log(`loading ${defaultModel}…`);
        await runner.preload(defaultModel);
      }
      const server = await createServer({
        runJob: runner.runJob,
        validate: runner.validate,
        objectiveOf: runner.objectiveOf,
        models,
        defaultModel,
        outputDir,
        uploadLimitBytes: o.maxUploadMb * 1024 * 1024,
        queueLimit: o.queue,
        previewEvery: o.previewEvery,
      });
      const url = await server.listen(host, port);
      console.log(`audiox serve: ${url}  (backend ${info.name}; models: ${models.join(', ')}; outputs in ${outputDir})`);
      let closing = false;
      const shutdown = (): void => {
        if (closing) return;
        closing = true;
        console.log('shutting down…');
        void server
          .close()
          .then(() => runner.dispose())
          .finally(() => process.exit(0));
      };
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
    });
}
