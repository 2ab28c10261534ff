#!/usr/bin/env node
// `npm run build`: compiles src/ and weights-converter/ to dist/ with tsc (ESM + .d.ts + source maps), then
// copies the files the compiled code reads at run time (the web UI, the worker entry) next to it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
fs.rmSync(DIST, { recursive: true, force: true });
const tsc = createRequire(path.join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

let copied = 0;
function copyAssets(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) copyAssets(p);
    else if (!/\.(ts|tsx)$/.test(e.name)) {
      const out = path.join(DIST, path.relative(ROOT, p));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.copyFileSync(p, out);
      copied++;
    }
  }
}
copyAssets(path.join(ROOT, 'src'));
console.log(`built dist/ (${copied} asset file(s) copied)`);
