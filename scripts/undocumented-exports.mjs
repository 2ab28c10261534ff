#!/usr/bin/env node
// Lists the exports of the public entry points (following re-exports) that have no TSDoc comment, with the
// public members of exported classes and the fields of exported interfaces. Exit code 1 when any is missing.
// Groundwork for issue #18's test/package/tsdoc.test.ts.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRIES = ['src/index.ts', 'src/nn/index.ts', 'src/sampling/index.ts', 'src/parity/index.ts'].map((f) => path.join(ROOT, f));
const program = ts.createProgram(ENTRIES, {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  allowImportingTsExtensions: true, noEmit: true, strict: true,
});
const checker = program.getTypeChecker();

function documented(sym) {
  const decls = sym.declarations ?? [];
  return decls.some((d) => ts.getJSDocCommentsAndTags(d).length > 0) || sym.getDocumentationComment(checker).length > 0;
}

const missing = new Set();
for (const entry of ENTRIES) {
  const sf = program.getSourceFile(entry);
  const mod = sf && checker.getSymbolAtLocation(sf);
  if (!mod) continue;
  for (let sym of checker.getExportsOfModule(mod)) {
    const name = sym.getName();
    if (sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
    const where = path.relative(ROOT, sym.declarations?.[0]?.getSourceFile().fileName ?? entry);
    if (!documented(sym)) missing.add(`${where}: ${name}`);
    if (sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface)) {
      for (const [key, member] of sym.members ?? []) {
        const d = member.declarations?.[0];
        if (!d || key === '__constructor' && !(sym.flags & ts.SymbolFlags.Class)) continue;
        const mods = ts.canHaveModifiers(d) ? ts.getModifiers(d) ?? [] : [];
        if (mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
        if (d.name && ts.isPrivateIdentifier(d.name)) continue;
        if (!documented(member)) missing.add(`${where}: ${name}.${key === '__constructor' ? 'constructor' : String(key)}`);
      }
    }
  }
}
for (const m of [...missing].sort()) console.log(m);
console.log(`${missing.size} undocumented export(s)`);
process.exitCode = missing.size ? 1 : 0;
