// The `audiox` command line. Each file in ./commands exports `register(program)`.
import { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isModuleFile, MODULE_EXT } from '../layout.ts';
import { COMMANDS } from './manifest.ts';

const COMMAND_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'commands');

function baseProgram(): Command {
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
  return program;
}

async function registerFiles(program: Command, files: readonly string[]): Promise<void> {
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(COMMAND_DIR, f)).href)) as {
      register?: (p: Command) => void;
    };
    mod.register?.(program);
  }
}

/** The full program: every command file registered (what `--help` of a command and the tests see). */
export async function buildProgram(): Promise<Command> {
  const program = baseProgram();
  await registerFiles(program, fs.readdirSync(COMMAND_DIR).filter(isModuleFile).sort());
  return program;
}

/** The first argument that is not a global option (and its value): the command's name, if any. */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--backend') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Only what this invocation needs: `audiox`, `audiox --help` and `audiox help` list the commands from the
 * manifest without importing any; `audiox <command> …` imports that command's file alone.
 */
async function programFor(argv: readonly string[]): Promise<Command> {
  const name = commandName(argv);
  const entry = COMMANDS.find((c) => c.usage.split(' ')[0] === name);
  if (entry) {
    const program = baseProgram();
    await registerFiles(program, [`${entry.file}${MODULE_EXT}`]);
    return program;
  }
  if (name === undefined || (name === 'help' && commandName(argv.slice(1)) === undefined)) {
    const program = baseProgram();
    for (const c of COMMANDS) program.command(c.usage).description(c.summary);
    return program;
  }
  return buildProgram(); // `help <command>` or an unknown command: commander's own help and suggestions
}

export async function main(argv: string[]): Promise<void> {
  const program = await programFor(argv);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    console.error(`audiox: ${(e as Error).message}`);
    process.exitCode = process.exitCode || 1;
  }
}
