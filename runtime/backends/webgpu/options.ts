/// <reference types="@webgpu/types" />
// The WebGPU backend's public options, and their checks. Only real user choices live here; the
// ablations that explain where a kernel's time goes are diagnostics (diagnostics.ts), and what the
// backend probes from the device itself (subgroups, whether fma is fused) is never an option.

import { BackendError } from '../backend.ts';
import type { DeviceInfo } from './device.ts';

export interface WebGpuOptions {
  /**
   * A GPUDevice to work on instead of a new one: TF.js's (`tf.backend().device`), or your own, so
   * gradients and weights already on it are used where they are. dispose() leaves it alive. Its
   * limits are what it was created with.
   */
  readonly device?: GPUDevice;
  /**
   * Consecutive elements one invocation owns; must divide the kernel's group size into a power of
   * two of threads (default: up to 8). The fastest value depends on the kernel and the GPU
   * (bench/gpu.ts, VARIANTS=1, times 4 and 16 against the default).
   */
  readonly elementsPerThread?: number;
  /**
   * Invocations per workgroup (default 256, or 64 with `exact: false`, each the faster there on an
   * H200; at most the device's maxComputeInvocationsPerWorkgroup).
   */
  readonly workgroupSize?: number;
  /**
   * true (default): f32 ÷, √ and products round as the JS backend's do, so results are bit-identical
   * to it (where the device's fma is fused; docs/webgpu.md). false: the driver's arithmetic
   * (÷ within 2.5 ULP, products may be contracted into fma): faster, not bit-identical.
   */
  readonly exact?: boolean;
  /**
   * Exact mode only: each kernel of a step without reductions runs as two dispatches, a fast one
   * whose body has no NaN guards and no fallback branches and stores nothing in a subgroup where
   * a check failed, then one, dispatched over the workgroups that hold such groups only, that
   * redoes them with the general body (compiler/render/wgsl/render.ts, header.ts fail_groups).
   * Bit-identical either way. Default: where the device's fma is fused (H200, AdamW at 2^28: 3.3
   * against 4.3 ms; docs/bench-gpu.md §10), and not where fields share bindings (a device at
   * default limits) unless `true` is given: on a busy CPU, lavapipe (fma not fused) took 5× as
   * long a split step, 400× with shared bindings (measured with the first, per-workgroup split).
   */
  readonly splitKernels?: boolean;
  /**
   * Record each launch's GPU time in `backend.kernelTimes` (ms), from timestamp queries written at
   * the start and end of its compute pass. Needs the device feature 'timestamp-query' (creation
   * fails without it). Each launch then waits for the GPU to finish before it resolves.
   */
  readonly timestamps?: boolean;
  /**
   * The most bytes one binding may hold (default: the device's maxStorageBufferBindingSize). An
   * optimizer's arena is split into chunks that fit, one launch each; set it lower to run as a
   * device with smaller bindings would (most phones bind 128 MiB).
   */
  readonly maxBindingSize?: number;
  /**
   * Groups in a block of a step with reductions (a power of two from 64 to 65536; default 1024,
   * doubled until the arena has at most 4096 blocks: runtime/backends/webgpu/blocks.ts): each
   * workgroup of such a step's kernels runs one block of a tensor, and the sums' order depends on
   * it (docs/compiler.md §6), so results differ in the last bits between sizes.
   */
  readonly reductionBlockGroups?: number;
}

const names = [
  'device',
  'elementsPerThread',
  'workgroupSize',
  'exact',
  'splitKernels',
  'timestamps',
  'maxBindingSize',
  'reductionBlockGroups',
] as const;

/** Throws a BackendError naming the first option that is unknown or has a wrong value. */
export function checkOptions(o: WebGpuOptions): void {
  const who = 'WebGpuBackend.create';
  if (typeof o !== 'object' || o === null)
    throw new BackendError(`${who}: options must be an object, got ${o === null ? 'null' : typeof o}`);
  for (const [k, v] of Object.entries(o)) {
    if (!(names as readonly string[]).includes(k))
      throw new BackendError(`${who}: unknown option ${k} (the options are ${names.join(', ')})`);
    if (v === undefined) continue;
    const bad = (want: string) =>
      new BackendError(`${who}: ${k} must be ${want}, got ${JSON.stringify(v) ?? String(v)}`);
    if (k === 'device' && !(typeof v === 'object' && v !== null && 'queue' in v && 'createBuffer' in v))
      throw new BackendError(`${who}: device must be a GPUDevice, got ${String(v)}`);
    if ((k === 'exact' || k === 'timestamps' || k === 'splitKernels') && typeof v !== 'boolean')
      throw bad('true or false');
    if ((k === 'elementsPerThread' || k === 'workgroupSize') && !(Number.isInteger(v) && (v as number) >= 1))
      throw bad('a positive integer');
    if (k === 'maxBindingSize' && !(Number.isInteger(v) && (v as number) >= 256 && (v as number) % 256 === 0))
      throw bad('a positive multiple of 256 bytes');
    if (
      k === 'reductionBlockGroups' &&
      !(
        Number.isInteger(v) &&
        (v as number) >= 64 &&
        (v as number) <= 65536 &&
        ((v as number) & ((v as number) - 1)) === 0
      )
    )
      throw bad('a power of two from 64 to 65536');
  }
}

/** The checks that need the device: timestamps need 'timestamp-query', a workgroup its limit. */
export function checkOnDevice(o: WebGpuOptions, info: DeviceInfo): void {
  const who = 'WebGpuBackend.create';
  if (o.timestamps && !info.device.features.has('timestamp-query'))
    throw new BackendError(
      `${who}: timestamps: true needs the 'timestamp-query' feature, which adapter ${info.adapter} does not offer`,
    );
  const max = info.device.limits.maxComputeInvocationsPerWorkgroup;
  if (o.workgroupSize !== undefined && o.workgroupSize > max)
    throw new BackendError(
      `${who}: workgroupSize ${o.workgroupSize} exceeds this device's maxComputeInvocationsPerWorkgroup ${max}`,
    );
}
