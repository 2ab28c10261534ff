// The `audiox` command line. Each file in ./commands exports `register(program)`.
import { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const COMMAND_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');

export async function buildProgram(): Promise<Command> {
  const program = new Command();
  program
    .name('audiox')
    .description('AudioX anything-to-audio generation on TensorFlow.js')
    .option('--backend <name>', 'force a backend: tensorflow-gpu, tensorflow, webgpu, wasm, cpu (or AUDIOX_BACKEND)')
    .showHelpAfterError();
  program.hook('preAction', (cmd) => {
    const b = cmd.opts().backend as string | undefined;
    if (b) process.env.AUDIOX_BACKEND = b;
  });
  const files = fs.readdirSync(COMMAND_DIR).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort();
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(COMMAND_DIR, f)).href)) as {
      register?: (p: Command) => void;
    };
    mod.register?.(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    console.error(`audiox: ${(e as Error).message}`);
    process.exitCode = process.exitCode || 1;
  }
}
