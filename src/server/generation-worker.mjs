// Entry of the generation worker thread: TypeScript is loaded through tsx's loader, as bin/audiox.mjs does
// (module hooks registered in the main thread do not reach worker threads on Node 20).
import { register } from 'tsx/esm/api';

register();
await import('./generation-worker.ts');
