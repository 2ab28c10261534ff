// Entry of the generation worker process. In an installed package it runs the compiled worker next to it;
// in a checkout it loads the TypeScript through tsx's loader, as bin/audiox.mjs does (the server may itself
// run under another loader, e.g. vitest, which a forked process does not inherit).
import fs from 'node:fs';

if (fs.existsSync(new URL('./generation-worker.js', import.meta.url))) {
  await import('./generation-worker.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./generation-worker.ts');
}
