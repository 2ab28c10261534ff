// A restricted pickle VM. It only builds data: every GLOBAL is resolved through a caller-supplied
// policy that returns our own data-building callables (or refuses), so nothing from the pickle is
// ever imported or executed. It is iterative (no recursion, no argument spreading), so nesting depth
// and item counts are bounded by the pickle's size, not by the JS stack; the work our callables do
// on their arguments is charged to a budget proportional to that size.

export class PickleError extends Error {}

/** A Python tuple (arrays are lists). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A dict / OrderedDict; keys are primitives or object identities. `attrs` holds BUILD state. */
export class PyDict {
  readonly map = new Map<PyValue, PyValue>();
  attrs: PyValue = null;
}

export class PySet {
  constructor(readonly items: PyValue[]) {}
}

/** An instance of a class we do not interpret (hyper-parameter objects etc.): inert data. */
export class PyOpaque {
  state: PyValue = null;
  constructor(
    readonly type: string,
    readonly args: PyValue[],
  ) {}
}

/** A callable resolved by the policy: our own code that builds a value from its arguments. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: PyValue[]) => PyValue,
  ) {}
}

/** Values the policy or persistent loader may create (tensors, storages, dtypes...). */
export abstract class PyExtension {
  abstract describe(): string;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyOpaque
  | PyCallable
  | PyExtension;

export interface UnpicklePolicy {
  /** Resolves `module.name`; must throw a PickleError to refuse it. */
  resolveGlobal(module: string, name: string): PyValue;
  /** Resolves a BINPERSID / PERSID id. */
  persistentLoad(pid: PyValue): PyValue;
}

/** Longest piece of pickled text quoted in a message or used as a display name. */
export const MAX_DISPLAY_CHARS = 200;

/** Python's default int_max_str_digits: longer decimal INT/LONG literals are refused. */
export const MAX_INT_DIGITS = 4300;

/** Caps a string taken from pickled data for display (messages, skipped-entry names). */
export function clip(s: string, max = MAX_DISPLAY_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`;
}

/** A display name for a dict key: strings (capped) as they are, anything else by its type, e.g. `<list>`. */
export function describeKey(k: PyValue): string {
  return typeof k === 'string' ? clip(k) : `<${typeName(k)}>`;
}

/** The Python type name of a value (capped: class names come from the pickle). */
export function typeName(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof PySet) return 'set';
  if (v instanceof PyOpaque) return clip(v.type);
  if (v instanceof PyCallable) return `<callable ${clip(v.qualname)}>`;
  return clip(v.describe());
}

const utf8 = new TextDecoder('utf-8');
const latin1 = new TextDecoder('latin1');

/** Little-endian two's complement → bigint, in linear time (via hex) whatever the length. */
function bytesToBigInt(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  const v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
  return b[b.length - 1] & 0x80 ? v - (1n << BigInt(8 * b.length)) : v;
}

function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Items a callable may copy out of its argument (what building a set/dict/bytes from it costs). */
function shallowSize(v: PyValue): number {
  if (typeof v === 'string' || v instanceof Uint8Array || Array.isArray(v)) return v.length;
  if (v instanceof PyTuple || v instanceof PySet) return v.items.length;
  if (v instanceof PyDict) return v.map.size;
  return 0;
}

export interface UnpickleOptions {
  /**
   * Work budget in units of one opcode or one item a callable receives (default
   * 16 × the pickle's size + 2^20). Exceeding it is an error: the pickle does far more work than its size explains.
   */
  maxWork?: number;
}

/** Runs the pickle program in `data` and returns the value STOP leaves on the stack. */
export function unpickle(data: Uint8Array, policy: UnpicklePolicy, opts: UnpickleOptions = {}): PyValue {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  // MARK saves the current stack on the metastack and starts a fresh one.
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  const maxWork = opts.maxWork ?? 16 * data.length + (1 << 20);
  let work = 0;

  const fail = (msg: string): never => {
    throw new PickleError(`pickle: ${msg} (at byte ${pos})`);
  };
  const charge = (units: number) => {
    work += units;
    if (work > maxWork) {
      fail(
        `the pickle does more than ${maxWork} units of work (16× its ${data.length} bytes + 2^20): ` +
          'it rebuilds large shared objects over and over, which no torch.save output does; refusing it',
      );
    }
  };
  const need = (n: number) => {
    if (pos + n > data.length) fail(`truncated: needs ${n} more bytes, the data ends at ${data.length}`);
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number) => {
    if (n < 0) fail(`negative length ${n}`);
    need(n);
    pos += n;
    return data.subarray(pos - n, pos);
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: missing newline');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    if (metastack.length === 0) fail('no MARK to pop to');
    stack = metastack.pop()!;
    return items;
  };
  const push = (v: PyValue) => stack.push(v);
  const memoIndex = (s: string): number => {
    const t = s.trim();
    if (!/^\d{1,15}$/.test(t)) fail(`bad memo index ${JSON.stringify(clip(t, 40))}`);
    return Number(t);
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`memo key ${i} is not defined`);
    return memo.get(i)!;
  };
  const call = (fn: PyValue, args: PyValue, op: string): PyValue => {
    if (!(fn instanceof PyCallable)) fail(`${op} on a non-callable ${typeName(fn)}`);
    if (!(args instanceof PyTuple)) fail(`${op} arguments are a ${typeName(args)}, expected a tuple`);
    const items = (args as PyTuple).items;
    for (const a of items) charge(shallowSize(a));
    return (fn as PyCallable).call(items);
  };
  const setItems = (d: PyValue, kv: PyValue[]) => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on a ${typeName(d)}`);
    if (kv.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (d as PyDict).map.set(kv[i], kv[i + 1]);
  };
  // A loop, not push(...items): spreading 300k items overflows the JS stack.
  const pushAll = (to: PyValue[], items: PyValue[]) => {
    for (const it of items) to.push(it);
  };
  const append = (l: PyValue, items: PyValue[]) => {
    if (!Array.isArray(l)) fail(`APPEND(S) on a ${typeName(l)}`);
    pushAll(l as PyValue[], items);
  };
  const intLiteral = (s: string, what: string): number | bigint => {
    const digits = s.replace(/^[-+]/, '');
    if (digits.length > MAX_INT_DIGITS) fail(`${what} literal of ${digits.length} digits exceeds the ${MAX_INT_DIGITS}-digit limit`);
    if (!/^[-+]?\d+$/.test(s)) fail(`bad ${what} literal ${JSON.stringify(clip(s, 40))}`);
    return normInt(BigInt(s));
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    charge(1);
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('unsupported pickle protocol (> 5)');
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || metastack.length) fail(`STOP with ${stack.length} items on the stack`);
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(normInt(bytesToBigInt(bytes(u8()))));
        break;
      case 0x8b: // LONG4
        push(normInt(bytesToBigInt(bytes(i32()))));
        break;
      case 0x49: {
        // INT (text; "01"/"00" are True/False)
        const s = line().trim();
        if (s === '01') push(true);
        else if (s === '00') push(false);
        else push(intLiteral(s, 'INT'));
        break;
      }
      case 0x4c: {
        // LONG (text)
        push(intLiteral(line().trim().replace(/L$/, ''), 'LONG'));
        break;
      }
      case 0x46: // FLOAT (text)
        push(Number.parseFloat(line()));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(utf8.decode(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8.decode(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8.decode(bytes(u64())));
        break;
      case 0x54: // BINSTRING (py2 str)
        push(latin1.decode(bytes(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(bytes(u64()).slice());
        break;
      case 0x96: // BYTEARRAY8
        push(bytes(u64()).slice());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new PySet([]));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet)) fail(`ADDITEMS on a ${typeName(s)}`);
        pushAll((s as PySet).items, items);
        break;
      }
      case 0x91: // FROZENSET
        push(new PySet(popMark()));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        push(policy.resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(policy.resolveGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(call(fn, args, 'REDUCE'));
        break;
      }
      case 0x81: {
        // NEWOBJ (cls.__new__(cls, *args): same data-building call for our callables)
        const args = pop();
        const cls = pop();
        push(call(cls, args, 'NEWOBJ'));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (kwargs ignored)
        pop();
        const args = pop();
        const cls = pop();
        push(call(cls, args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: {
        // BUILD: record state, never call __setstate__
        const state = pop();
        const obj = top();
        if (obj instanceof PyOpaque) obj.state = state;
        else if (obj instanceof PyDict) obj.attrs = state;
        else if (!(obj instanceof PyExtension)) fail(`BUILD on a ${typeName(obj)}`);
        break;
      }
      case 0x51: // BINPERSID
        push(policy.persistentLoad(pop()));
        break;
      case 0x50: // PERSID (text id)
        push(policy.persistentLoad(line()));
        break;
      case 0x70: // PUT
        memo.set(memoIndex(line()), top());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x67: // GET
        push(memoGet(memoIndex(line())));
        break;
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      default:
        pos = opPos;
        fail(
          `unsupported opcode 0x${op.toString(16).padStart(2, '0')} (${JSON.stringify(String.fromCharCode(op))}); ` +
            'this is not a pickle torch.save writes',
        );
    }
  }
}
