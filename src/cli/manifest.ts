// The top-level commands and the file under ./commands that registers each. `audiox --help` lists them from
// here without importing any command (their modules pull in TensorFlow.js, ~1 s); running a command imports
// only its own file. test/cli/manifest.test.ts checks this list against what the files register.
export interface CommandEntry {
  /** Name and arguments as the command file declares them, e.g. 'parity <dir>'. */
  usage: string;
  /** File under src/cli/commands (without extension). */
  file: string;
  summary: string;
}

export const COMMANDS: readonly CommandEntry[] = [
  { usage: 'generate', file: 'generate', summary: 'generate audio from text, video, an image and/or an audio prompt' },
  { usage: 'batch <manifest>', file: 'batch', summary: 'generate every item of a manifest (JSONL or CSV)' },
  { usage: 'serve', file: 'serve', summary: 'start the local web UI and JSON API' },
  { usage: 'inspect', file: 'inspect', summary: 'run one generation step and save the outputs of chosen modules' },
  { usage: 'download <model>', file: 'download', summary: 'download a released model from the Hugging Face hub' },
  { usage: 'models', file: 'models', summary: 'list the models in the cache; `models rm <name>` removes one' },
  { usage: 'convert <input> <output>', file: 'convert', summary: 'convert a PyTorch checkpoint to safetensors without Python' },
  { usage: 'params', file: 'params', summary: 'print the parameter manifest {key: shape} of a model config' },
  { usage: 'parity <dir>', file: 'parity', summary: 'run the reference fixtures under <dir> against the stored outputs' },
  { usage: 'doctor', file: 'doctor', summary: 'show backends, threads, memory ceiling, precision, models and media tools' },
  { usage: 'queue', file: 'queue', summary: 'a dataset on many machines: jobs on a Redis queue' },
  { usage: 'worker', file: 'queue', summary: 'run queued jobs on this machine' },
];
