// Start-up time of the installed package: `npm pack`, install the tarball into a fresh project (as
// test/package/pack.test.ts does), then run `audiox --help` and `audiox doctor` there repeatedly and report the
// median wall time and CPU time (all threads) of each next to a bare `node -e ''` measured in the same run (the
// ratios are what compare across machines; wall times depend on the load, CPU times much less).
//   npx tsx bench/startup.ts [--runs 9] [--project <dir>] [--baseline <dir>]
// --project reuses a project installed earlier; --baseline adds the same commands from another installed project
// (e.g. one whose node_modules/audiox-ts/dist is an older build), measured in the same interleaved runs.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function install(): string {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-startup-'));
  const packed = execFileSync(NPM, ['pack', '--json', '--pack-destination', project], { cwd: REPO, encoding: 'utf8', maxBuffer: 64 << 20 });
  const info = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string }[];
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'startup-bench', version: '1.0.0', type: 'module', private: true }));
  execFileSync(NPM, ['install', path.join(project, info[0].filename), '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project, stdio: 'inherit' });
  return project;
}

const CPU_USAGE = path.join(REPO, 'bench', 'cpu-usage.cjs');

/** Wall and CPU milliseconds of one run of `node <args>`. */
function measure(args: string[], cwd: string, env: NodeJS.ProcessEnv): { wall: number; cpu: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--require', CPU_USAGE, ...args], { cwd, env, encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${r.status}:\n${r.stdout}${r.stderr}`);
  const cpu = Number(/CPU_MS (\S+)/.exec(r.stderr)?.[1] ?? NaN);
  return { wall, cpu };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const runs = Number(arg('--runs') ?? 9);
const project = arg('--project') ?? install();
const bin = path.join(project, 'node_modules', 'audiox-ts', 'bin', 'audiox.mjs');
if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: is audiox-ts installed in ${project}?`);
// An empty model cache: doctor then reports no models (the state right after `npm install`).
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-startup-home-'));
const env = { ...process.env, AUDIOX_HOME: home, AUDIOX_BACKEND: '' };

const cases: Record<string, { args: string[]; env?: Record<string, string> }> = {
  'node -e ""': { args: ['-e', ''] },
  'audiox --help': { args: [bin, '--help'] },
  'audiox doctor': { args: [bin, 'doctor'] },
  // The backend started as a generation would (the threaded wasm pool, the WebGPU adapter probe).
  'doctor --start': { args: [bin, 'doctor', '--start'] },
};
const baseline = arg('--baseline');
if (baseline) {
  const old = path.join(baseline, 'node_modules', 'audiox-ts', 'bin', 'audiox.mjs');
  if (!fs.existsSync(old)) throw new Error(`${old} is missing: is audiox-ts installed in ${baseline}?`);
  cases['baseline --help'] = { args: [old, '--help'] };
  cases['baseline doctor'] = { args: [old, 'doctor'] };
}
const samples: Record<string, { wall: number[]; cpu: number[] }> = Object.fromEntries(Object.keys(cases).map((k) => [k, { wall: [], cpu: [] }]));
measure([bin, 'doctor'], project, env); // warm the file cache
for (let i = 0; i < runs; i++) {
  // Interleaved, so that a change in the machine's load affects every case alike.
  for (const [name, c] of Object.entries(cases)) {
    const m = measure(c.args, project, { ...env, ...c.env });
    samples[name].wall.push(m.wall);
    samples[name].cpu.push(m.cpu);
  }
}
const base = median(samples['node -e ""'].wall);
const baseCpu = median(samples['node -e ""'].cpu);
console.log(`start-up, installed package (${project}), median of ${runs} runs, load average ${os.loadavg()[0].toFixed(1)}, ${os.cpus().length} cores:`);
for (const [name, xs] of Object.entries(samples)) {
  const [w, c] = [median(xs.wall), median(xs.cpu)];
  console.log(`  ${name.padEnd(17)} wall ${(w / 1000).toFixed(2)} s (${(w / base).toFixed(1)}× bare node)   CPU ${(c / 1000).toFixed(2)} s (${(c / baseCpu).toFixed(1)}×)`);
}
fs.rmSync(home, { recursive: true, force: true });
if (!arg('--project')) console.log(`(installed project kept for --project: ${project})`);
