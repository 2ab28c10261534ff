#!/usr/bin/env node
// The `audiox` command. In a checkout (src/ present, tsx installed as a development dependency) it runs the
// TypeScript sources through tsx's loader, so no build step is needed and a stale dist/ is never used; an
// installed package (which ships dist/ and no src/) runs the compiled CLI. AUDIOX_FROM_DIST=1 forces dist/.
import fs from 'node:fs';

const compiled = new URL('../dist/src/cli/index.js', import.meta.url);
const sources = new URL('../src/cli/index.ts', import.meta.url);
let entry = null;
if (fs.existsSync(sources) && process.env.AUDIOX_FROM_DIST !== '1') {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    entry = sources.href;
  } catch {
    // no tsx (production install of a git checkout): fall through to dist/
  }
}
if (!entry && fs.existsSync(compiled)) entry = compiled.href;
if (!entry) {
  console.error('audiox: no compiled CLI in dist/ (run `npm run build`) and no tsx to run the sources');
  process.exit(1);
}
const { main } = await import(entry);
await main(process.argv);
