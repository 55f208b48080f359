/// <reference types="@webgpu/types" />
// Getting a GPUDevice: `navigator.gpu` in browsers, the `webgpu` package (Dawn) in Node.
//
// In Node, V8's on-stack replacement of a hot loop while a Dawn device is alive kills the process
// about half the time (segfaults, futex and mutex assertion failures; ../shared/docs/gpu.md). It
// never happens with OSR off, so before the first device is created this module calls
// `v8.setFlagsFromString('--no-use-osr')` (NODE_OPTIONS refuses that flag). Functions are still
// optimized; only the replacement of a running loop is off. runtime/backends/webgpu/webgpu.test.ts proves a
// 500 ms busy loop after device creation no longer kills the process.

import { BackendError } from '../backend.ts';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
let osrOff = false;

/** Turn V8 on-stack replacement off (Node only; idempotent). */
export async function disableOsr(): Promise<void> {
  if (!isNode || osrOff) return;
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--no-use-osr');
  osrOff = true;
}

let nodeGpu: Promise<GPU | null> | undefined;

/** The GPU entry point: navigator.gpu, or Dawn's through the `webgpu` package; null if none. */
export function gpuEntry(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return Promise.resolve(nav.gpu);
  if (!isNode) return Promise.resolve(null);
  nodeGpu ??= (async () => {
    try {
      const pkg = 'webgpu';
      const dawn = (await import(/* @vite-ignore */ pkg)) as { create(flags: string[]): GPU; globals: Record<string, unknown> };
      // Dawn's enums and classes (GPUBufferUsage, …) as globals, as a browser has them.
      for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
      return dawn.create([]);
    } catch {
      return null;
    }
  })();
  return nodeGpu;
}

/** An adapter if this machine has one (lavapipe counts), else null. Never throws. */
export async function findAdapter(): Promise<GPUAdapter | null> {
  const gpu = await gpuEntry();
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    return null;
  }
}

export interface DeviceInfo {
  readonly device: GPUDevice;
  readonly adapter: string;
  /** Subgroup operations are enabled, with at least this many invocations per subgroup (0: none). */
  readonly subgroupMinSize: number;
}

/** A device with subgroups (when offered) and the adapter's largest storage limits. */
export async function requestDevice(): Promise<DeviceInfo> {
  await disableOsr();
  const adapter = await findAdapter();
  if (!adapter) throw new BackendError('webgpu: no GPU adapter (in Node, install a Vulkan driver such as Mesa lavapipe; see docs/webgpu.md)');
  const features: GPUFeatureName[] = [];
  if (adapter.features.has('subgroups')) features.push('subgroups' as GPUFeatureName);
  if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
  const L = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
    },
  });
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number };
  const sub = features.includes('subgroups' as GPUFeatureName) ? (info.subgroupMinSize ?? 4) : 0;
  return { device, adapter: `${info.vendor} ${info.description || info.architecture || info.device}`.trim(), subgroupMinSize: sub };
}
