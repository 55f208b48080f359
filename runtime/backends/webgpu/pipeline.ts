/// <reference types="@webgpu/types" />
// A compute pipeline for a rendered WGSL kernel, with an explicit bind group layout (an 'auto'
// layout would drop bindings the shader never reads, such as the uniforms of a kernel without any).

import { BIND } from '../../../compiler/render/wgsl/layout.ts';
import type { WgslKernel } from '../../../compiler/render/wgsl/render.ts';
import { BackendError } from '../backend.ts';

export async function computePipeline(
  d: GPUDevice,
  name: string,
  wgsl: WgslKernel,
  module: GPUShaderModule,
  wait: <T>(p: Promise<T>) => Promise<T>,
): Promise<GPUComputePipeline> {
  d.pushErrorScope('validation');
  d.pushErrorScope('internal');
  let pipeline: GPUComputePipeline;
  try {
    // An explicit layout: 'auto' would drop bindings the shader never reads (no uniforms, say).
    const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
      binding,
      visibility: 4 /* COMPUTE */,
      buffer: { type },
    });
    const entries = [
      entry(BIND.params, 'uniform'),
      entry(BIND.uniforms, 'read-only-storage'),
      entry(BIND.rowOf, 'read-only-storage'),
      ...(wgsl.counters ? [entry(BIND.counters, 'storage')] : []),
      ...(wgsl.tables ? [entry(BIND.tables, 'read-only-storage')] : []),
      ...wgsl.fields.map((f) => entry(f.binding, f.written || f.access === 'atomic' ? 'storage' : 'read-only-storage')),
    ];
    const layout = d.createPipelineLayout({ bindGroupLayouts: [d.createBindGroupLayout({ entries })] });
    pipeline = await wait(
      d.createComputePipelineAsync({ layout, compute: { module, entryPoint: 'main' }, label: name }),
    );
  } catch (e) {
    await Promise.all([d.popErrorScope(), d.popErrorScope()]).catch(() => {});
    throw new BackendError(`webgpu.compile ${name} (pipeline): ${(e as Error).message}`);
  }
  const errs = await wait(Promise.all([d.popErrorScope(), d.popErrorScope()]));
  const err = errs.find((x) => x !== null);
  if (err) throw new BackendError(`webgpu.compile ${name} (pipeline): ${err.message}`);
  return pipeline;
}
