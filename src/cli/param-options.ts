// Command-line options built from the parameter schema (src/pipeline/params-schema.ts): the flag, the value
// parser and the help text (with the default) of each come from its entry.
import { InvalidArgumentError, type Command } from 'commander';
import { PARAMS, defaultText, type ParamName, type ParamSpec } from '../pipeline/params-schema.ts';

export function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${v}"`);
    return n;
  };
}

export function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${v}"`);
    return n;
  };
}

/** The long flag of a commander flag spec: "-p, --prompt <text>" → "--prompt". */
export function longFlag(cli: string): string {
  const m = /--[a-z][a-z-]*/.exec(cli);
  if (!m) throw new Error(`no long flag in "${cli}"`);
  return m[0];
}

function parserFor(p: ParamSpec, flag: string): ((v: string) => number) | undefined {
  if (p.kind === 'int' || p.kind === 'seed') return int(flag);
  if (p.kind === 'number') return num(flag);
  return undefined;
}

/** The help line of a parameter without a commander default: its default (and what positions take) appended. */
function helpWithDefault(p: ParamSpec): string {
  if (p.kind === 'position') {
    const d = p.formDefault ? '' : `; default: ${defaultText(p)}`;
    return `${p.help} (seconds, or a percentage like 30%${d})`;
  }
  if (p.kind === 'int' || p.kind === 'number') return `${p.help} (default: ${defaultText(p)})`;
  return p.help;
}

export interface ParamOptionOverrides {
  /** Commander fills in this value (help: "(default: x)"); `true`: the schema's default. Otherwise the option stays undefined. */
  default?: number | true;
  /** Replaces the schema's help line. */
  help?: string;
}

/** Adds the schema parameter `name` as an option of `cmd`. */
export function addParamOption(cmd: Command, name: ParamName, o: ParamOptionOverrides = {}): Command {
  const p: ParamSpec = PARAMS[name];
  if (!p.cli) throw new Error(`parameter "${name}" has no command-line flag`);
  const parse = parserFor(p, longFlag(p.cli));
  if (o.default !== undefined) {
    const value = o.default === true ? p.default : o.default;
    if (typeof value !== 'number' || !parse) throw new Error(`parameter "${name}": only numeric options take a commander default`);
    return cmd.option(p.cli, o.help ?? p.help, parse, value);
  }
  const help = o.help ?? helpWithDefault(p);
  return parse ? cmd.option(p.cli, help, parse) : cmd.option(p.cli, help);
}
