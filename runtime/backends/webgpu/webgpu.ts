/// <reference types="@webgpu/types" />
// The WebGPU backend: buffers on the GPU, kernels rendered to WGSL (compiler/render/wgsl/). A
// submission (encode.ts) is copies and launches in one command buffer with one upload write; it
// does not wait for the device: errors its scopes catch surface at the next call (scopes.ts), and
// counters accumulate on the device until someone reads them. Calls that wait anyway (compile,
// read, a launch whose counters come back) report errors at once. A lost device turns every later
// call, and every call waiting on the GPU, into a BackendError instead of a hang.

import type { Kernel } from '../../../compiler/ir/kernel.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { Ablation } from '../../../compiler/render/wgsl/arith.ts';
import type { WgslKernel, WgslOptions } from '../../../compiler/render/wgsl/render.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import type { BindingPlan } from '../../../compiler/render/wgsl/slots.ts';
import { planKey } from '../../../compiler/render/wgsl/slots.ts';
import type { Backend, CombinePlan, Item, Launch } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { DeviceInfo } from './device.ts';
import { describeDevice, requestDevice } from './device.ts';
import type { GpuProgram, Planned, PlannedLaunch } from './encode.ts';
import { BindGroups, encodeItems, planCopy, planLaunch, uploadLayout } from './encode.ts';
import { Gatherer } from './gather.ts';
import { Ids } from '../../ids.ts';
import type { WebGpuOptions } from './options.ts';
import { checkOnDevice, checkOptions } from './options.ts';
import { computePipeline } from './pipeline.ts';
import { GroupFlags } from './flags.ts';
import type { GpuBuffer } from './memory.ts';
import { GpuMemory, USAGE } from './memory.ts';
import { BlockCombine } from './combine.ts';

export type { WebGpuOptions };
export type { GpuBuffer, GpuProgram };

/** Submissions the host may run ahead of the GPU before a submit waits for the oldest. */
const IN_FLIGHT = 3;

export class WebGpuBackend extends GpuMemory implements Backend<GpuBuffer, GpuProgram> {
  readonly name = 'webgpu';
  readonly countsOnDevice = true;
  launches = 0;
  /** Compute dispatches of those launches: two for a split kernel (its fallback half), none for an empty one. */
  dispatches = 0;
  readonly adapter: string;
  readonly subgroupMinSize: number;
  /** Groups a block of a step with reductions holds at most (WebGpuOptions.reductionBlockGroups; default: blocks.ts blockGroupsFor the arena). */
  readonly blockGroups: number | undefined;
  /** Whether WGSL fma is fused here (Vulkan lets a driver compute it as a rounded a·b + c); probed at creation. */
  readonly fusedFma: boolean;
  /** Exact mode's kernels run split (WebGpuOptions.splitKernels; by default where fma is fused). */
  readonly splitKernels: boolean;
  /** Split also where fields share bindings (only when asked: not measured on a GPU; 400× on a busy lavapipe). */
  private readonly splitShared: boolean;
  /**
   * With `timestamps: true`: the GPU time of each launch (ms, from timestamp queries around its
   * compute pass), in launch order. Grows by one per launch; empty it (`kernelTimes.length = 0`)
   * when you have read it.
   */
  readonly kernelTimes: number[] = [];
  readonly noRows: GPUBuffer;
  private readonly flagBuffers: GroupFlags;
  /** The split kernels' flags buffer (flags.ts), at least `bytes` long: split.test.ts reads it. */
  flags(bytes: number): GPUBuffer {
    return this.flagBuffers.get(bytes);
  }
  private upload: GPUBuffer | null = null;
  private readonly bindGroups = new BindGroups();
  /** Runs of copies as gather dispatches (gather.ts); its `gathered` counts them. */
  readonly gatherer: Gatherer;
  /** Copies of any length move by gather dispatches here, so the runtime sends copies, not copy kernels. */
  readonly gathersCopies = true;
  /** Items already planned (items are never changed once submitted: runtime/backends/backend.ts). */
  private readonly planned = new WeakMap<object, Planned>();
  /** Launch plans by bindings object (never changed once submitted), then the rest of the launch. */
  private readonly launchPlans = new WeakMap<object, Map<string, PlannedLaunch>>();
  private readonly ids = new Ids();
  private readonly inFlight: Promise<unknown>[] = [];
  private readonly pipelines = new Map<string, GpuProgram>();
  private readonly render: WgslOptions;
  /** The device came from the caller (`create({ device })`): dispose() leaves it alive. */
  private readonly borrowedDevice: boolean;

