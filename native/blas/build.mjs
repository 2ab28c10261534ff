#!/usr/bin/env node
// Builds the optional native BLAS addon (audiox_blas.c → build/audiox_blas-<key>.node) with the system C
// compiler, Node's own headers and the system CBLAS (Debian: libopenblas-dev). Nothing is downloaded.
// The key hashes the source and the Node version/platform, so src/backend/blas.ts loads only a matching build.
//
//   node native/blas/build.mjs            build (exit 1 with the compiler's message on failure)
//   node native/blas/build.mjs --optional  the package's install step: report and exit 0 on failure
//
// CC and AUDIOX_BLAS_LIB (default openblas) choose the compiler and the library.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = path.join(HERE, 'audiox_blas.c');
const optional = process.argv.includes('--optional');

/** Same key as blasBinaryPath() in src/backend/blas.ts. */
function binaryPath() {
  const key = createHash('sha256')
    .update(fs.readFileSync(SOURCE))
    .update(`${process.version}-${process.arch}-${process.platform}`)
    .digest('hex')
    .slice(0, 16);
  return path.join(HERE, 'build', `audiox_blas-${key}.node`);
}

function nodeIncludeDir() {
  const candidates = [path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h'))) ?? null;
}

function build() {
  const out = binaryPath();
  if (fs.existsSync(out)) return { out, built: false };
  const include = nodeIncludeDir();
  if (!include) throw new Error("Node's headers (node_api.h) were not found next to the node binary or in /usr/include/node");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const cc = process.env.CC ?? 'cc';
  const lib = process.env.AUDIOX_BLAS_LIB ?? 'openblas';
  const base = ['-O2', '-shared', '-fPIC', '-std=c11', '-DNODE_GYP_MODULE_NAME=audiox_blas', '-DNAPI_VERSION=8', `-I${include}`, SOURCE];
  const compile = (extra) => execFileSync(cc, [...base, ...extra, `-l${lib}`, '-lm', '-o', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    try {
      compile(['-fopenmp']); // the elementwise loops use OpenMP when the compiler has it
    } catch {
      compile([]);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const msg = e.stderr?.toString().trim().split('\n').slice(0, 3).join(' | ') || e.message;
    throw new Error(`${cc} -l${lib} failed: ${msg}`);
  }
  fs.renameSync(tmp, out);
  for (const f of fs.readdirSync(path.dirname(out))) {
    const p = path.join(path.dirname(out), f);
    if (f.endsWith('.node') && p !== out) fs.rmSync(p, { force: true });
  }
  return { out, built: true };
}

try {
  const { out, built } = build();
  console.log(`[audiox-ts] native BLAS addon ${built ? 'built' : 'up to date'}: ${path.relative(process.cwd(), out) || out}`);
} catch (e) {
  const hint = 'a C compiler and a CBLAS are needed (Debian/Ubuntu: apt-get install build-essential libopenblas-dev), then `npm run build:native`';
  if (optional) {
    console.log(`[audiox-ts] native BLAS addon not built (optional; the wasm backend runs without it): ${e.message}. To enable it: ${hint}.`);
    process.exit(0);
  }
  console.error(`[audiox-ts] native BLAS addon build failed: ${e.message}. ${hint}.`);
  process.exit(1);
}
