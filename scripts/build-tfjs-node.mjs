#!/usr/bin/env node
// Builds the @tensorflow/tfjs-node native binding offline, from a TensorFlow CPU Python wheel.
//
// tfjs-node's own install script downloads libtensorflow, which fails without internet. A
// `tensorflow_cpu` wheel (2.x, Linux x86_64) carries the same C and eager APIs in
// libtensorflow_cc.so.2, plus their headers, so the binding can be compiled against it with
// node-gyp and Node's own headers. Nothing is downloaded.
//
//   node scripts/build-tfjs-node.mjs [--wheel <file.whl>] [--force]
//
// Wheel lookup: --wheel, then $AUDIOX_TF_WHEEL, then the usual local wheel stores ($AUDIOX_TF_WHEEL_DIRS
// replaces that list).
// Exit codes: 0 built (or already built and loadable), 3 no wheel found (nothing changed), 1 failed.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const TFJS_NODE = '@tensorflow/tfjs-node';
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const WHEEL_DIRS = process.env.AUDIOX_TF_WHEEL_DIRS
  ? process.env.AUDIOX_TF_WHEEL_DIRS.split(path.delimiter)
  : ['/opt/pypi/files', '/opt/pypi', '/opt/wheels', path.join(os.homedir(), '.cache/pip/wheels'), '/usr/share/python-wheels'];

const argv = process.argv.slice(2);
const force = argv.includes('--force');
const wheelArg = argv.includes('--wheel') ? argv[argv.indexOf('--wheel') + 1] : undefined;

function log(msg) {
  console.log(`[build-tfjs-node] ${msg}`);
}
function fail(msg) {
  console.error(`[build-tfjs-node] error: ${msg}`);
  process.exit(1);
}

function findWheel() {
  const explicit = wheelArg ?? process.env.AUDIOX_TF_WHEEL;
  if (explicit) {
    if (!fs.existsSync(explicit)) fail(`wheel ${explicit} does not exist`);
    return explicit;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return null;
  const found = [];
  const walk = (dir, depth) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth > 0) walk(p, depth - 1);
      else if (/^tensorflow(_cpu)?-2\.\d+\.\d+-.*manylinux.*x86_64\.whl$/.test(e.name)) found.push(p);
    }
  };
  for (const d of WHEEL_DIRS) walk(d, 3);
  // Newest TensorFlow first; the CPU build preferred (no CUDA libraries needed).
  const version = (p) => path.basename(p).split('-')[1].split('.').map(Number);
  found.sort((a, b) => {
    const va = version(a), vb = version(b);
    for (let i = 0; i < 3; i++) if (va[i] !== vb[i]) return vb[i] - va[i];
    return Number(path.basename(b).startsWith('tensorflow_cpu')) - Number(path.basename(a).startsWith('tensorflow_cpu'));
  });
  return found[0] ?? null;
}

function packageDir() {
  try {
    return path.dirname(require.resolve(`${TFJS_NODE}/package.json`));
  } catch {
    return null;
  }
}

