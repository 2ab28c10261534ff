// Runs the real `audiox` CLI (bin/audiox.mjs) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO } from '../helpers.ts';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  /** Working directory (default: the repository root). */
  cwd?: string;
}

export function startCli(args: string[], opts: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const env = opts.env ?? {};
  const child = spawn(process.execPath, [path.join(REPO, 'bin/audiox.mjs'), ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return startCli(args, opts).done;
}