  protected constructor(
    info: DeviceInfo,
    readonly options: WebGpuOptions,
    diagnostics: readonly Ablation[] = [],
  ) {
    super(info.device);
    this.adapter = info.adapter;
    this.subgroupMinSize = info.subgroupMinSize;
    this.blockGroups = options.reductionBlockGroups;
    this.fusedFma = info.fusedFma;
    // Split where it was measured to pay (H200: the exact ÷ and √ drop their fallback branches,
    // which exist only with a fused fma); on a busy CPU lavapipe's emulated barrier made it 5× slower.
    this.splitKernels = options.splitKernels ?? info.fusedFma;
    this.splitShared = options.splitKernels === true;
    this.borrowedDevice = options.device !== undefined;
    checkOnDevice(options, info);
    const { elementsPerThread, exact } = options;
    // The driver's arithmetic runs its kernel fastest at 64 invocations, exact mode at 256 (H200,
    // AdamW at 2^28: 3.04 vs 3.78 ms and 5.78 vs 6.37 ms; docs/bench-gpu.md §4).
    const workgroupSize = options.workgroupSize ?? (exact === false ? 64 : undefined);
    this.render = {
      elementsPerThread,
      workgroupSize,
      exact,
      ...(this.splitKernels ? { split: true } : {}),
      subgroupMinSize: info.subgroupMinSize,
      fusedFma: info.fusedFma,
      ...(diagnostics.length ? { diagnostics } : {}),
    };
    this.noRows = this.device.createBuffer({ size: 16, usage: USAGE.STORAGE | USAGE.COPY_DST });
    this.flagBuffers = new GroupFlags(this.device);
    this.gatherer = new Gatherer(this.device);
  }

  /**
   * A backend on this machine's GPU, or on `options.device` (a GPUDevice the caller made, e.g.
   * TF.js's): BackendError if there is none, or an option is wrong.
   */
  static async create(options: WebGpuOptions = {}): Promise<WebGpuBackend> {
    checkOptions(options);
    return WebGpuBackend.open(options, (info) => new WebGpuBackend(info, options));
  }

  /** Get the device (the caller's, or a new one) and build the backend on it; a new device is destroyed if that throws. */
  protected static async open<T extends WebGpuBackend>(
    options: WebGpuOptions,
    make: (info: DeviceInfo) => T,
  ): Promise<T> {
    const info = options.device ? await describeDevice(options.device) : await requestDevice();
    try {
      return make(info);
    } catch (e) {
      if (!options.device) info.device.destroy();
      throw e;
    }
  }

  /** What one buffer and one binding may hold here (the arena chunks to fit: runtime/chunks.ts). */
  get limits(): { maxBufferBytes: number; maxBindingBytes: number } {
    const L = this.device.limits;
    return {
      maxBufferBytes: L.maxBufferSize,
      maxBindingBytes: Math.min(L.maxStorageBufferBindingSize, this.options.maxBindingSize ?? Infinity),
    };
  }

