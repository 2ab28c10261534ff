// What torch.save pickles mean: the allow/deny policy for globals, storages from persistent ids,
// and tensors from _rebuild_tensor_v2. Only data is built; nothing named in a pickle is executed.
import { MAX_RANK } from '../src/io/safetensors.ts';
import type { SafetensorsDType } from '../src/io/safetensors.ts';
import { PickleError, PyCallable, PyDict, PyExtension, PyOpaque, PySet, PyTuple, clip, typeName } from './unpickler.ts';
import type { PyValue, UnpicklePolicy } from './unpickler.ts';

/** Storage classes by name; null = a real torch dtype that safetensors cannot hold. */
const STORAGE_DTYPES: Record<string, SafetensorsDType | null> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
  ComplexFloatStorage: null,
  ComplexDoubleStorage: null,
  QInt8Storage: null,
  QUInt8Storage: null,
  QInt32Storage: null,
  QUInt4x2Storage: null,
  QUInt2x4Storage: null,
};

const TORCH_DTYPES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int64', 'long', 'int32', 'int',
  'int16', 'short', 'int8', 'uint8', 'bool', 'complex64', 'complex128', 'cfloat', 'cdouble',
]);

/** Modules whose globals are refused outright: they can run code, touch files or the network. */
const DENIED_MODULES = new Set([
  'os', 'posix', 'nt', 'subprocess', 'sys', 'builtins', '__builtin__', 'shutil', 'socket', 'importlib',
  'pickle', '_pickle', 'cPickle', 'marshal', 'types', 'runpy', 'code', 'codeop', 'pty', 'ctypes', 'webbrowser',
  'multiprocessing', 'asyncio', 'operator', '_operator', 'functools', 'inspect', 'pdb', 'bdb', 'timeit',
  'commands', 'platform', 'signal', 'tempfile', 'glob', 'io', '_io', 'posixpath', 'ntpath', 'sqlite3', 'urllib',
  'urllib2', 'http', 'httplib', 'requests', 'ftplib', 'smtplib', 'telnetlib', 'threading', '_thread', 'thread',
  'gc', 'site', 'zipimport', 'pkgutil', 'dill', 'joblib', 'cloudpickle', 'imp', 'popen2', 'spawn',
  '_posixsubprocess', 'ensurepip', 'venv', 'distutils', 'setuptools', 'pip', 'builtin', 'exec', 'eval',
]);

/** Callable names refused whatever module they come from. */
const DENIED_NAMES = new Set([
  'eval', 'exec', 'execfile', 'compile', '__import__', 'getattr', 'setattr', 'delattr', 'open', 'system',
  'popen', 'spawn', 'spawnl', 'spawnv', 'execv', 'execve', 'execl', 'fork', 'call', 'check_call',
  'check_output', 'run', 'Popen', 'apply', 'globals', 'locals', 'vars', 'input', 'breakpoint', 'load',
  'loads', 'load_module', 'import_module', 'remove', 'unlink', 'rmtree', 'kill',
]);

/** Pure data constructors allowed from builtins (protocol 2 pickles sets and bytes this way). */
const BUILTIN_DATA: Record<string, (args: PyValue[]) => PyValue> = {
  set: (a) => new PySet(iterItems(a[0] ?? [])),
  frozenset: (a) => new PySet(iterItems(a[0] ?? [])),
  bytearray: (a) => (a[0] instanceof Uint8Array ? a[0].slice() : new Uint8Array(0)),
};

export class TorchStorageType extends PyExtension {
  constructor(
    readonly name: string,
    readonly dtype: SafetensorsDType | null,
  ) {
    super();
  }
  describe(): string {
    return `torch.${this.name}`;
  }
}

export class TorchDtype extends PyExtension {
  constructor(readonly name: string) {
    super();
  }
  describe(): string {
    return `torch.${this.name}`;
  }
}

export class TorchStorage extends PyExtension {
  constructor(
    readonly key: string,
    readonly type: TorchStorageType,
    readonly numel: number,
  ) {
    super();
  }
  describe(): string {
    return `torch.${this.type.name}`;
  }
}

