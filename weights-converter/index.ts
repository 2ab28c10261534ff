export { convertCheckpoint, openTorchCheckpoint, castFloat, gather, ConvertError } from './convert.ts';
export type { ConvertOptions, ConvertProgress, ConvertResult, TargetDType, TorchCheckpoint } from './convert.ts';
export { unpickle, PickleError, PyDict, PyTuple, PySet, PyOpaque, PyCallable } from './unpickler.ts';
export type { PyValue, UnpicklePolicy } from './unpickler.ts';
export { torchPolicy, TorchTensor, TorchStorage } from './torch.ts';
export { ZipReader, ZipError } from './zip.ts';