function bindingLoads(dir) {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'lib/napi-v8/tfjs_binding.node'))})`], {
    encoding: 'utf8',
  });
  return probe.status === 0;
}

/** Installs the tfjs-node JavaScript package (same version as @tensorflow/tfjs) without its install script. */
function ensurePackage() {
  const tfjsVersion = JSON.parse(fs.readFileSync(require.resolve('@tensorflow/tfjs/package.json'), 'utf8')).version;
  let dir = packageDir();
  if (dir) {
    const have = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
    if (have === tfjsVersion) return dir;
    log(`${TFJS_NODE}@${have} does not match @tensorflow/tfjs@${tfjsVersion}; reinstalling`);
  }
  log(`installing ${TFJS_NODE}@${tfjsVersion} without its download step`);
  const r = spawnSync(
    NPM,
    ['install', '--no-save', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', `${TFJS_NODE}@${tfjsVersion}`],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (r.status !== 0) fail(`npm install ${TFJS_NODE} failed (exit ${r.status})`);
  dir = packageDir();
  if (!dir) fail(`${TFJS_NODE} is still not resolvable after npm install`);
  return dir;
}

/** Reads a wheel (a zip archive) entry by entry with yauzl, keeping those `want` selects. */
async function extract(wheel, want, dest) {
  const yauzl = require('yauzl');
  const zip = await new Promise((res, rej) => yauzl.open(wheel, { lazyEntries: true, autoClose: false }, (e, z) => (e ? rej(e) : res(z))));
  const entries = new Map();
  await new Promise((res, rej) => {
    zip.on('entry', (e) => {
      entries.set(e.fileName, e);
      zip.readEntry();
    });
    zip.on('end', res);
    zip.on('error', rej);
    zip.readEntry();
  });
  const write = (entry, out) =>
    new Promise((res, rej) =>
      zip.openReadStream(entry, (e, s) => {
        if (e) return rej(e);
        fs.mkdirSync(path.dirname(out), { recursive: true });
        s.pipe(fs.createWriteStream(out)).on('finish', res).on('error', rej);
        s.on('error', rej);
      }),
    );
  for (const [name, out] of want(entries)) await write(entries.get(name), path.join(dest, out));
  zip.close();
}

async function main() {
  const wheel = findWheel();
  if (!wheel) {
    console.log(
      '[build-tfjs-node] skipped: no TensorFlow CPU wheel found (looked in --wheel, $AUDIOX_TF_WHEEL, ' +
        `${WHEEL_DIRS.join(', ')}). With internet access, \`npm install\` gets tfjs-node's prebuilt binding instead.`,
    );
    process.exit(3);
  }
  const dir = ensurePackage();
  if (!force && bindingLoads(dir)) {
    log(`${TFJS_NODE} binding already built and loadable (${dir}); --force rebuilds`);
    return;
  }
  log(`building ${TFJS_NODE} binding from ${wheel}`);

  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-tfwheel-'));
  try {
    // The libraries and every header under tensorflow/include/ (only the headers the binding reaches are kept).
    await extract(
      wheel,
      (entries) =>
        [...entries.keys()]
          .filter((n) => n === 'tensorflow/libtensorflow_cc.so.2' || n === 'tensorflow/libtensorflow_framework.so.2' || (n.startsWith('tensorflow/include/') && /\.(h|inc)$/.test(n)))
          .map((n) => [n, n.replace(/^tensorflow\//, '')]),
      stage,
    );
    const libSrc = path.join(stage, 'libtensorflow_cc.so.2');
    if (!fs.existsSync(libSrc)) fail(`${wheel} has no tensorflow/libtensorflow_cc.so.2 — is it a TensorFlow 2.x Linux wheel?`);

    const deps = path.join(dir, 'deps');
    fs.rmSync(deps, { recursive: true, force: true });
    fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
    // Copy only the headers the binding's includes reach.
    const incRoot = path.join(stage, 'include');
    // Seeded with what the binding's own sources include.
    const todo = ['tensorflow/c/c_api.h', 'tensorflow/c/eager/c_api.h'];
    for (const f of fs.readdirSync(path.join(dir, 'binding'))) {
      for (const m of fs.readFileSync(path.join(dir, 'binding', f), 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) todo.push(m[1]);
    }
    const seen = new Set();
    while (todo.length) {
      const rel = todo.pop();
      if (seen.has(rel)) continue;
      const src = path.join(incRoot, rel);
      if (!fs.existsSync(src)) continue;
      seen.add(rel);
      const out = path.join(deps, 'include', rel);
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.copyFileSync(src, out);
      for (const m of fs.readFileSync(src, 'utf8').matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) todo.push(m[1]);
    }
    if (!seen.has('tensorflow/c/eager/c_api.h')) fail(`${wheel} lacks tensorflow/include/tensorflow/c/eager/c_api.h`);
    log(`${seen.size} headers, libtensorflow_cc.so.2 (${(fs.statSync(libSrc).size / 2 ** 20).toFixed(0)} MiB)`);

    // The binding links -ltensorflow -ltensorflow_framework; the real files keep their SONAMEs.
    const lib = path.join(deps, 'lib');
    fs.renameSync(libSrc, path.join(lib, 'libtensorflow_cc.so.2'));
    fs.renameSync(path.join(stage, 'libtensorflow_framework.so.2'), path.join(lib, 'libtensorflow_framework.so.2'));
    fs.symlinkSync('libtensorflow_cc.so.2', path.join(lib, 'libtensorflow.so.2'));
    fs.symlinkSync('libtensorflow.so.2', path.join(lib, 'libtensorflow.so'));
    fs.symlinkSync('libtensorflow_framework.so.2', path.join(lib, 'libtensorflow_framework.so'));
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }

  const nodeGyp = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ].find((p) => p && fs.existsSync(p));
  if (!nodeGyp) fail('node-gyp not found (it ships with npm); install it with `npm i -g node-gyp` and rerun');
  // Node's own headers, so node-gyp does not try to download them.
  let nodedir = '';
  try {
    nodedir = execFileSync(NPM, ['config', 'get', 'nodedir'], { encoding: 'utf8' }).trim();
  } catch {}
  if (!nodedir || nodedir === 'undefined' || !fs.existsSync(path.join(nodedir, 'include/node/node_api.h'))) {
    nodedir = path.resolve(path.dirname(process.execPath), '..');
  }
  if (!fs.existsSync(path.join(nodedir, 'include/node/node_api.h'))) {
    fail(`Node's headers were not found under ${nodedir}/include/node; set npm's nodedir to a Node install with headers`);
  }
  const gyp = spawnSync(
    process.execPath,
    [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--module_name=tfjs_binding', `--module_path=${path.join(dir, 'lib/napi-v8')}`, '--napi_build_version=8', `-j`, String(os.cpus().length)],
    { cwd: dir, stdio: 'inherit' },
  );
  if (gyp.status !== 0) fail(`node-gyp failed (exit ${gyp.status}); a C++ compiler (g++/make) and python3 are required`);
  if (!bindingLoads(dir)) fail(`the built binding ${path.join(dir, 'lib/napi-v8/tfjs_binding.node')} does not load`);
  fs.rmSync(path.join(dir, 'build'), { recursive: true, force: true });
  log(`done: AUDIOX_BACKEND=tensorflow now selects tfjs-node (check with \`npx audiox doctor\`)`);
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
