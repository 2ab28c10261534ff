// Where the package's own files are. The same modules run from the TypeScript sources (src/…, through tsx,
// in a checkout) and from the compiled build (dist/src/…, in an installed package); paths computed from a
// module's location go through here so that both layouts work.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** True when running from the compiled JavaScript in dist/. */
export const COMPILED = import.meta.url.endsWith('.js');

/** The extension of this package's own modules in the running layout ('.ts' in a checkout, '.js' when built). */
export const MODULE_EXT = COMPILED ? '.js' : '.ts';

function findRoot(from: string): string {
  for (let d = from; ; d = path.dirname(d)) {
    const pkg = path.join(d, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'audiox-ts') return d;
    if (path.dirname(d) === d) throw new Error(`audiox-ts: package.json not found above ${from}`);
  }
}

/** The package root (the folder holding package.json, configs/ and native/). */
export const PACKAGE_ROOT = findRoot(HERE);

/** A module file of this package in the running layout (not a declaration or source map). */
export function isModuleFile(name: string): boolean {
  return name.endsWith(MODULE_EXT) && !name.endsWith('.d.ts');
}

/** `name` (without extension) next to the module at `url`, with the running layout's extension. */
export function siblingModule(url: string, name: string): string {
  return path.join(path.dirname(fileURLToPath(url)), `${name}${MODULE_EXT}`);
}
