// GenerateOptions (the library's names) and the parameter schema (the CLI's, the HTTP API's and README's
// names) use the same names: a schema parameter is a GenerateOptions field of the same name, an inpaint*
// parameter a field of `GenerateOptions.inpaint`, and every other field is listed below as library-only.
// Checked twice: at compile time (tsc over test/) and at run time (the compiler API reads the interfaces).
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type { InpaintOptions } from '../../src/pipeline/inpaint.ts';
import { PARAM_NAMES, type ParamDefaults, type ParamName } from '../../src/pipeline/params-schema.ts';
import type { LongformOptions } from '../../src/pipeline/longform.ts';
import type { GenerateOptions } from '../../src/pipeline/types.ts';
import { REPO } from '../helpers.ts';
import { SOURCE_COMPILER_OPTIONS } from '../package/undocumented.ts';

/** Parameters of the web page only (the server acts on them; generate() has no use for them). */
const WEB_ONLY = ['previewEvery'] as const satisfies readonly ParamName[];
/** Parameters of long-form generation only: fields of `LongformOptions` (generateLongform), not of one window. */
const LONGFORM_ONLY = ['fullVideo', 'windowOverlap'] as const satisfies readonly (ParamName & keyof LongformOptions)[];
type InpaintParam = Extract<ParamName, `inpaint${string}`>;
type TopParam = Exclude<ParamName, (typeof WEB_ONLY)[number] | (typeof LONGFORM_ONLY)[number] | InpaintParam>;

/** Where each inpaint* parameter lives in `GenerateOptions.inpaint`. */
const INPAINT_FIELD = {
  inpaintStart: 'maskStart',
  inpaintEnd: 'maskEnd',
  inpaintSoftnessL: 'softnessL',
  inpaintSoftnessR: 'softnessR',
  inpaintMarination: 'marination',
  inpaintCropFrom: 'cropFrom',
  inpaintPasteFrom: 'pasteFrom',
  inpaintPasteTo: 'pasteTo',
} as const satisfies Record<InpaintParam, keyof InpaintOptions>;

/** Fields that are not scalar parameters (media, tensors, callbacks) or exist for library users only. */
const LIBRARY_ONLY = [
  'video',
  'image',
  'audio',
  'initAudio',
  'initLatents',
  'holdKept',
  'inpaint',
  'onProgress',
  'signal',
  'conditioningTensors',
  'numberConditioning',
  'conditionerInputs',
  'noise',
  'normalize',
  'returnLatents',
] as const satisfies readonly Exclude<keyof GenerateOptions, ParamName>[];

// ---- compile time ----
type IsNever<T> = [T] extends [never] ? true : false;
/** Schema parameters that GenerateOptions lacks. */
type MissingFields = Exclude<TopParam, keyof GenerateOptions>;
/** GenerateOptions fields that are neither schema parameters nor listed as library-only. */
type Unclassified = Exclude<keyof GenerateOptions, TopParam | (typeof LIBRARY_ONLY)[number]>;
/** Schema parameters whose default the field's type does not accept. */
type WrongTypes = { [K in TopParam]: ParamDefaults[K] extends NonNullable<GenerateOptions[K]> ? never : K }[TopParam];
type WrongInpaintTypes = {
  [K in InpaintParam]: ParamDefaults[K] extends NonNullable<InpaintOptions[(typeof INPAINT_FIELD)[K]]> ? never : K;
}[InpaintParam];
const compileTimeChecks: [IsNever<MissingFields>, IsNever<Unclassified>, IsNever<WrongTypes>, IsNever<WrongInpaintTypes>] = [true, true, true, true];

// ---- run time ----
function interfaceFields(file: string, name: string): string[] {
  const program = ts.createProgram([path.join(REPO, file)], { ...SOURCE_COMPILER_OPTIONS, noResolve: true });
  const sf = program.getSourceFile(path.join(REPO, file));
  const decl = sf?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  if (!decl) throw new Error(`interface ${name} not found in ${file}`);
  return decl.members.map((m) => (m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name)) ? m.name.text : '?'));
}

describe('GenerateOptions field names = the parameter schema names', () => {
  it('holds at compile time', () => {
    expect(compileTimeChecks).toEqual([true, true, true, true]);
  });

  it('every schema parameter is a GenerateOptions field (or an `inpaint` field) of the same name, and every other field is library-only', () => {
    const fields = interfaceFields('src/pipeline/types.ts', 'GenerateOptions');
    const inpaintFields = interfaceFields('src/pipeline/inpaint.ts', 'InpaintOptions');
    const isInpaint = (n: string): n is InpaintParam => n in INPAINT_FIELD;
    const other = new Set<string>([...WEB_ONLY, ...LONGFORM_ONLY]);
    const top = PARAM_NAMES.filter((n) => !isInpaint(n) && !other.has(n));
    expect(top.filter((n) => !fields.includes(n)), 'schema parameters missing from GenerateOptions').toEqual([]);
    const classified = new Set<string>([...top, ...LIBRARY_ONLY]);
    expect(fields.filter((f) => !classified.has(f)), 'GenerateOptions fields not in the schema (add them there, or to LIBRARY_ONLY)').toEqual([]);
    const inpaintParams = PARAM_NAMES.filter(isInpaint);
    expect(inpaintParams.map((n) => INPAINT_FIELD[n]).sort()).toEqual([...inpaintFields].sort());
    const longformFields = interfaceFields('src/pipeline/longform.ts', 'LongformOptions');
    expect(LONGFORM_ONLY.filter((n) => !longformFields.includes(n)), 'long-form parameters missing from LongformOptions').toEqual([]);
  });
});
