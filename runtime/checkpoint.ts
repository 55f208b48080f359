// Optimizer checkpoints in safetensors. Each tensor's bf16 parameter is stored under its own name
// (so any safetensors reader can load the model weights), and every other stored field under
// `name::field` (correction bits, state codes, group scales). Hyperparameters, options, step counts
// and groups go in the metadata. Loading validates everything before it writes anything.

import type { Storage } from '../compiler/ir/ir.ts';
import { PARAM } from '../optim/fuse.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { FieldSlot, Layout } from './arena.ts';
import type { Backend, DeviceBuffer } from './backends/backend.ts';
import type { Resolved } from './options.ts';
import type { Dtype, Entry } from './safetensors.ts';
import { CheckpointError, decode, encode, writeFileAtomic } from './safetensors.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';

export { CheckpointError };
export const FORMAT = 'flashoptim/1';

/** What a checkpoint reads from and restores into: a session (runtime/session.ts) implements it. */
export interface Checkpointable {
  readonly def: OptimizerDef<Hyper>;
  readonly options: Resolved;
  readonly layout: Layout;
  readonly backend: Backend;
  readonly fields: readonly FieldSlot[];
  buffer(name: string): DeviceBuffer;
  readonly steps: Int32Array;
  stepCount: number;
  hyperOf(name: string): Hyper;
  restoreHyper(perTensor: readonly Hyper[]): void;
  recomputeParamStats(): void;
  exportFp32(): Promise<Record<string, Float32Array>>;
}

function dtypeOf(s: Checkpointable, field: string, storage: Storage): Dtype {
  if (storage === 'u16') {
    if (field === PARAM) return 'BF16';
    if (field.endsWith('_scale')) return s.options.scale === 'fp16' ? 'F16' : 'BF16';
    return 'BF16'; // unquantized states in the bf16 parameter dtype
  }
  return ({ f32: 'F32', i32: 'I32', u32: 'U32', i16: 'I16', u8: 'U8', i8: 'I8' } as const)[storage];
}

const keyOf = (tensor: string, field: string) => (field === PARAM ? tensor : `${tensor}::${field}`);

export async function saveCheckpoint(s: Checkpointable): Promise<Uint8Array> {
  const tensors: Record<string, Entry> = {};
  for (const f of s.fields) {
    const buf = s.buffer(f.name);
    for (const t of s.layout.tensors) {
      const [g0, g1] = t.groups;
      const data =
        f.axis === 'group' ? await s.backend.read(buf, g0, g1 - g0) : await s.backend.read(buf, t.offset, t.length);
      tensors[keyOf(t.name, f.name)] = {
        dtype: dtypeOf(s, f.name, f.storage),
        shape: f.axis === 'group' ? [g1 - g0] : t.shape,
        data,
      };
    }
  }
  const groups = s.layout.tensors.map((t) => s.hyperOf(t.name));
  return encode(tensors, {
    format: FORMAT,
    optimizer: s.def.name,
    options: JSON.stringify(s.options),
    tensors: JSON.stringify(s.layout.tensors.map((t) => ({ name: t.name, shape: t.shape }))),
    hyper: JSON.stringify(groups),
    steps: JSON.stringify([...s.steps]),
    stepCount: String(s.stepCount),
  });
}

/** Restore a checkpoint into an optimizer of the same tensors and storage options. */
export async function loadCheckpoint(s: Checkpointable, bytes: Uint8Array): Promise<void> {
  const { tensors, metadata } = decode(bytes);
  if (metadata['format'] !== FORMAT)
    throw new CheckpointError(`checkpoint: format ${JSON.stringify(metadata['format'])} is not ${FORMAT}`);
  if (metadata['optimizer'] !== s.def.name)
    throw new CheckpointError(`checkpoint: saved by ${metadata['optimizer']}, loading into ${s.def.name}`);
  const saved = JSON.parse(metadata['options'] ?? '{}') as Record<string, unknown>;
  for (const k of ['paramDtype', 'masterWeightBits', 'quantize', 'groupSize', 'scale'] as const)
    if (saved[k] !== s.options[k])
      throw new CheckpointError(
        `checkpoint: option ${k} is ${JSON.stringify(saved[k])} in the file but ${JSON.stringify(s.options[k])} here`,
      );
  const steps = JSON.parse(metadata['steps'] ?? '[]') as number[];
  const hyper = JSON.parse(metadata['hyper'] ?? '[]') as Hyper[];
  if (steps.length !== s.layout.tensors.length || hyper.length !== steps.length)
    throw new CheckpointError(
      `checkpoint: holds ${steps.length} tensors, this optimizer has ${s.layout.tensors.length}`,
    );
  // Validate every field of every tensor before touching the optimizer.
  const arenas = s.fields.map((f) => {
    const whole = new arrayFor[f.storage](f.axis === 'group' ? s.layout.groups : s.layout.length);
    for (const t of s.layout.tensors) {
      const e = tensors[keyOf(t.name, f.name)];
      const want = f.axis === 'group' ? t.groups[1] - t.groups[0] : t.length;
      if (!e) throw new CheckpointError(`checkpoint: tensor ${keyOf(t.name, f.name)} is missing`);
      if (e.data.length !== want || e.data.BYTES_PER_ELEMENT !== whole.BYTES_PER_ELEMENT)
        throw new CheckpointError(
          `checkpoint: ${keyOf(t.name, f.name)} has ${e.data.length} ${e.dtype} values, expected ${want} of ${f.storage}`,
        );
      whole.set(e.data as never, f.axis === 'group' ? t.groups[0] : t.offset);
    }
    return [f, whole] as const;
  });
  s.layout.tensors.forEach((t, i) => s.def.with(hyper[i] as never)); // throws on invalid hyperparameters
  for (const [f, whole] of arenas) await s.backend.write(s.buffer(f.name), whole);
  s.steps.set(steps);
  s.stepCount = Number(metadata['stepCount'] ?? 0);
  s.restoreHyper(hyper);
  s.recomputeParamStats();
}

/** Master weights as f32 safetensors: loadable by any reader (torch, numpy, TF.js, …). */
export async function saveFp32(s: Checkpointable): Promise<Uint8Array> {
  const all = await s.exportFp32();
  return encode(
    Object.fromEntries(
      s.layout.tensors.map((t) => [t.name, { dtype: 'F32' as const, shape: t.shape, data: all[t.name]! }]),
    ),
    { format: 'flashoptim-fp32/1' },
  );
}

export async function saveCheckpointFile(s: Checkpointable, path: string): Promise<void> {
  await writeFileAtomic(path, await saveCheckpoint(s));
}
export async function loadCheckpointFile(s: Checkpointable, path: string): Promise<void> {
  const fs = await import('node:fs/promises');
  await loadCheckpoint(s, new Uint8Array(await fs.readFile(path)));
}
