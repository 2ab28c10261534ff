#!/usr/bin/env node
// The repository's copy of the reference fixtures (test/fixtures/) and its SHA-256 list.
//
//   node scripts/fixtures.mjs sync [--from <dir>]   copy the fixture data from <dir> (default ../shared/fixtures),
//                                                   drop files that are gone there, rewrite SHA256SUMS
//   node scripts/fixtures.mjs check                 verify test/fixtures against SHA256SUMS (exit 1 on any
//                                                   changed, missing or unlisted file)
//
// The data files are copied as they are; the source's README is not (test/fixtures/README.md is ours).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEST = process.env.AUDIOX_FIXTURES_DIR ?? path.join(ROOT, 'test', 'fixtures');
const SUMS = 'SHA256SUMS';
const OURS = new Set([SUMS, 'README.md']);

function walk(dir, base = dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, base));
    else if (e.isFile()) out.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return out.sort();
}
const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const dataFiles = (dir) => walk(dir).filter((f) => !OURS.has(f));

function readSums() {
  const file = path.join(DEST, SUMS);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing; run \`npm run fixtures:sync\``);
  const sums = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw new Error(`${file}: malformed line "${line}"`);
    sums.set(m[2], m[1]);
  }
  return sums;
}

function check() {
  const sums = readSums();
  const problems = [];
  for (const [rel, want] of sums) {
    const file = path.join(DEST, rel);
    if (!fs.existsSync(file)) problems.push(`missing: ${rel}`);
    else if (sha256(file) !== want) problems.push(`changed: ${rel}`);
  }
  for (const rel of dataFiles(DEST)) if (!sums.has(rel)) problems.push(`not in ${SUMS}: ${rel}`);
  if (problems.length) {
    console.error(`fixtures check failed in ${DEST}:\n  ${problems.join('\n  ')}\nRestore them with \`git checkout -- test/fixtures\`, or refresh from the reference with \`npm run fixtures:sync\`.`);
    process.exit(1);
  }
  console.log(`fixtures ok: ${sums.size} files in ${path.relative(ROOT, DEST) || DEST} match ${SUMS}`);
}

function sync(from) {
  if (!fs.existsSync(from)) {
    console.error(`fixtures sync: ${from} does not exist; pass --from <dir> with the reference fixtures`);
    process.exit(1);
  }
  const files = dataFiles(from);
  fs.mkdirSync(DEST, { recursive: true });
  let copied = 0;
  for (const rel of files) {
    const src = path.join(from, rel);
    const dst = path.join(DEST, rel);
    if (fs.existsSync(dst) && sha256(dst) === sha256(src)) continue;
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(src, dst);
    copied++;
  }
  const keep = new Set(files);
  let removed = 0;
  for (const rel of dataFiles(DEST)) {
    if (!keep.has(rel)) {
      fs.rmSync(path.join(DEST, rel));
      removed++;
    }
  }
  const lines = files.map((rel) => `${sha256(path.join(DEST, rel))}  ${rel}`);
  fs.writeFileSync(path.join(DEST, SUMS), lines.join('\n') + '\n');
  console.log(`fixtures synced from ${from}: ${files.length} files (${copied} copied, ${removed} removed); ${SUMS} rewritten`);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'check') check();
else if (cmd === 'sync') sync(rest[0] === '--from' && rest[1] ? path.resolve(rest[1]) : path.resolve(ROOT, '..', 'shared', 'fixtures'));
else {
  console.error('usage: node scripts/fixtures.mjs sync [--from <dir>] | check');
  process.exit(2);
}