export class TorchTensor extends PyExtension {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {
    super();
  }
  describe(): string {
    return 'torch.Tensor';
  }
}

function iterItems(v: PyValue): PyValue[] {
  if (Array.isArray(v)) return v;
  if (v instanceof PyTuple || v instanceof PySet) return v.items;
  if (v instanceof PyDict) return [...v.map.keys()];
  throw new PickleError(`pickle: expected an iterable, got a ${typeName(v)}`);
}

function int(v: PyValue, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw new PickleError(`pickle: ${what} must be an int, got ${typeName(v)}`);
}

/** A shape/stride for messages: at most 8 dims shown (pickled tuples can be arbitrarily long). */
export function fmtDims(d: readonly number[]): string {
  return d.length <= 8 ? `[${d.join(', ')}]` : `[${d.slice(0, 8).join(', ')}, … (${d.length} dims)]`;
}

function intTuple(v: PyValue, what: string): number[] {
  if (!(v instanceof PyTuple) && !Array.isArray(v)) throw new PickleError(`pickle: ${what} must be a tuple, got ${typeName(v)}`);
  return iterItems(v).map((x, i) => int(x, `${what}[${i}]`));
}

function rebuildTensor(args: PyValue[]): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) {
    throw new PickleError(`pickle: _rebuild_tensor_v2 expects a storage, got a ${typeName(storage ?? null)}`);
  }
  const shape = intTuple(size ?? null, 'tensor size');
  const strides = intTuple(stride ?? null, 'tensor stride');
  if (shape.length > MAX_RANK) {
    throw new PickleError(`pickle: tensor of rank ${shape.length} exceeds the limit of ${MAX_RANK} dimensions`);
  }
  if (shape.length !== strides.length) {
    throw new PickleError(`pickle: tensor size ${fmtDims(shape)} and stride ${fmtDims(strides)} differ in rank`);
  }
  if (shape.some((d) => d < 0) || strides.some((s) => s < 0)) {
    throw new PickleError(`pickle: negative tensor size/stride ${fmtDims(shape)} / ${fmtDims(strides)}`);
  }
  const off = int(offset ?? null, 'storage offset');
  if (off < 0) throw new PickleError(`pickle: negative storage offset ${off}`);
  return new TorchTensor(storage, off, shape, strides);
}

function refuse(qual: string, why: string): never {
  throw new PickleError(`refusing to unpickle global "${clip(qual)}": ${why}. The checkpoint is not a plain torch.save of tensors; do not load it`);
}

function resolveTorch(qual: string, name: string): PyValue {
  switch (qual) {
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return new PyCallable(qual, rebuildTensor);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return new PyCallable(qual, (a) => {
        if (!(a[0] instanceof TorchTensor)) throw new PickleError(`pickle: ${qual} expects a tensor, got ${typeName(a[0] ?? null)}`);
        return a[0];
      });
    case 'torch._tensor._rebuild_from_type_v2':
      // (func, new_type, args, state): tensor subclasses; we keep the plain tensor func builds.
      return new PyCallable(qual, (a) => {
        const [fn, , args] = a;
        // Only tensor rebuilders: any other callable here would escape the unpickler's work budget.
        if (!(fn instanceof PyCallable) || !fn.qualname.startsWith('torch._utils._rebuild_') || !(args instanceof PyTuple)) {
          throw new PickleError(`pickle: malformed ${qual} call (expected a torch._utils._rebuild_* function and a tuple)`);
        }
        return fn.call(args.items);
      });
    case 'torch.Tensor':
    case 'torch.nn.parameter.Parameter':
      return new PyCallable(qual, () => {
        throw new PickleError(`pickle: constructing ${qual} directly is not supported`);
      });
    case 'torch.Size':
      return new PyCallable(qual, (a) => new PyTuple(iterItems(a[0] ?? new PyTuple([]))));
    case 'torch.device':
      return new PyCallable(qual, (a) => new PyOpaque(qual, a));
    case 'torch.storage._load_from_bytes':
      return refuse(qual, 'it would run torch.load on bytes embedded in the pickle');
  }
  const storageName = qual.startsWith('torch.storage.') ? qual.slice('torch.storage.'.length) : name;
  if ((qual === `torch.${name}` || qual.startsWith('torch.storage.')) && storageName in STORAGE_DTYPES) {
    return new TorchStorageType(storageName, STORAGE_DTYPES[storageName]);
  }
  if (qual === `torch.${name}` && TORCH_DTYPES.has(name)) return new TorchDtype(name);
  if (/^torch\.(_utils|_tensor)\._rebuild/.test(qual) || /^torch\.(sparse|quantization|ao|nested)\b/.test(qual)) {
    return refuse(qual, 'this tensor type is not supported (only plain dense tensors are)');
  }
  if (TORCH_DENIED.some((m) => qual === m || qual.startsWith(`${m}.`))) {
    return refuse(qual, 'it loads or runs code');
  }
  // Other torch objects (TorchVersion in Lightning extras...) become inert placeholders.
  return new PyCallable(qual, (a) => new PyOpaque(qual, a));
}

