// Float16 tensors read as float32 tensors bit-exactly on every backend: through the backend's own
// conversion where it has one (tfjs-node: Bitcast + Cast in TensorFlow), else widened in JavaScript.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { halfToFloatTensor } from '../../src/backend/half-upload.ts';
import { f16ToF32, SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.ts';

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);

function sameBits(got: Float32Array, want: Float32Array): number {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let bad = 0;
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) bad++;
  return bad;
}

describe('F16 safetensors → float32 tensors', () => {
  it('every half value, through SafetensorsFile.read, matches the JavaScript widening bit for bit', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audiox-f16-'));
    const file = path.join(dir, 'h.safetensors');
    const odd = ALL.subarray(1, 8); // an odd element count takes the JavaScript path everywhere
    await writeSafetensors(file, [
      { name: 'all', dtype: 'F16', shape: [256, 256], bytes: () => new Uint8Array(ALL.buffer) },
      { name: 'odd', dtype: 'F16', shape: [7], bytes: () => new Uint8Array(odd.slice().buffer) },
    ]);
    const before = tf.memory().numTensors;
    const f = SafetensorsFile.open(file);
    try {
      const t = f.read('all');
      expect(t.shape).toEqual([256, 256]);
      expect(t.dtype).toBe('float32');
      expect(sameBits(t.dataSync() as Float32Array, f16ToF32(ALL))).toBe(0);
      t.dispose();
      const o = f.read('odd');
      expect(sameBits(o.dataSync() as Float32Array, f16ToF32(odd))).toBe(0);
      o.dispose();
    } finally {
      f.close();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('uses the native conversion exactly on the tensorflow backend', () => {
    const t = halfToFloatTensor(ALL.subarray(0, 4), [2, 2]);
    if (tf.getBackend() === 'tensorflow') {
      expect(t).not.toBeNull();
      expect(Array.from(t!.dataSync())).toEqual(Array.from(f16ToF32(ALL.subarray(0, 4))));
      t!.dispose();
    } else {
      expect(t).toBeNull();
    }
  });
});
