// Gradients in. A gradient is a host array (written to the arena's gradient field), or a buffer
// already on the device (a GPUBuffer on WebGPU: the framework's own gradient, or a region of the
// arena that a backward pass wrote into directly). A device gradient moves into the arena inside
// the step's own submission: not at all when it is already there, by a copy when its storage is
// the arena's, and otherwise by a conversion kernel built from the codecs themselves (the source's
// decode, the gradient codec's encode), so f32 → bf16 on the device rounds as toBf16 does.

import type { Storage } from '../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { kernel, storageBytes } from '../compiler/ir/kernel.ts';
import type { Codec } from '../dsl/codec.ts';
import { decodeStored, encodeStored } from '../dsl/codec.ts';
import { f32Codec, masterCodec } from '../dsl/master.ts';
import { and, field, isFinite, ne, not, uniform } from '../dsl/ops.ts';
import { shown } from '../optim/define.ts';
import { GRAD } from '../optim/fuse.ts';
import type { Backend, DeviceBuffer, Item, Program } from './backends/backend.ts';

/**
 * A gradient already on the device: `buffer` is the backend's native buffer (a GPUBuffer on the
 * optimizer's device, with COPY_SRC usage, and STORAGE usage when it is converted or bound),
 * holding the tensor's values from byte `offset` (a multiple of 4; 0 by default), as f32 or bf16.
 * It is read when the step runs: await step() before writing the buffer again.
 */
export interface DeviceGradient {
  readonly buffer: unknown;
  readonly offset?: number;
  readonly dtype: 'f32' | 'bf16';
}

/** A checked gradient: host values in the arena's gradient storage, or a view of a device buffer. */
export type Gradient = { readonly host: FieldArray } | { readonly device: DeviceBuffer };

export const isDeviceGradient = (g: unknown): g is DeviceGradient =>
  typeof g === 'object' && g !== null && !ArrayBuffer.isView(g) && 'buffer' in g && 'dtype' in g;

const sourceCodec = (s: Storage): Codec => (s === 'f32' ? f32Codec : masterCodec({ narrow: 'bf16', bits: null }));

/** A view of a device gradient for tensor `name` of `length` values, every field checked. */
export function deviceView(b: Backend, name: string, length: number, g: DeviceGradient): DeviceBuffer {
  if (!b.wrap)
    throw new TypeError(
      `gradient ${shown(name)}: a device gradient ({ buffer, dtype }) needs a backend with device buffers (WebGpuBackend); this optimizer runs on ${b.name}`,
    );
  if (g.dtype !== 'f32' && g.dtype !== 'bf16')
    throw new TypeError(`gradient ${shown(name)}: dtype must be 'f32' or 'bf16', got ${shown(g.dtype)}`);
  const offset = g.offset ?? 0;
  try {
    return b.wrap(g.buffer, g.dtype === 'f32' ? 'f32' : 'u16', length, offset);
  } catch (e) {
    (e as Error).message = `gradient ${shown(name)}: ${(e as Error).message}`;
    throw e;
  }
}

/**
 * The arena gradient from element i − g0·G of `x` (a `source` buffer holding only the launched
 * groups): its bits when the storage is the arena's (a copy on the GPU's cores, several times the
 * bandwidth of copyBufferToBuffer's copy engine on an H200), else decoded and re-encoded.
 */
export function gradientIn(source: Storage, grad: Codec, groupSize: number): Kernel {
  const x = field('x', source);
  const same = grad.fields.length === 1 && grad.fields[0]!.storage === source;
  return kernel({
    name: `gradient-in-${source}`,
    groupSize,
    outputs: same
      ? [{ field: GRAD, storage: source, axis: 'element', value: x }]
      : encodeStored(GRAD, grad, sourceCodec(source).decode([x])),
    windowed: ['x'],
  });
}

/** Copies at least this long go through gradientIn on the GPU's cores (when the view can be bound). */
const KERNEL_COPY = 1 << 16;
/** A binding offset every WebGPU device accepts (minStorageBufferOffsetAlignment is at most 256). */
const BIND_ALIGN = 256;

/** Counts the non-finite gradient values of active tensors ('error' policy on device gradients). */
export function nonFiniteCheck(grad: Codec, groupSize: number): Kernel {
  return kernel({
    name: 'gradient-check',
    groupSize,
    outputs: [],
    counters: [{ name: 'nonFinite', value: and(ne(uniform('active'), 0), not(isFinite(decodeStored(GRAD, grad)))) }],
  });
}

/** Where a tensor's device gradient goes: the arena's gradient buffer at the tensor's offset. */
export interface Target {
  readonly backend: Backend;
  readonly grad: DeviceBuffer;
  readonly at: number;
  readonly length: number;
  readonly groups: readonly [number, number];
}

/**
 * What moves `view` into the arena: nothing when it already is that region; a launch of `convert`
 * (gradientIn) when the storage differs, when a short tensor's bytes are not whole words, or when
 * a long one can be bound; otherwise a copy.
 */
export function intake(to: Target, view: DeviceBuffer, convert: () => Program): Item[] {
  const b = to.backend,
    sb = storageBytes[view.storage];
  if (view.storage === to.grad.storage) {
    const src = b.native?.(view),
      dst = b.native?.(to.grad);
    if (src && dst && src.buffer === dst.buffer && src.offset === dst.offset + to.at * sb) return [];
    const bindable = !src || src.offset % BIND_ALIGN === 0;
    if ((to.length * sb) % 4 === 0 && !(to.length >= KERNEL_COPY && bindable))
      return [{ copy: { from: view, fromAt: 0, to: to.grad, toAt: to.at }, length: to.length }];
  }
  return [
    {
      program: convert(),
      launch: {
        bindings: { [GRAD]: to.grad, x: view },
        uniforms: new Float32Array(1),
        rowOf: null,
        groups: to.groups,
        // Elements past the tensor (the arena's padding) are neither read nor written.
        length: to.at + to.length,
      },
    },
  ];
}
