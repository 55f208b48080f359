/// <reference types="@webgpu/types" />
// TF.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu 4.22.0) as the adapter sees it: its
// device, its command encoder, and each tensor's own GPUBuffer. Everything here reads members the
// package's TypeScript types mark private (commandEncoder) or leave untyped, so they are named once,
// in `TfWebGpu`, and checked when the backend is first seen: another version that renamed one
// fails there, naming it, instead of corrupting a buffer later.
//
// Three facts of 4.22's backend_webgpu.ts this file relies on:
// - Kernels are recorded into `commandEncoder` and submitted lazily (every 15 dispatches, or on a
//   read). `flush` submits what is recorded, so a submission of ours made after it is ordered after
//   the kernels that computed our gradients.
// - A tensor's data is `tensorMap.get(dataId)`: `resource` (a GPUBuffer with STORAGE | COPY_SRC |
//   COPY_DST usage) and/or `values` (a CPU copy). Small tensors may live on the CPU only
//   (WEBGPU_CPU_FORWARD); `uploadToGPU(dataId)` moves them (and drops `values`). A read caches
//   `values` next to `resource`, and later reads return that cache.
// - Buffers are reference-counted per dataId (`incRef` / `disposeData`), and a released buffer is
//   reused by the next tensor of its size. A reference of ours keeps a buffer from being reused.

import * as tf from '@tensorflow/tfjs-core';
import type { DataId } from '@tensorflow/tfjs-core';
import { installNavigatorGpu } from '../runtime/backends/dawn.ts';
import { importPeer } from '../runtime/backends/peers.ts';
import type { DeviceGradient } from '../runtime/on-device.ts';

/** One tensor's data in TF.js's WebGPU backend. */
export interface TfTensorData {
  values: unknown;
  readonly dtype: string;
  readonly shape: number[];
  refCount: number;
  resource?: unknown;
}

/** The members of 4.22's WebGPUBackend the adapter uses. */
export interface TfWebGpu extends tf.KernelBackend {
  readonly device: GPUDevice;
  readonly tensorMap: { get(id: DataId): TfTensorData | undefined; has(id: DataId): boolean };
  readonly commandEncoder: GPUCommandEncoder | null;
  readonly bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  endComputePassEncoder(): void;
  ensureCommandEncoderReady(): void;
  submitQueue(): void;
  uploadToGPU(id: DataId): void;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  memory(): { numBytesInGPU: number; numBytesAllocatedInGPU: number; unreliable: boolean };
}

const METHODS = [
  'endComputePassEncoder',
  'ensureCommandEncoderReady',
  'submitQueue',
  'uploadToGPU',
  'makeTensorInfo',
  'incRef',
  'refCount',
  'disposeData',
] as const;

/**
 * TF.js's current backend if it is a WebGPU backend (it has a GPUDevice), else null. A WebGPU
 * backend without one of the members this adapter uses throws, naming it.
 */
export function tfWebGpu(): TfWebGpu | null {
  const b = tf.backend() as Partial<TfWebGpu> | undefined;
  const device = b?.device as Partial<GPUDevice> | undefined;
  if (!b || !device || typeof device.createBuffer !== 'function' || !device.queue) return null;
  const missing = [
    ...METHODS.filter((m) => typeof (b as Record<string, unknown>)[m] !== 'function'),
    ...(['tensorMap', 'bufferManager'] as const).filter((m) => !b[m]),
    ...('commandEncoder' in b ? [] : ['commandEncoder']),
  ];
  if (missing.length)
    throw new TypeError(
      `tfjs adapter: TF.js backend ${tf.getBackend()} has a GPUDevice but no ${missing.join(', ')}; the adapter reads @tensorflow/tfjs-backend-webgpu 4.22.0's buffers`,
    );
  return b as TfWebGpu;
}

/**
 * Make TF.js train on WebGPU: in Node, V8's on-stack replacement is turned off before any device
 * exists (runtime/backends/dawn.ts: Dawn crashes without it) and `navigator.gpu` comes from the
 * `webgpu` package, with its classes as globals; then @tensorflow/tfjs-backend-webgpu is loaded (it
 * registers itself only if `navigator.gpu` exists when it loads) and selected. Returns the
 * backend, or null where there is no GPU adapter (TF.js keeps its current backend).
 */
export async function useTfWebGpu(): Promise<TfWebGpu | null> {
  const gpu = await installNavigatorGpu('useTfWebGpu');
  if (!gpu || !(await gpu.requestAdapter())) return null;
  await importPeer('@tensorflow/tfjs-backend-webgpu', 'useTfWebGpu');
  if (!(await tf.setBackend('webgpu'))) return null;
  return tfWebGpu();
}

const STORAGE = 0x80,
  COPY_SRC = 0x4,
  COPY_DST = 0x8;

const isBuffer = (r: unknown): r is GPUBuffer =>
  typeof r === 'object' && r !== null && typeof (r as GPUBuffer).usage === 'number' && 'mapState' in r;

/** The GPUBuffer holding tensor `id` (uploaded first if it lives on the CPU), or null (a texture). */
export function bufferOf(b: TfWebGpu, id: DataId, usage = STORAGE | COPY_SRC): GPUBuffer | null {
  b.uploadToGPU(id);
  const r = b.tensorMap.get(id)?.resource;
  return isBuffer(r) && (r.usage & usage) === usage ? r : null;
}

/** Submit what TF.js has recorded (its kernels so far run before anything submitted after this). */
export function flush(b: TfWebGpu): void {
  b.endComputePassEncoder();
  if (b.commandEncoder) b.submitQueue();
}

/**
 * Drop a reference of ours to `id`; its buffer goes back to TF.js when it was the last. TF.js's
 * engine tried to forget the dataId when its last tensor went and could not (we held it): forget
 * it now, as engine.disposeTensor would have.
 */
export function unref(b: TfWebGpu, id: DataId): void {
  if (b.tensorMap.has(id) && b.disposeData(id)) tf.engine().removeDataId(id, b);
}

/** A gradient held for one step: where the optimizer reads it, and how to let it go. */
export interface HeldGradient {
  readonly gradient: DeviceGradient;
  /** Let TF.js reuse the buffer: call once the step that reads it has been submitted. */
  release(): void;
  /** True when the values were copied to a buffer of their own (`dataToGPU`): not zero-copy. */
  readonly copied: boolean;
}

/**
 * Tensor `t`'s own GPUBuffer, kept from reuse until `release()`: TF.js disposes gradients as soon
 * as applyGradients returns and hands their buffers to the next tensor of the same size, while
 * our step reads them later (inside its own submission). A tensor whose data is not a storage
 * buffer (a texture) is copied into one by `dataToGPU()`.
 */
export function holdGradient(b: TfWebGpu, t: tf.Tensor): HeldGradient {
  const buffer = bufferOf(b, t.dataId);
  if (buffer) {
    b.incRef(t.dataId);
    let held = true;
    return {
      gradient: { buffer, dtype: 'f32' },
      copied: false,
      release: () => {
        if (held) unref(b, t.dataId);
        held = false;
      },
    };
  }
  const copy = t.dataToGPU();
  return { gradient: { buffer: copy.buffer, dtype: 'f32' }, copied: true, release: () => copy.tensorRef.dispose() };
}

export const PARAM_USAGE = STORAGE | COPY_SRC | COPY_DST;
