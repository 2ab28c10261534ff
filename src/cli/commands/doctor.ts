import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { formatBytes, initBackend, memoryBudgetFor, plannedThreads, probeBackends, selectBackend, type BackendProbe } from '../../backend/index.ts';
import { loadBlas } from '../../backend/blas.ts';
import { audioxHome, MODEL_NAMES, modelDir } from '../../hub/models.ts';
import { configReport } from '../../models/config-keys.ts';
import { readConfig } from '../../models/config.ts';

// Only light modules are imported up front: doctor reports the backend and the files present, so it starts
// the backend (tfjs-core and that backend alone) but never the model code, which loads all of TensorFlow.js.
// models/load.ts (the released names and each config's text encoder) is imported only when the model cache
// has something to report.

/** What is downloaded of each released model, with its config's precision and text encoder. */
export async function localModelLines(): Promise<string[]> {
  const lines: string[] = [];
  if (!hasModelConfigs(path.dirname(modelDir(MODEL_NAMES[0])))) return lines;
  const { RELEASED_MODELS, textEncoders } = await import('../../models/load.ts');
  for (const name of RELEASED_MODELS) {
    const dir = modelDir(name);
    const cfgFile = path.join(dir, 'config.json');
    if (!fs.existsSync(cfgFile)) continue;
    const weights = fs.existsSync(path.join(dir, 'model.safetensors')) ? 'weights present' : 'model.safetensors missing';
    lines.push(`  ${name} (${dir}): ${weights}`);
    try {
      const config = readConfig(cfgFile);
      for (const t5 of textEncoders(config)) {
        const ok = fs.existsSync(path.join(t5.dir, 'model.safetensors'));
        lines.push(`    text encoder ${t5.name} (t5_model_name ${t5.t5ModelName}): ${ok ? 'present' : `missing (audiox download ${t5.name})`}`);
      }
      for (const l of configReport(config)) lines.push(`    ${l}`);
    } catch (e) {
      lines.push(`    ${(e as Error).message}`);
    }
  }
  return lines;
}

/** Whether any directory of the model cache `dir` holds a config.json (the released models' are among them). */
function hasModelConfigs(dir: string): boolean {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some((e) => e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'config.json')));
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('show available backends, the one that would run, wasm threads, memory ceiling, precision, downloaded models and media tools')
    .option('--start', 'also start the backend (and probe a WebGPU adapter) to check that it works; slower')
    .action(async (opts: { start?: boolean }) => {
      if (opts.start) await startedReport();
      else quickReport();
      console.log('precision: float32 for every module (config model_half and the reference\'s float16 T5 are not applied)');
      const models = await localModelLines();
      console.log(models.length ? `downloaded models (${audioxHome()}):\n${models.join('\n')}` : `downloaded models: none in ${audioxHome()}`);
      try {
        const { resolveFfmpeg } = (await import('../../io/ffmpeg.ts')) as {
          resolveFfmpeg: () => { path: string; source: string };
        };
        const f = resolveFfmpeg();
        console.log(`ffmpeg: ${f.path} (from ${f.source})`);
      } catch (e) {
        console.log(`ffmpeg: not available (${(e as Error).message})`);
      }
    });
}

function printProbes(probes: BackendProbe[], chosen: string | null): void {
  console.log('backends (in preference order):');
  for (const p of probes) {
    const mark = p.name === chosen ? '*' : p.available ? '+' : '-';
    console.log(`  ${mark} ${p.name.padEnd(15)} ${p.reason}`);
  }
}

/** Without starting anything (fast): what is installed, which backend would start, with what. */
function quickReport(): void {
  let chosen: ReturnType<typeof selectBackend>;
  try {
    chosen = selectBackend();
  } catch (e) {
    console.log(`no backend could be started: ${(e as Error).message}`);
    printProbes(probeBackends(), null);
    return;
  }
  printProbes(chosen.probes, chosen.name);
  if (!chosen.name) {
    console.log('no backend is available (see above)');
    return;
  }
  console.log(`backend: ${chosen.name} (would start first; not started here: \`audiox doctor --start\` starts it and probes a WebGPU adapter)`);
  if (chosen.name === 'wasm') {
    console.log(`threads: ${plannedThreads(chosen.name)} (threaded SIMD when it starts; AUDIOX_WASM_THREADS overrides)`);
    const b = loadBlas();
    console.log(b.available ? `native BLAS on: ${b.reason}, ${b.threads} threads` : `native BLAS off: ${b.reason}`);
  } else {
    console.log(`threads: ${plannedThreads(chosen.name)}`);
  }
  console.log(`memory ceiling: ${formatBytes(memoryBudgetFor(chosen.name))}`);
}

/** Starts the backend as a generation would, and reports what it got. */
async function startedReport(): Promise<void> {
  const info = await initBackend().catch((e: Error) => {
    console.log(`no backend could be started: ${e.message}`);
    return null;
  });
  const probes = info?.probes ?? probeBackends();
  printProbes(probes, info?.name ?? null);
  if (probes.find((p) => p.name === 'webgpu')?.available) {
    const { probeWebgpuAdapter } = await import('../../backend/webgpu.ts');
    const a = await probeWebgpuAdapter().catch(() => null);
    console.log(a ? `webgpu adapter: ${a.description} (${a.backend}, ${a.featureLevel}; use AUDIOX_BACKEND=webgpu)` : 'webgpu adapter: none found');
  }
  if (info) {
    console.log(`active backend: ${info.name} (tfjs "${info.tfBackend}")`);
    console.log(`threads: ${info.threads}`);
    console.log(`memory ceiling: ${formatBytes(info.memoryBudget)}`);
  }
}
