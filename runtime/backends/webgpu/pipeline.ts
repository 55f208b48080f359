/// <reference types="@webgpu/types" />
// Compute pipelines for a rendered WGSL kernel, with explicit bind group layouts (an 'auto' layout
// would drop bindings the shader never reads, such as the uniforms of a kernel without any). A
// program has one pipeline per binding plan its launches use (slots.ts), made on first use.

import { BIND } from '../../../compiler/render/wgsl/layout.ts';
import type { WgslKernel } from '../../../compiler/render/wgsl/render.ts';
import { slotBinding } from '../../../compiler/render/wgsl/slots.ts';

/** The bind group layout entries of a rendered kernel (its plan's slots included). */
function entries(wgsl: WgslKernel): GPUBindGroupLayoutEntry[] {
  const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
    binding,
    visibility: 4 /* COMPUTE */,
    buffer: { type },
  });
  return [
    entry(BIND.params, 'uniform'),
    entry(BIND.uniforms, 'read-only-storage'),
    entry(BIND.rowOf, wgsl.plan.rowOfWritable ? 'storage' : 'read-only-storage'),
    ...(wgsl.counters ? [entry(BIND.counters, 'storage')] : []),
    ...(wgsl.tables ? [entry(BIND.tables, 'read-only-storage')] : []),
    ...(wgsl.reductions ? [entry(BIND.reductions, wgsl.writesReductions ? 'storage' : 'read-only-storage')] : []),
    ...(wgsl.flags ? [entry(BIND.flags, wgsl.flags === 'write' ? 'storage' : 'read-only-storage')] : []),
    ...wgsl.plan.slots.map((s, i) => entry(slotBinding(i), s.writable ? 'storage' : 'read-only-storage')),
  ];
}

/**
 * The pipeline, made synchronously: a launch plans its slots as it is submitted, and waiting here
 * could let a later submission overtake it. Errors land in the caller's error scopes.
 */
export function computePipeline(d: GPUDevice, name: string, wgsl: WgslKernel): GPUComputePipeline {
  const module = d.createShaderModule({ code: wgsl.source, label: name });
  const layout = d.createPipelineLayout({ bindGroupLayouts: [d.createBindGroupLayout({ entries: entries(wgsl) })] });
  return d.createComputePipeline({ layout, compute: { module, entryPoint: 'main' }, label: name });
}
