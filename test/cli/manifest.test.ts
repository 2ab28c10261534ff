// The command manifest that `audiox --help` lists without importing the commands matches what the command
// files register, and the help it prints names every command.
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/index.ts';
import { COMMANDS } from '../../src/cli/manifest.ts';
import { runCli } from './run-cli.ts';

describe('src/cli/manifest.ts', () => {
  it('lists exactly the top-level commands the files register, with their arguments', async () => {
    const program = await buildProgram();
    const registered = program.commands.map((c) => [c.name(), ...c.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`))].join(' '));
    expect([...registered].sort()).toEqual(COMMANDS.map((c) => c.usage).sort());
  });

  it('`audiox --help` lists every command with its summary', async () => {
    const r = await runCli(['--help']);
    const escape = (t: string) => t.replace(/[<>[\]]/g, '\\$&');
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${escape(c.usage)}\\s+${c.summary.split(' ')[0]}`, 'm'));
  });
});
