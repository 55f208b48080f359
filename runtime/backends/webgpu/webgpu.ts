/// <reference types="@webgpu/types" />
// The WebGPU backend: buffers on the GPU, kernels rendered to WGSL (compiler/render/wgsl/), one
// dispatch per launch. Every GPU call that can fail runs inside error scopes, and the error says
// what failed (which kernel, which field); a lost device turns every later call, and every call
// waiting on the GPU, into a BackendError instead of a hang.

import { compile } from '../../../compiler/render/js/compile.ts';
import type { Storage } from '../../../compiler/ir/ir.ts';
import type { Kernel } from '../../../compiler/ir/kernel.ts';
import { storageBytes } from '../../../compiler/ir/kernel.ts';
import type { WgslKernel, WgslOptions } from '../../../compiler/render/wgsl/render.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import { BIND } from '../../../compiler/render/wgsl/layout.ts';
import type { Backend, DeviceBuffer, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { DeviceInfo } from './device.ts';
import { requestDevice } from './device.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor } from '../../../compiler/ir/kernel.ts';

export interface GpuBuffer extends DeviceBuffer { readonly buffer: GPUBuffer; readonly bytes: number }
interface GpuProgram extends Program { readonly pipeline: GPUComputePipeline; readonly wgsl: WgslKernel; uniforms: GPUBuffer | null; readonly tables: GPUBuffer | null }

/**
 * The renderer's options (compiler/render/wgsl/render.ts documents each: elements per thread,
 * workgroup size, 8-bit tables, exact arithmetic, and the ablations bench/gpu.ts times) less
 * what the backend probes from the device itself.
 */
export type WebGpuOptions = Omit<WgslOptions, 'subgroupMinSize' | 'fusedFma'>;

/** Buffers are padded to whole 256-byte blocks so a thread's 16-byte loads never run past the end. */
const PAD = 256;
const GPU_USAGE = { STORAGE: 0x80, COPY_SRC: 0x4, COPY_DST: 0x8, MAP_READ: 0x1, UNIFORM: 0x40 };

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  launches = 0;
  readonly device: GPUDevice;
  readonly adapter: string;
  readonly subgroupMinSize: number;
  private lostReason: string | null = null;
  private readonly lost: Promise<never>;
  private readonly params: GPUBuffer;
  private readonly noRows: GPUBuffer;
  private readonly pipelines = new Map<string, GpuProgram>();

  private constructor(info: DeviceInfo, readonly options: WebGpuOptions) {
    this.device = info.device;
    this.adapter = info.adapter;
    this.subgroupMinSize = info.subgroupMinSize;
    this.lost = this.device.lost.then((l) => {
      this.lostReason = `${l.reason ?? 'unknown'}: ${l.message || 'no message'}`;
      throw new BackendError(`webgpu: the device was lost (${this.lostReason})`);
    });
    this.lost.catch(() => {});
    this.params = this.device.createBuffer({ size: 32, usage: GPU_USAGE.UNIFORM | GPU_USAGE.COPY_DST });
    this.noRows = this.device.createBuffer({ size: 16, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_DST });
  }

  static async create(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
    const b = new WebGpuBackend(await requestDevice(), options);
    b.fusedFma = await b.probeFma();
    return b;
  }

  /** Whether WGSL fma is fused here (Vulkan lets a driver compute it as a rounded a·b + c). */
  fusedFma = false;
  private async probeFma(): Promise<boolean> {
    const d = this.device;
    const buf = d.createBuffer({ size: 16, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_SRC | GPU_USAGE.COPY_DST });
    // (1 + 2^-12)^2 − (1 + 2^-11) = 2^-24 exactly when fused, 0 when the product is rounded first.
    d.queue.writeBuffer(buf, 0, new Float32Array([1 + 2 ** -12, -(1 + 2 ** -11), 0, 0]));
    const module = d.createShaderModule({ code: '@group(0) @binding(0) var<storage, read_write> X: array<f32>;\n@compute @workgroup_size(1) fn main() { X[2] = fma(X[0], X[0], X[1]); }' });
    const pipeline = await this.wait(d.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
    const enc = d.createCommandEncoder(), pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] }));
    pass.dispatchWorkgroups(1); pass.end();
    d.queue.submit([enc.finish()]);
    const out = await this.readBytes({ storage: 'f32', length: 4, bytes: 16, buffer: buf }, 8, 4);
    buf.destroy();
    return new Float32Array(out.buffer, out.byteOffset, 1)[0] === 2 ** -24;
  }

  private alive(what: string): void {
    if (this.lostReason !== null) throw new BackendError(`webgpu.${what}: the device was lost (${this.lostReason})`);
  }

  /** Wait for a GPU promise, failing (not hanging) if the device is lost meanwhile. */
  private wait<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.lost]);
  }

  /** Run `f` inside validation, out-of-memory and internal error scopes; throw what they caught. */
  private async scoped<T>(what: string, f: () => T): Promise<T> {
    this.alive(what);
    const d = this.device;
    d.pushErrorScope('internal'); d.pushErrorScope('out-of-memory'); d.pushErrorScope('validation');
    let value: T;
    try { value = f(); } finally {
      const errs = await this.wait(Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]));
      const e = errs.find((x) => x !== null);
      if (e) throw new BackendError(`webgpu.${what}: ${e.message}`);
    }
    return value;
  }

  alloc(storage: Storage, length: number): GpuBuffer {
    this.alive('alloc');
    if (!Number.isInteger(length) || length < 0) throw new BackendError(`webgpu.alloc: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(PAD, Math.ceil((length * storageBytes[storage]) / PAD) * PAD);
    if (bytes > this.device.limits.maxBufferSize)
      throw new BackendError(`webgpu.alloc: ${length} ${storage} values (${bytes} bytes) exceed this device's maxBufferSize ${this.device.limits.maxBufferSize}`);
    const buffer = this.device.createBuffer({ size: bytes, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_SRC | GPU_USAGE.COPY_DST });
    return { storage, length, bytes, buffer };
  }

  async write(buf: DeviceBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = buf as GpuBuffer;
    if (!(data instanceof arrayFor[b.storage])) throw new BackendError(`webgpu.write: a ${b.storage} buffer needs a ${arrayFor[b.storage].name}, got ${data.constructor.name}`);
    if (offset < 0 || offset + data.length > b.length) throw new BackendError(`webgpu.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    let start = offset * sb, end = (offset + data.length) * sb;
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (start % 4 !== 0 || end % 4 !== 0) {
      // WebGPU writes whole words: merge the partial words at both ends with what is there.
      const s4 = start - (start % 4), e4 = Math.ceil(end / 4) * 4;
      const words = await this.readBytes(b, s4, e4 - s4);
      words.set(bytes, start - s4);
      bytes = words; start = s4; end = e4;
    }
    await this.scoped(`write (${b.storage} × ${data.length})`, () => this.device.queue.writeBuffer(b.buffer, start, bytes, 0, end - start));
  }

  private async readBytes(b: GpuBuffer, start: number, size: number): Promise<Uint8Array> {
    const n = Math.max(4, Math.ceil(size / 4) * 4);
    const staging = this.device.createBuffer({ size: n, usage: GPU_USAGE.MAP_READ | GPU_USAGE.COPY_DST });
    try {
      await this.scoped('read (copy)', () => {
        const enc = this.device.createCommandEncoder();
        enc.copyBufferToBuffer(b.buffer, start, staging, 0, Math.min(n, b.bytes - start));
        this.device.queue.submit([enc.finish()]);
      });
      await this.wait(staging.mapAsync(1 /* GPUMapMode.READ */));
      return new Uint8Array(staging.getMappedRange().slice(0, size));
    } finally {
      staging.destroy();
    }
  }

  async read(buf: DeviceBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    const b = buf as GpuBuffer;
    if (offset < 0 || length < 0 || offset + length > b.length) throw new BackendError(`webgpu.read: [${offset}, ${offset + length}) is outside a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    const s4 = Math.floor((offset * sb) / 4) * 4;
    const bytes = await this.readBytes(b, s4, Math.ceil(((offset + length) * sb - s4) / 4) * 4);
    const out = new arrayFor[b.storage](length);
    new Uint8Array(out.buffer).set(bytes.subarray(offset * sb - s4, offset * sb - s4 + length * sb));
    return out;
  }

  /** Compile for this device; `options` (default: the backend's) lets a benchmark compare variants on one device. */
  async compile(kernel: Kernel, options: WebGpuOptions = this.options): Promise<Program> {
    const js = compile(kernel, { target: 'js' });
    const p = js.prepared;
    const key = `${p.key}|${JSON.stringify(options)}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const wgsl = renderWgsl(p, { subgroupMinSize: this.subgroupMinSize, fusedFma: this.fusedFma, ...options });
    const module = await this.scoped(`compile ${kernel.name} (shader module)`, () => this.device.createShaderModule({ code: wgsl.source, label: kernel.name }));
    const info = await this.wait(module.getCompilationInfo());
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) throw new BackendError(`webgpu.compile ${kernel.name}: WGSL errors: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`);
    this.alive('compile');
    const d = this.device;
    d.pushErrorScope('validation'); d.pushErrorScope('internal');
    let pipeline: GPUComputePipeline;
    try {
      // An explicit layout: 'auto' would drop bindings the shader never reads (no uniforms, say).
      const entry = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({ binding, visibility: 4 /* COMPUTE */, buffer: { type } });
      const entries = [entry(BIND.params, 'uniform'), entry(BIND.uniforms, 'read-only-storage'), entry(BIND.rowOf, 'read-only-storage'),
        ...(wgsl.counters ? [entry(BIND.counters, 'storage')] : []),
        ...(wgsl.tables ? [entry(BIND.tables, 'read-only-storage')] : []),
        ...wgsl.fields.map((f) => entry(f.binding, f.written || f.access === 'atomic' ? 'storage' : 'read-only-storage'))];
      const layout = d.createPipelineLayout({ bindGroupLayouts: [d.createBindGroupLayout({ entries })] });
      pipeline = await this.wait(d.createComputePipelineAsync({ layout, compute: { module, entryPoint: 'main' }, label: kernel.name }));
    } catch (e) {
      await Promise.all([d.popErrorScope(), d.popErrorScope()]).catch(() => {});
      throw new BackendError(`webgpu.compile ${kernel.name} (pipeline): ${(e as Error).message}`);
    }
    const errs = await this.wait(Promise.all([d.popErrorScope(), d.popErrorScope()]));
    const err = errs.find((x) => x !== null);
    if (err) throw new BackendError(`webgpu.compile ${kernel.name} (pipeline): ${err.message}`);
    let tables: GPUBuffer | null = null;
    if (wgsl.tables) {
      tables = d.createBuffer({ size: wgsl.tables.byteLength, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_DST });
      d.queue.writeBuffer(tables, 0, wgsl.tables);
    }
    const prog: GpuProgram = { prepared: p, source: wgsl.source, pipeline, wgsl, uniforms: null, tables };
    this.pipelines.set(key, prog);
    return prog;
  }

  async run(program: Program, l: Launch): Promise<number[]> {
    return (await this.dispatch(program, l, 1, false)).counters;
  }

  /**
   * For benchmarks: the same launch `steps` times in one submission (each still one dispatch),
   * timed by the GPU's timestamp queries when the device has them. Returns ms per launch.
   */
  async timeSteps(program: Program, l: Launch, steps: number): Promise<{ gpuMs: number | null; wallMs: number }> {
    const t0 = performance.now();
    const { gpuNs } = await this.dispatch(program, l, steps, this.device.features.has('timestamp-query'));
    await this.finish();
    return { gpuMs: gpuNs === null ? null : gpuNs / 1e6 / steps, wallMs: (performance.now() - t0) / steps };
  }

  private async dispatch(program: Program, l: Launch, repeat: number, timed: boolean): Promise<{ counters: number[]; gpuNs: number | null }> {
    const prog = program as GpuProgram, w = prog.wgsl, k = prog.prepared.kernel;
    const [g0, g1] = l.groups;
    const nGroups = Math.ceil(l.length / k.groupSize);
    if (!(0 <= g0 && g0 <= g1 && g1 <= nGroups)) throw new BackendError(`webgpu.run ${k.name}: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
    const entries: GPUBindGroupEntry[] = [];
    for (const f of w.fields) {
      const b = l.bindings[f.field] as GpuBuffer | undefined;
      if (!b) throw new BackendError(`webgpu.run ${k.name}: field ${f.field} is not bound`);
      if (b.storage !== f.storage) throw new BackendError(`webgpu.run ${k.name}: field ${f.field} is ${f.storage}, bound to a ${b.storage} buffer`);
      const need = f.axis === 'element' ? l.length : nGroups;
      if (b.length < need) throw new BackendError(`webgpu.run ${k.name}: field ${f.field} has ${b.length} entries, needs ${need}`);
      entries.push({ binding: f.binding, resource: { buffer: b.buffer } });
    }
    const S = prog.prepared.columns.length;
    const ubytes = Math.max(16, Math.ceil((l.uniforms.byteLength) / 16) * 16);
    if (!prog.uniforms || prog.uniforms.size < ubytes) {
      prog.uniforms?.destroy();
      prog.uniforms = this.device.createBuffer({ size: ubytes, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_DST });
    }
    const counters = w.counters > 0 ? this.device.createBuffer({ size: Math.max(16, w.counters * 4), usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_SRC | GPU_USAGE.COPY_DST }) : null;
    const threads = (g1 - g0) * w.threadsPerGroup;
    const groupsOfWork = Math.ceil(threads / w.workgroupSize);
    // A 2-D grid as square as the count needs: y rows of x, with fewer than y workgroups spare.
    const y = Math.ceil(groupsOfWork / this.device.limits.maxComputeWorkgroupsPerDimension);
    const x = y === 0 ? 0 : Math.ceil(groupsOfWork / y);
    if (y > this.device.limits.maxComputeWorkgroupsPerDimension) throw new BackendError(`webgpu.run ${k.name}: ${g1 - g0} groups need ${groupsOfWork} workgroups, more than a 2-D grid holds`);
    const query = timed ? this.device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    const stamps = timed ? this.device.createBuffer({ size: 16, usage: 0x200 /* QUERY_RESOLVE */ | GPU_USAGE.COPY_SRC }) : null;
    await this.scoped(`run ${k.name}`, () => {
      const q = this.device.queue;
      q.writeBuffer(this.params, 0, new Uint32Array([g0, g1, l.length, l.rowOf ? 1 : 0, S, 0, 0, 0]));
      if (l.uniforms.length) q.writeBuffer(prog.uniforms!, 0, l.uniforms);
      entries.push({ binding: BIND.params, resource: { buffer: this.params } });
      entries.push({ binding: BIND.uniforms, resource: { buffer: prog.uniforms! } });
      entries.push({ binding: BIND.rowOf, resource: { buffer: l.rowOf ? (l.rowOf as GpuBuffer).buffer : this.noRows } });
      if (counters) entries.push({ binding: BIND.counters, resource: { buffer: counters } });
      if (prog.tables) entries.push({ binding: BIND.tables, resource: { buffer: prog.tables } });
      const bind = this.device.createBindGroup({ layout: prog.pipeline.getBindGroupLayout(0), entries });
      const enc = this.device.createCommandEncoder();
      for (let i = 0; i < repeat && x > 0; i++) {
        const timestampWrites = query && (i === 0 || i === repeat - 1)
          ? { querySet: query, ...(i === 0 ? { beginningOfPassWriteIndex: 0 } : {}), ...(i === repeat - 1 ? { endOfPassWriteIndex: 1 } : {}) } : undefined;
        const pass = enc.beginComputePass(timestampWrites ? { timestampWrites } : {});
        pass.setPipeline(prog.pipeline);
        pass.setBindGroup(0, bind);
        pass.dispatchWorkgroups(x, y);
        pass.end();
      }
      if (query && stamps) enc.resolveQuerySet(query, 0, 2, stamps, 0);
      q.submit([enc.finish()]);
    });
    this.launches += repeat;
    let gpuNs: number | null = null;
    if (query && stamps) {
      const b = await this.readBytes({ storage: 'u32', length: 4, bytes: 16, buffer: stamps }, 0, 16);
      const t = new BigUint64Array(b.buffer, b.byteOffset, 2);
      gpuNs = Number(t[1]! - t[0]!);
      query.destroy(); stamps.destroy();
    }
    if (!counters) return { counters: [], gpuNs };
    try {
      const bytes = await this.readBytes({ storage: 'u32', length: w.counters, bytes: counters.size, buffer: counters }, 0, w.counters * 4);
      const c = new Uint32Array(bytes.buffer, bytes.byteOffset, w.counters);
      return { counters: k.counters.map((cn, i) => (cn.value.type === 'i32' ? c[i]! | 0 : c[i]!)), gpuNs };
    } finally {
      counters.destroy();
    }
  }

  /** Resolves when the GPU has finished everything submitted so far (for timing). */
  async finish(): Promise<void> {
    this.alive('finish');
    await this.wait(this.device.queue.onSubmittedWorkDone());
  }

  free(buf: DeviceBuffer): void {
    (buf as GpuBuffer).buffer.destroy();
  }

  dispose(): void {
    for (const p of this.pipelines.values()) { p.uniforms?.destroy(); p.tables?.destroy(); }
    this.pipelines.clear();
    this.device.destroy();
  }
}