  /** Prepare (compiler/ir/pipeline.ts), render to WGSL with this backend's options, build the pipeline; cached. */
  async compile(kernel: Kernel): Promise<GpuProgram> {
    this.alive('compile');
    // Reduction results live on the device here (combiner): what reads them stays in the kernel.
    const p = prepare(kernel, { reductionsOnDevice: true });
    const key = `${p.key}|${JSON.stringify(this.render)}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    let wgsl: WgslKernel;
    try {
      wgsl = renderWgsl(p, this.render);
    } catch (e) {
      throw new BackendError(`webgpu.compile ${kernel.name}: ${(e as Error).message}`);
    }
    // The shaders are checked now (WGSL errors name their lines); pipelines come per binding plan.
    for (const [w, what] of [
      [wgsl, ''],
      ...(wgsl.fallback ? [[wgsl.fallback, ' (fallback)'] as const] : []),
    ] as const) {
      const module = await this.scopes.awaited(`compile ${kernel.name}${what} (shader module)`, () =>
        this.device.createShaderModule({ code: w.source, label: kernel.name + what }),
      );
      const info = await this.wait(module.getCompilationInfo());
      const errors = info.messages.filter((m) => m.type === 'error');
      if (errors.length)
        throw new BackendError(
          `webgpu.compile ${kernel.name}${what}: WGSL errors: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`,
        );
      this.alive('compile');
    }
    let tables: GPUBuffer | null = null;
    if (wgsl.tables) {
      tables = this.device.createBuffer({ size: wgsl.tables.byteLength, usage: USAGE.STORAGE | USAGE.COPY_DST });
      this.device.queue.writeBuffer(tables, 0, wgsl.tables);
    }
    type Variant = { wgsl: WgslKernel; pipeline: GPUComputePipeline; fallback: GPUComputePipeline | null };
    const variants = new Map<string, Variant>();
    const variant = (plan: BindingPlan) => {
      const key = planKey(plan);
      let v = variants.get(key);
      if (!v) {
        const shared = plan.slots.some((x) => x.fields.length > 1);
        const w = renderWgsl(p, shared && !this.splitShared ? { ...this.render, split: false } : this.render, plan);
        let pipeline!: GPUComputePipeline,
          fallback: GPUComputePipeline | null = null;
        this.scopes.deferred(`compile ${kernel.name} (pipeline for bindings ${key})`, () => {
          pipeline = computePipeline(this.device, kernel.name, w);
          if (w.fallback) fallback = computePipeline(this.device, `${kernel.name} (fallback)`, w.fallback);
        });
        variants.set(key, (v = { wgsl: w, pipeline, fallback }));
      }
      return v;
    };
    const prog: GpuProgram = { prepared: p, source: wgsl.source, wgsl, tables, owner: this, variant };
    this.pipelines.set(key, prog);
    return prog;
  }

  /**
   * A launch's plan, which depends on all of it but its uniform table: a step's launch differs from
   * the last step's only there, so the plan of the same program over the same bindings object,
   * groups, length, rows and counters is kept and given the new table.
   */
  private planOnce(prog: GpuProgram, l: Launch<GpuBuffer>): PlannedLaunch {
    const id = (o: object | null | undefined) => (o ? this.ids.of(o) : -1);
    const key = `${id(prog)} ${l.groups[0]} ${l.groups[1]} ${l.length} ${id(l.rowOf)} ${id(l.counters)} ${id(l.reductions)} ${l.origin}`;
    let byKey = this.launchPlans.get(l.bindings);
    if (!byKey) this.launchPlans.set(l.bindings, (byKey = new Map()));
    const kept = byKey.get(key);
    if (kept) return kept.uniforms === l.uniforms ? kept : { ...kept, uniforms: l.uniforms };
    const p = planLaunch(this, prog, l);
    byKey.set(key, p);
    return p;
  }

  /** Check every item and turn it into what encode.ts encodes (throws before anything is sent). */
  private plan(items: readonly Item<GpuBuffer, GpuProgram>[]): Planned[] {
    return items.map((it) => {
      // An item submitted again (the runtime keeps a device gradient's intake items from step to
      // step) was checked and planned the first time: planning 148 launches and copies costs the
      // host more than an H200 spends on a GPT-2 SGD step.
      const seen = this.planned.get(it);
      if (seen) return seen;
      let p!: Planned; // (assigned within the deferred scope below, which runs at once)
      if ('combine' in it)
        throw new BackendError('webgpu.submit: a combine item (the kernels combine here: combinesInKernels)');
      else if ('copy' in it) p = { copy: planCopy(this, it) };
      else if (it.program.owner !== this)
        throw new BackendError(
          `webgpu.run ${it.program.prepared.kernel.name}: the program was compiled by another backend`,
        );
      else p = { launch: this.planOnce(it.program, it.launch) };
      this.planned.set(it, p);
      return p;
    });
  }

  /**
   * Send planned items as one submission: the upload (parameters and uniform tables) in one
   * writeBuffer, then one command buffer. With `back` (a buffer whose first `words` u32 come back)
   * or timestamps, waits for the GPU and returns those words; otherwise returns at once.
   */
  private async send(what: string, planned: Planned[], back: GpuBuffer | null, words = 0): Promise<Uint32Array | null> {
    const d = this.device;
    const launches = planned.flatMap((p) => ('launch' in p ? [p.launch] : [])) as PlannedLaunch[];
    const { at, bytes } = uploadLayout(launches, d.limits.minUniformBufferOffsetAlignment);
    const timed = this.options.timestamps === true && launches.length > 0;
    const stampBytes = timed ? 16 * launches.length : 0,
      backBytes = stampBytes + words * 4;
    const waits = backBytes > 0;
    if (!waits) {
      // Backpressure: the host never runs more than IN_FLIGHT submissions ahead of the GPU.
      while (this.inFlight.length >= IN_FLIGHT) await this.wait(this.inFlight.shift()!);
      this.alive(what);
    }
    const query = timed ? d.createQuerySet({ type: 'timestamp', count: 2 * launches.length }) : null;
    const resolved = timed ? d.createBuffer({ size: stampBytes, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC }) : null;
    const staging = waits ? d.createBuffer({ size: backBytes, usage: USAGE.MAP_READ | USAGE.COPY_DST }) : null;
    const encode = () => {
      if (!this.upload || this.upload.size < bytes.byteLength) {
        this.upload?.destroy();
        const size = Math.max(4096, 2 ** Math.ceil(Math.log2(bytes.byteLength)));
        this.upload = d.createBuffer({ size, usage: USAGE.UNIFORM | USAGE.STORAGE | USAGE.COPY_DST });
      }
      d.queue.writeBuffer(this.upload, 0, bytes);
      const enc = d.createCommandEncoder({ label: what });
      encodeItems(d, enc, planned, this.upload, at, query, this.bindGroups, this.gatherer, this.flagBuffers);
      if (query && resolved && staging) {
        enc.resolveQuerySet(query, 0, 2 * launches.length, resolved, 0);
        enc.copyBufferToBuffer(resolved, 0, staging, 0, stampBytes);
      }
      if (back && staging && words > 0)
        enc.copyBufferToBuffer(back.buffer, back.offset, staging, stampBytes, words * 4);
      d.queue.submit([enc.finish()]);
    };
    try {
      if (!waits) {
        this.scopes.deferred(what, encode);
        this.inFlight.push(d.queue.onSubmittedWorkDone().catch(() => {}));
        return null;
      }
      await this.scopes.awaited(what, encode);
      await this.wait(staging!.mapAsync(1 /* GPUMapMode.READ */));
      const out = staging!.getMappedRange();
      if (timed) {
        const t = new BigUint64Array(out, 0, 2 * launches.length);
        for (let i = 0; i < launches.length; i++) this.kernelTimes.push(Number(t[2 * i + 1]! - t[2 * i]!) / 1e6);
      }
      return new Uint32Array(out.slice(stampBytes, stampBytes + words * 4));
    } finally {
      this.launches += launches.length;
      for (const l of launches) this.dispatches += l.x === 0 ? 0 : l.fallback ? 2 : 1;
      query?.destroy();
      resolved?.destroy();
      staging?.destroy();
    }
  }

  /**
   * One launch. With `launch.counters` the counts are added there on the device and nothing waits
   * (unless timestamps are on); otherwise they come back, which waits for the GPU.
   */
  async run(prog: GpuProgram, l: Launch<GpuBuffer>): Promise<number[]> {
    this.alive('run');
    const k = prog.prepared.kernel;
    const temp = k.counters.length && !l.counters ? this.alloc('u32', k.counters.length) : null;
    try {
      const planned = this.plan([{ program: prog, launch: temp ? { ...l, counters: temp } : l }]);
      const c = await this.send(`run ${k.name}`, planned, temp, temp ? k.counters.length : 0);
      if (!temp || !c) return [];
      return k.counters.map((cn, i) => (cn.value.type === 'i32' ? c[i]! | 0 : c[i]!));
    } finally {
      if (temp) temp.buffer.destroy();
    }
  }

  /** Copies and launches, in order, in one submission; resolves once submitted (counters stay on the device). */
  async submit(items: readonly Item<GpuBuffer, GpuProgram>[]): Promise<void> {
    this.alive('submit');
    const planned = this.plan(items);
    const names = items.flatMap((it) => ('program' in it ? [it.program.prepared.kernel.name] : []));
    const copies = items.filter((it) => 'copy' in it).length;
    await this.send(`submit (${names.join(', ') || 'no launch'}${copies ? `; ${copies} copies` : ''})`, planned, null);
  }

  /**
   * Reduction results combined in the kernels (combine.ts, blocks.ts): the RED buffer of block
   * tables and sums that every kernel of a step with reductions binds; nothing comes back.
   */
  combiner(plan: CombinePlan<GpuBuffer>): BlockCombine {
    this.alive('combiner');
    let c!: BlockCombine;
    this.scopes.deferred('combiner', () => (c = new BlockCombine(this, plan)));
    return c;
  }
  readonly combinesInKernels = true;

  /** Resolves when the GPU has finished everything submitted so far (for timing). */
  async finish(): Promise<void> {
    this.alive('finish');
    await this.wait(this.device.queue.onSubmittedWorkDone());
    this.inFlight.length = 0;
    this.alive('finish');
  }

  /** Free what the backend holds; the device too, unless it came from the caller. */
  dispose(): void {
    for (const p of this.pipelines.values()) p.tables?.destroy();
    this.pipelines.clear();
    this.upload?.destroy();
    this.noRows.destroy();
    this.flagBuffers.dispose();
    this.gatherer.dispose();
    if (!this.borrowedDevice) this.device.destroy();
  }
}
