// The exports of the public entry points (following re-exports) that have no TSDoc comment where they are
// defined, with the public members of exported classes and the fields of exported interfaces (a member that
// inherits its comment from a base class or an implemented interface counts as documented).
// `npx tsx test/package/undocumented.ts` lists them; test/package/tsdoc.test.ts fails on them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ENTRIES = ['src/index.ts', 'src/nn/index.ts', 'src/sampling/index.ts', 'src/parity/index.ts'];

function hasDoc(node: ts.Node): boolean {
  if (ts.getJSDocCommentsAndTags(node).length > 0) return true;
  // `export * as F from './functional.ts'`: the comment sits on the export statement.
  return ts.isNamespaceExport(node) && ts.getJSDocCommentsAndTags(node.parent).length > 0;
}

function isPublicMember(d: ts.Declaration): boolean {
  const mods = ts.canHaveModifiers(d) ? (ts.getModifiers(d) ?? []) : [];
  if (mods.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword)) return false;
  const name = ts.getNameOfDeclaration(d);
  return !(name && ts.isPrivateIdentifier(name));
}

/** How the tests that read the sources with the compiler API compile them (the repository's own settings). */
export const SOURCE_COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  allowImportingTsExtensions: true,
  noEmit: true,
  strict: true,
};

/** "file: name" (and "file: Class.member") of every undocumented export of the entry points. */
export function undocumentedExports(entries: readonly string[] = ENTRIES): string[] {
  const files = entries.map((f) => path.join(REPO, f));
  const program = ts.createProgram(files, { ...SOURCE_COMPILER_OPTIONS, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const missing = new Set<string>();
  const visit = (exported: ts.Symbol, name: string, fallbackFile: string): void => {
    const sym = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const where = path.relative(REPO, sym.declarations?.[0]?.getSourceFile().fileName ?? fallbackFile);
    if (sym.flags & ts.SymbolFlags.ValueModule) {
      // `export * as F from …`: the namespace is documented at the export, its members where they are defined.
      if (!(exported.declarations ?? []).some(hasDoc)) missing.add(`${where}: ${name}`);
      for (const inner of checker.getExportsOfModule(sym)) visit(inner, `${name}.${inner.getName()}`, fallbackFile);
      return;
    }
    if (!(sym.declarations ?? []).some(hasDoc)) missing.add(`${where}: ${name}`);
    if (!(sym.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) return;
    for (const [key, member] of sym.members ?? new Map<ts.__String, ts.Symbol>()) {
      const decls = (member.declarations ?? []).filter(isPublicMember);
      if (decls.length === 0 || key === '__index' || member.flags & ts.SymbolFlags.TypeParameter) continue;
      // A member that inherits its comment (an override, an implemented interface method) counts as documented.
      if (decls.some(hasDoc) || member.getDocumentationComment(checker).length > 0) continue;
      missing.add(`${where}: ${name}.${key === '__constructor' ? 'constructor' : String(key)}`);
    }
  };
  for (const file of files) {
    const sf = program.getSourceFile(file);
    const mod = sf && checker.getSymbolAtLocation(sf);
    if (!mod) throw new Error(`entry point ${path.relative(REPO, file)} not found or not a module`);
    for (const exported of checker.getExportsOfModule(mod)) visit(exported, exported.getName(), file);
  }
  return [...missing].sort();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const missing = undocumentedExports();
  for (const m of missing) console.log(m);
  console.log(`${missing.length} undocumented export(s)`);
  process.exitCode = missing.length ? 1 : 0;
}
