/// <reference types="@webgpu/types" />
// The WebGPU backend: buffers on the GPU, kernels rendered to WGSL (compiler/render/wgsl/), one
// dispatch per launch. Every GPU call that can fail runs inside error scopes, and the error says
// what failed (which kernel, which field); a lost device turns every later call, and every call
// waiting on the GPU, into a BackendError instead of a hang.

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../../../compiler/ir/kernel.ts';
import { arrayFor, storageBytes } from '../../../compiler/ir/kernel.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { Ablation } from '../../../compiler/render/wgsl/arith.ts';
import type { WgslKernel, WgslOptions } from '../../../compiler/render/wgsl/render.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import type { Backend, DeviceBuffer, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { DeviceInfo } from './device.ts';
import { requestDevice } from './device.ts';
import type { WebGpuOptions } from './options.ts';
import { checkOnDevice, checkOptions } from './options.ts';
import { computePipeline } from './pipeline.ts';
import { BIND } from '../../../compiler/render/wgsl/layout.ts';

export type { WebGpuOptions };
export interface GpuBuffer extends DeviceBuffer {
  readonly buffer: GPUBuffer;
  readonly bytes: number;
  readonly owner: WebGpuBackend;
}
export interface GpuProgram extends Program {
  readonly pipeline: GPUComputePipeline;
  readonly wgsl: WgslKernel;
  /** The uniform table's buffer, grown to the largest table seen. */
  uniforms: GPUBuffer | null;
  readonly tables: GPUBuffer | null;
  readonly owner: WebGpuBackend;
}

/** Buffers are padded to whole 256-byte blocks so a thread's 16-byte loads never run past the end. */
const PAD = 256;
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 };

export class WebGpuBackend implements Backend<GpuBuffer, GpuProgram> {
  readonly name = 'webgpu';
  launches = 0;
  readonly device: GPUDevice;
  readonly adapter: string;
  readonly subgroupMinSize: number;
  /** Whether WGSL fma is fused here (Vulkan lets a driver compute it as a rounded a·b + c); probed at creation. */
  readonly fusedFma: boolean;
  /**
   * With `timestamps: true`: the GPU time of each launch (ms, from timestamp queries around its
   * compute pass), in launch order. Grows by one per launch; empty it (`kernelTimes.length = 0`)
   * when you have read it.
   */
  readonly kernelTimes: number[] = [];
  private lostReason: string | null = null;
  private readonly lost: Promise<never>;
  private readonly params: GPUBuffer;
  private readonly noRows: GPUBuffer;
  private readonly pipelines = new Map<string, GpuProgram>();
  private readonly render: WgslOptions;