const TORCH_DENIED = [
  'torch.load', 'torch.jit', 'torch.hub', 'torch.serialization', 'torch.package', 'torch._C', 'torch.ops',
  'torch.utils.cpp_extension', 'torch._dynamo', 'torch.compiler', 'torch._inductor', 'torch.multiprocessing',
];

/**
 * The unpickling policy for torch checkpoints. `storages` collects every storage referenced,
 * keyed by its archive key (`<archive>/data/<key>`).
 */
export function torchPolicy(storages: Map<string, TorchStorage>): UnpicklePolicy {
  return {
    resolveGlobal(module: string, name: string): PyValue {
      const qual = `${module}.${name}`;
      const top = module.split('.')[0];
      if (module === 'collections' && name === 'OrderedDict') {
        return new PyCallable(qual, (a) => {
          const d = new PyDict();
          for (const kv of a.length ? iterItems(a[0]) : []) {
            const pair = iterItems(kv);
            if (pair.length !== 2) throw new PickleError('pickle: OrderedDict item is not a (key, value) pair');
            d.map.set(pair[0], pair[1]);
          }
          return d;
        });
      }
      if ((module === 'builtins' || module === '__builtin__') && name in BUILTIN_DATA) {
        return new PyCallable(qual, BUILTIN_DATA[name]);
      }
      if ((module === '_codecs' || module === 'codecs') && name === 'encode') {
        // protocol 2 writes bytes as _codecs.encode(str, 'latin1')
        return new PyCallable(qual, (a) => {
          if (typeof a[0] !== 'string' || (a[1] !== 'latin1' && a[1] !== 'latin-1')) {
            throw new PickleError(`pickle: ${qual} is only allowed as encode(str, "latin1")`);
          }
          return Uint8Array.from(a[0], (c) => c.charCodeAt(0) & 0xff);
        });
      }
      if (DENIED_MODULES.has(top)) return refuse(qual, `module "${top}" can execute code or access the system`);
      if (DENIED_NAMES.has(name) || name.startsWith('__')) return refuse(qual, `"${name}" can execute code`);
      if (top === 'torch') return resolveTorch(qual, name);
      // Anything else (hyper-parameter classes, numpy scalars, omegaconf...) becomes inert data.
      return new PyCallable(qual, (a) => new PyOpaque(qual, a));
    },

    persistentLoad(pid: PyValue): PyValue {
      const items = pid instanceof PyTuple ? pid.items : null;
      if (!items || items[0] !== 'storage' || items.length < 5) {
        throw new PickleError(`pickle: unsupported persistent id ${typeName(pid)} (expected ('storage', type, key, location, numel))`);
      }
      const [, type, key, , size] = items;
      if (!(type instanceof TorchStorageType)) {
        throw new PickleError(`pickle: persistent id names ${typeName(type)} instead of a torch storage type`);
      }
      if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(key)) {
        throw new PickleError(`pickle: invalid storage key ${JSON.stringify(typeof key === 'string' ? clip(key, 40) : typeName(key))}`);
      }
      const existing = storages.get(key);
      if (existing) return existing;
      const s = new TorchStorage(key, type, int(size, 'storage numel'));
      storages.set(key, s);
      return s;
    },
  };
}
