import type { Command } from 'commander';
import { formatBytes, initBackend, probeBackends } from '../../backend/index.ts';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('show available backends, the active one, wasm threads, memory ceiling and media tools')
    .action(async () => {
      const info = await initBackend().catch((e: Error) => {
        console.log(`no backend could be started: ${e.message}`);
        return null;
      });
      const probes = info?.probes ?? probeBackends();
      console.log('backends (in preference order):');
      for (const p of probes) {
        const mark = info && p.name === info.name ? '*' : p.available ? '+' : '-';
        console.log(`  ${mark} ${p.name.padEnd(15)} ${p.reason}`);
      }
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
