import { Command, InvalidArgumentError } from 'commander';
import cliProgress from 'cli-progress';
import fs from 'node:fs';
import path from 'node:path';
import { activeBackend } from '../../backend/index.ts';
import { checkInputFile } from '../../io/ffmpeg.ts';
import { muxVideoWithAudio } from '../../io/mux.ts';
import { writeWav } from '../../io/wav.ts';
import { loadModel } from '../../models/load.ts';
import { GENERATE_DEFAULTS, generate } from '../../pipeline/generate.ts';
import type { SamplerName } from '../../pipeline/types.ts';

function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

export interface GenerateCliOptions {
  model: string;
  prompt?: string;
  negativePrompt?: string;
  video?: string;
  image?: string;
  audio?: string;
  secondsStart: number;
  seconds: number;
  steps: number;
  cfg: number;
  cfgRescale: number;
  sampler: string;
  sigmaMin: number;
  sigmaMax: number;
  seed: number;
  initAudio?: string;
  initNoiseLevel?: number;
  batch: number;
  output: string;
  referenceQuirks?: boolean;
  progress: boolean;
}

/** Output paths for a batch: out.wav, or out_0.wav, out_1.wav … */
export function batchPaths(out: string, n: number, ext: string): string[] {
  const base = out.replace(/\.[^./\\]+$/, '');
  return n === 1 ? [`${base}${ext}`] : Array.from({ length: n }, (_, i) => `${base}_${i}${ext}`);
}

export async function runGenerate(o: GenerateCliOptions): Promise<string[]> {
  for (const [flag, f] of [['--video', o.video], ['--image', o.image], ['--audio', o.audio], ['--init-audio', o.initAudio]] as const) {
    if (f) checkInputFile(f);
  }
  const outDir = path.dirname(path.resolve(o.output));
  if (!fs.existsSync(outDir)) throw new Error(`output directory ${outDir} does not exist`);
  const model = await loadModel(o.model);
  try {
    if (model.demo) {
      console.error('note: the demo model has untrained, synthetic weights — it shows the pipeline working, not AudioX quality.');
    }
    const bar = o.progress && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'sampling [{bar}] {value}/{total} steps | {duration}s | ETA {eta}s', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
    let lastPct = -1;
    bar?.start(o.steps, 0);
    const result = await generate(model, {
      prompt: o.prompt,
      negativePrompt: o.negativePrompt,
      video: o.video,
      image: o.image,
      audio: o.audio,
      secondsStart: o.secondsStart,
      secondsTotal: o.seconds,
      steps: o.steps,
      cfgScale: o.cfg,
      cfgRescale: o.cfgRescale,
      sampler: o.sampler as SamplerName,
      sigmaMin: o.sigmaMin,
      sigmaMax: o.sigmaMax,
      seed: o.seed,
      initAudio: o.initAudio,
      initNoiseLevel: o.initNoiseLevel,
      batchSize: o.batch,
      referenceQuirks: o.referenceQuirks,
      onProgress: ({ step, steps }) => {
        if (bar) bar.update(step + 1);
        else if (o.progress) {
          const pct = Math.floor(((step + 1) / steps) * 10) * 10;
          if (pct !== lastPct) console.error(`sampling: step ${step + 1}/${steps}`);
          lastPct = pct;
        }
      },
    });
    bar?.stop();
    const wavs = batchPaths(o.output, result.audio.length, '.wav');
    const written: string[] = [];
    for (const [i, channels] of result.audio.entries()) {
      await writeWav(wavs[i], channels, result.sampleRate);
      written.push(wavs[i]);
      if (o.video) {
        const mp4 = batchPaths(o.output, result.audio.length, '.mp4')[i];
        await muxVideoWithAudio({ video: o.video, audioWav: wavs[i], out: mp4, start: o.secondsStart, duration: channels[0].length / result.sampleRate });
        written.push(mp4);
      }
    }
    const t = result.timings;
    console.log(
      [
        `model: ${model.name}${model.demo ? ' (untrained demo)' : ''}; backend: ${activeBackend().name}`,
        `seed: ${result.seed}; sampler: ${o.sampler}, ${o.steps} steps, cfg ${o.cfg}`,
        `time: ${(t.totalMs / 1000).toFixed(1)} s (conditioning ${(t.conditioningMs / 1000).toFixed(1)} s, sampling ${(t.samplingMs / 1000).toFixed(1)} s, decode ${(t.decodeMs / 1000).toFixed(1)} s)`,
        ...written.map((f) => `wrote ${f}`),
      ].join('\n'),
    );
    return written;
  } finally {
    model.dispose();
  }
}

export function register(program: Command): void {
  const d = GENERATE_DEFAULTS;
  program
    .command('generate')
    .description('generate audio from text, video, an image and/or an audio prompt')
    .requiredOption('-m, --model <name|dir>', 'AudioX, AudioX-MAF, AudioX-MAF-MMDiT, demo, or a model directory')
    .option('-p, --prompt <text>', 'text prompt')
    .option('--negative-prompt <text>', 'negative text prompt')
    .option('--video <file>', 'conditioning video (also re-muxed with the result)')
    .option('--image <file>', 'conditioning still image')
    .option('--audio <file>', 'audio prompt')
    .option('--seconds-start <s>', 'start of the conditioning window in the media', num('--seconds-start'), d.secondsStart)
    .option('--seconds <s>', 'length of the generated audio', num('--seconds'), d.secondsTotal)
    .option('--steps <n>', 'sampling steps', int('--steps'), d.steps)
    .option('--cfg <x>', 'classifier-free guidance scale', num('--cfg'), d.cfgScale)
    .option('--cfg-rescale <x>', 'CFG rescale (scale_phi), 0…1', num('--cfg-rescale'), d.cfgRescale)
    .option('--sampler <name>', 'sampler', d.sampler)
    .option('--sigma-min <x>', 'smallest noise level', num('--sigma-min'), d.sigmaMin)
    .option('--sigma-max <x>', 'largest noise level', num('--sigma-max'), d.sigmaMax)
    .option('--seed <n>', 'random seed (-1: random)', int('--seed'), -1)
    .option('--init-audio <file>', 'audio to vary (variation)')
    .option('--init-noise-level <x>', 'noise level for --init-audio', num('--init-noise-level'))
    .option('--batch <n>', 'number of outputs', int('--batch'), d.batchSize)
    .option('-o, --output <file.wav>', 'output WAV (an mp4 with the same name is written when --video is given)', 'output.wav')
    .option('--reference-quirks', "reproduce the reference demo's preprocessing bugs exactly")
    .option('--no-progress', 'no progress output')
    .action(async (opts: GenerateCliOptions) => {
      await runGenerate(opts);
    });
}