  protected constructor(
    info: DeviceInfo,
    readonly options: WebGpuOptions,
    diagnostics: readonly Ablation[] = [],
  ) {
    this.device = info.device;
    this.adapter = info.adapter;
    this.subgroupMinSize = info.subgroupMinSize;
    this.fusedFma = info.fusedFma;
    checkOnDevice(options, info);
    const { elementsPerThread, workgroupSize, exact } = options;
    this.render = {
      elementsPerThread,
      workgroupSize,
      exact,
      subgroupMinSize: info.subgroupMinSize,
      fusedFma: info.fusedFma,
      ...(diagnostics.length ? { diagnostics } : {}),
    };
    this.lost = this.device.lost.then((l) => {
      this.lostReason = `${l.reason ?? 'unknown'}: ${l.message || 'no message'}`;
      throw new BackendError(`webgpu: the device was lost (${this.lostReason})`);
    });
    this.lost.catch(() => {});
    this.params = this.device.createBuffer({ size: 32, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    this.noRows = this.device.createBuffer({ size: 16, usage: USAGE.STORAGE | USAGE.COPY_DST });
  }

  /** A backend on this machine's GPU (BackendError if there is none, or an option is wrong). */
  static async create(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
    checkOptions(options);
    return WebGpuBackend.open((info) => new WebGpuBackend(info, options));
  }

  /** Request a device and build the backend on it (the device is destroyed if that throws). */
  protected static async open<T extends WebGpuBackend>(make: (info: DeviceInfo) => T): Promise<T> {
    const info = await requestDevice();
    try {
      return make(info);
    } catch (e) {
      info.device.destroy();
      throw e;
    }
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
    d.pushErrorScope('internal');
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    let value: T;
    try {
      value = f();
    } finally {
      const errs = await this.wait(Promise.all([d.popErrorScope(), d.popErrorScope(), d.popErrorScope()]));
      const e = errs.find((x) => x !== null);
      if (e) throw new BackendError(`webgpu.${what}: ${e.message}`);
    }
    return value;
  }

  /** `b` if this backend allocated it; otherwise a BackendError naming it (`what`) and where it came from. */
  private own(b: GpuBuffer | null | undefined, what: string, op: string): GpuBuffer {
    if (!b) throw new BackendError(`webgpu.${op}: ${what} is not bound`);
    if (b.owner !== this) {
      const from = (b as { owner?: { name?: unknown } }).owner?.name;
      throw new BackendError(
        `webgpu.${op}: ${what} is not a buffer of this backend (${typeof from === 'string' ? `it belongs to backend ${from}` : 'it comes from another backend'})`,
      );
    }
    return b;
  }

  alloc(storage: Storage, length: number): GpuBuffer {
    this.alive('alloc');
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`webgpu.alloc: length must be a non-negative integer, got ${length}`);
    const bytes = Math.max(PAD, Math.ceil((length * storageBytes[storage]) / PAD) * PAD);
    if (bytes > this.device.limits.maxBufferSize)
      throw new BackendError(
        `webgpu.alloc: ${length} ${storage} values (${bytes} bytes) exceed this device's maxBufferSize ${this.device.limits.maxBufferSize}`,
      );
    const buffer = this.device.createBuffer({ size: bytes, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
    return { storage, length, bytes, buffer, owner: this };
  }

  async write(buf: GpuBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = this.own(buf, 'the target buffer', 'write');
    if (!(data instanceof arrayFor[b.storage]))
      throw new BackendError(
        `webgpu.write: a ${b.storage} buffer needs a ${arrayFor[b.storage].name}, got ${data.constructor.name}`,
      );
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`webgpu.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    let start = offset * sb,
      end = (offset + data.length) * sb;
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (start % 4 !== 0 || end % 4 !== 0) {
      // WebGPU writes whole words: merge the partial words at both ends with what is there.
      const s4 = start - (start % 4),
        e4 = Math.ceil(end / 4) * 4;
      const words = await this.readBytes(b.buffer, s4, e4 - s4);
      words.set(bytes, start - s4);
      bytes = words;
      start = s4;
      end = e4;
    }
    await this.scoped(`write (${b.storage} × ${data.length})`, () =>
      this.device.queue.writeBuffer(b.buffer, start, bytes, 0, end - start),
    );
  }

  /** `size` bytes of `src` from byte `start` (a multiple of 4), through a staging buffer. */
  private async readBytes(src: GPUBuffer, start: number, size: number): Promise<Uint8Array> {
    const n = Math.max(4, Math.ceil(size / 4) * 4);
    const staging = this.device.createBuffer({ size: n, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    try {
      await this.scoped('read (copy)', () => {
        const enc = this.device.createCommandEncoder();
        enc.copyBufferToBuffer(src, start, staging, 0, Math.min(n, src.size - start));
        this.device.queue.submit([enc.finish()]);
      });
      await this.wait(staging.mapAsync(1 /* GPUMapMode.READ */));
      return new Uint8Array(staging.getMappedRange().slice(0, size));
    } finally {
      staging.destroy();
    }
  }

  async read(buf: GpuBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    const b = this.own(buf, 'the source buffer', 'read');
    if (offset < 0 || length < 0 || offset + length > b.length)
      throw new BackendError(`webgpu.read: [${offset}, ${offset + length}) is outside a buffer of ${b.length}`);
    const sb = storageBytes[b.storage];
    const s4 = Math.floor((offset * sb) / 4) * 4;
    const bytes = await this.readBytes(b.buffer, s4, Math.ceil(((offset + length) * sb - s4) / 4) * 4);
    const out = new arrayFor[b.storage](length);
    new Uint8Array(out.buffer).set(bytes.subarray(offset * sb - s4, offset * sb - s4 + length * sb));
    return out;
  }

  /** Prepare (compiler/ir/pipeline.ts), render to WGSL with this backend's options, build the pipeline; cached. */
  async compile(kernel: Kernel): Promise<GpuProgram> {
    const p = prepare(kernel);
    const key = `${p.key}|${JSON.stringify(this.render)}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    let wgsl: WgslKernel;
    try {
      wgsl = renderWgsl(p, this.render);
    } catch (e) {
      throw new BackendError(`webgpu.compile ${kernel.name}: ${(e as Error).message}`);
    }
    const module = await this.scoped(`compile ${kernel.name} (shader module)`, () =>
      this.device.createShaderModule({ code: wgsl.source, label: kernel.name }),
    );
    const info = await this.wait(module.getCompilationInfo());
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length)
      throw new BackendError(
        `webgpu.compile ${kernel.name}: WGSL errors: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`,
      );
    this.alive('compile');
    const pipeline = await computePipeline(this.device, kernel.name, wgsl, module, (x) => this.wait(x));
    let tables: GPUBuffer | null = null;
    if (wgsl.tables) {
      tables = this.device.createBuffer({ size: wgsl.tables.byteLength, usage: USAGE.STORAGE | USAGE.COPY_DST });
      this.device.queue.writeBuffer(tables, 0, wgsl.tables);
    }
    const prog: GpuProgram = { prepared: p, source: wgsl.source, pipeline, wgsl, uniforms: null, tables, owner: this };
    this.pipelines.set(key, prog);
    return prog;
  }

  /** One dispatch; waits for the GPU only when there are counters or timestamps to read back. */
  async run(prog: GpuProgram, l: Launch<GpuBuffer>): Promise<number[]> {
    const k = prog.prepared.kernel;
    if (prog.owner !== this)
      throw new BackendError(`webgpu.run ${k.name}: the program was compiled by another backend`);
    const w = prog.wgsl,
      [g0, g1] = l.groups;
    const nGroups = Math.ceil(l.length / k.groupSize);
    if (!(0 <= g0 && g0 <= g1 && g1 <= nGroups))
      throw new BackendError(`webgpu.run ${k.name}: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
    const entries: GPUBindGroupEntry[] = [];
    for (const f of w.fields) {
      const b = this.own(l.bindings[f.field], `field ${f.field}`, `run ${k.name}`);
      if (b.storage !== f.storage)
        throw new BackendError(
          `webgpu.run ${k.name}: field ${f.field} is ${f.storage}, bound to a ${b.storage} buffer`,
        );
      // A windowed field holds only the launched groups' elements.
      const need = k.windowed.includes(f.field)
        ? Math.max(0, Math.min(l.length, g1 * k.groupSize) - g0 * k.groupSize)
        : f.axis === 'element'
          ? l.length
          : nGroups;
      if (b.length < need)
        throw new BackendError(`webgpu.run ${k.name}: field ${f.field} has ${b.length} entries, needs ${need}`);
      entries.push({ binding: f.binding, resource: { buffer: b.buffer } });
    }
    const rowOf = l.rowOf ? this.own(l.rowOf, 'rowOf', `run ${k.name}`).buffer : this.noRows;
    const d = this.device;
    const ubytes = Math.max(16, Math.ceil(l.uniforms.byteLength / 16) * 16);
    if (!prog.uniforms || prog.uniforms.size < ubytes) {
      prog.uniforms?.destroy();
      prog.uniforms = d.createBuffer({ size: ubytes, usage: USAGE.STORAGE | USAGE.COPY_DST });
    }
    const threads = (g1 - g0) * w.threadsPerGroup;
    const groupsOfWork = Math.ceil(threads / w.workgroupSize);
    // A 2-D grid as square as the count needs: y rows of x, with fewer than y workgroups spare.
    const maxDim = d.limits.maxComputeWorkgroupsPerDimension;
    const y = Math.ceil(groupsOfWork / maxDim),
      x = y === 0 ? 0 : Math.ceil(groupsOfWork / y);
    if (y > maxDim)
      throw new BackendError(
        `webgpu.run ${k.name}: ${g1 - g0} groups need ${groupsOfWork} workgroups, more than a 2-D grid holds`,
      );
    // What comes back, in one staging buffer: the two timestamps (16 bytes), then the counters.
    const timed = this.options.timestamps === true && x > 0;
    const stampBytes = timed ? 16 : 0,
      back = stampBytes + w.counters * 4;
    const counters =
      w.counters > 0
        ? d.createBuffer({ size: Math.max(16, w.counters * 4), usage: USAGE.STORAGE | USAGE.COPY_SRC })
        : null;
    const query = timed ? d.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    const stamps = timed ? d.createBuffer({ size: 16, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC }) : null;
    const staging = back > 0 ? d.createBuffer({ size: back, usage: USAGE.MAP_READ | USAGE.COPY_DST }) : null;
    try {
      await this.scoped(`run ${k.name}`, () => {
        d.queue.writeBuffer(
          this.params,
          0,
          new Uint32Array([g0, g1, l.length, l.rowOf ? 1 : 0, prog.prepared.columns.length, 0, 0, 0]),
        );
        if (l.uniforms.length) d.queue.writeBuffer(prog.uniforms!, 0, l.uniforms);
        entries.push(
          { binding: BIND.params, resource: { buffer: this.params } },
          { binding: BIND.uniforms, resource: { buffer: prog.uniforms! } },
          { binding: BIND.rowOf, resource: { buffer: rowOf } },
        );
        if (counters) entries.push({ binding: BIND.counters, resource: { buffer: counters } });
        if (prog.tables) entries.push({ binding: BIND.tables, resource: { buffer: prog.tables } });
        const enc = d.createCommandEncoder();
        if (x > 0) {
          const pass = enc.beginComputePass(
            query ? { timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
          );
          pass.setPipeline(prog.pipeline);
          pass.setBindGroup(0, d.createBindGroup({ layout: prog.pipeline.getBindGroupLayout(0), entries }));
          pass.dispatchWorkgroups(x, y);
          pass.end();
        }
        if (query && stamps && staging) {
          enc.resolveQuerySet(query, 0, 2, stamps, 0);
          enc.copyBufferToBuffer(stamps, 0, staging, 0, 16);
        }
        if (counters && staging) enc.copyBufferToBuffer(counters, 0, staging, stampBytes, w.counters * 4);
        d.queue.submit([enc.finish()]);
      });
      this.launches++;
      if (!staging) return [];
      await this.wait(staging.mapAsync(1 /* GPUMapMode.READ */));
      const bytes = staging.getMappedRange();
      if (timed) {
        const t = new BigUint64Array(bytes, 0, 2);
        this.kernelTimes.push(Number(t[1]! - t[0]!) / 1e6);
      }
      const c = new Uint32Array(bytes, stampBytes, w.counters);
      return k.counters.map((cn, i) => (cn.value.type === 'i32' ? c[i]! | 0 : c[i]!));
    } finally {
      counters?.destroy();
      query?.destroy();
      stamps?.destroy();
      staging?.destroy();
    }
  }

  /** Resolves when the GPU has finished everything submitted so far (for timing). */
  async finish(): Promise<void> {
    this.alive('finish');
    await this.wait(this.device.queue.onSubmittedWorkDone());
  }

  /** Bytes `buf` holds on the device: its length, padded to whole 256-byte blocks. */
  bytes(buf: GpuBuffer): number {
    return this.own(buf, 'the buffer', 'bytes').bytes;
  }

  free(buf: GpuBuffer): void {
    this.own(buf, 'the buffer', 'free').buffer.destroy();
  }

  dispose(): void {
    for (const p of this.pipelines.values()) {
      p.uniforms?.destroy();
      p.tables?.destroy();
    }
    this.pipelines.clear();
    this.params.destroy();
    this.noRows.destroy();
    this.device.destroy();
  }
}
