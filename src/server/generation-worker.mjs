// Entry of the generation worker process: TypeScript is loaded through tsx's loader, as bin/audiox.mjs does
// (the server may itself run under another loader, e.g. vitest, which a forked process does not inherit).
import { register } from 'tsx/esm/api';

register();
await import('./generation-worker.ts');
