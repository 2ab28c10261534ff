import path from 'node:path';
import type { Command } from 'commander';
import { initBackend } from '../../backend/index.ts';

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
    .option('--model <name|dir>', 'model selected by default: AudioX, AudioX-MAF, AudioX-MAF-MMDiT, demo or a model directory')
    .option('--host <host>', 'address to bind (anything but loopback is reachable by others!)', '127.0.0.1')
    .option('--port <port>', 'port (0: any free port)', positiveInt('--port'), 7860)
    .option('--output-dir <dir>', 'where results are written and served from', 'outputs')
    .option('--max-upload-mb <mb>', 'largest accepted upload per file, MB', positiveInt('--max-upload-mb'), 200)
    .option('--queue <n>', 'jobs allowed to wait behind the running one', positiveInt('--queue'), 4)
    .option('--preview-every <k>', 'default spectrogram preview interval in steps (0: off)', positiveInt('--preview-every'), 10)
    .option('--no-preload', 'do not load the default model at start-up')
    .action(async (o: {
      model?: string;
      host: string;
      port: number;
      outputDir: string;
      maxUploadMb: number;
      queue: number;
      previewEvery: number;
      preload: boolean;
    }) => {
      const info = await initBackend();
      const { createServer } = await import('../../server/server.ts');
      const { createPipelineRunner } = await import('../../server/pipeline-runner.ts');
      const { localModels } = await import('../../models/load.ts');
      // The released models present locally, then the built-in demo model.
      const local = localModels();
      const models = [...local.filter((m) => m !== 'demo'), 'demo'];
      if (o.model && !models.includes(o.model)) models.unshift(o.model);
      const defaultModel = o.model ?? models[0];
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
      const url = await server.listen(o.host, o.port);
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
