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
  /** WGSL fma is fused here (Vulkan lets a driver compute it as a rounded a·b + c, as lavapipe does). */
  readonly fusedFma: boolean;
}

/** A device with subgroups (when offered) and the adapter's largest storage limits. */
export async function requestDevice(): Promise<DeviceInfo> {
  await disableOsr();
  await gpuEntry('WebGpuBackend.create'); // in Node without the webgpu package: say what to install
  const adapter = await findAdapter();
  if (!adapter)
    throw new BackendError(
      'webgpu: no GPU adapter (in Node, install a Vulkan driver such as Mesa lavapipe; see docs/webgpu.md)',
    );
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
  return describeDevice(device, adapter.info);
}

/**
 * What the backend needs to know about a device, whoever made it (a caller's device: TF.js's,
 * say): its adapter's name, subgroups as its features allow, and whether its fma is fused.
 */
export async function describeDevice(device: GPUDevice, adapterInfo?: GPUAdapterInfo): Promise<DeviceInfo> {
  await disableOsr(); // a caller's Dawn device is as exposed to on-stack replacement as ours
  const info = (adapterInfo ?? (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo) as
    (GPUAdapterInfo & { subgroupMinSize?: number }) | undefined;
  // WebGPU guarantees at least 4 invocations per subgroup when the adapter does not say.
  const sub = device.features.has('subgroups') ? (info?.subgroupMinSize ?? 4) : 0;
  const name = info ? `${info.vendor} ${info.description || info.architecture || info.device}`.trim() : 'a GPU device';
  return { device, adapter: name || 'a GPU device', subgroupMinSize: sub, fusedFma: await probeFusedFma(device) };
}

/** Run one fma on the device: exact-mode ÷ and √ (compiler/render/wgsl/exact.ts) need it fused. */
async function probeFusedFma(d: GPUDevice): Promise<boolean> {
  const STORAGE = 0x80,
    COPY_SRC = 0x4,
    COPY_DST = 0x8,
    MAP_READ = 0x1;
  const buf = d.createBuffer({ size: 16, usage: STORAGE | COPY_SRC | COPY_DST });
  const back = d.createBuffer({ size: 4, usage: MAP_READ | COPY_DST });
  try {
    // (1 + 2^-12)^2 − (1 + 2^-11) = 2^-24 exactly when fused, 0 when the product is rounded first.
    d.queue.writeBuffer(buf, 0, new Float32Array([1 + 2 ** -12, -(1 + 2 ** -11), 0, 0]));
    const module = d.createShaderModule({
      code: '@group(0) @binding(0) var<storage, read_write> X: array<f32>;\n@compute @workgroup_size(1) fn main() { X[2] = fma(X[0], X[0], X[1]); }',
    });
    const pipeline = await d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const enc = d.createCommandEncoder(),
      pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(
      0,
      d.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [{ binding: 0, resource: { buffer: buf } }],
      }),
    );
    pass.dispatchWorkgroups(1);
    pass.end();
    enc.copyBufferToBuffer(buf, 8, back, 0, 4);
    d.queue.submit([enc.finish()]);
    await back.mapAsync(1 /* GPUMapMode.READ */);
    return new Float32Array(back.getMappedRange())[0] === 2 ** -24;
  } finally {
    buf.destroy();
    back.destroy();
  }
}
