/// <reference types="@webgpu/types" />
// Getting a GPUDevice: `navigator.gpu` in browsers, the `webgpu` package (Dawn) in Node.
// In Node the entry point comes from Dawn (../dawn.ts), which also turns V8's on-stack
// replacement off before the first device exists.

import { BackendError } from '../backend.ts';
import { disableOsr, gpuEntry } from '../dawn.ts';

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
