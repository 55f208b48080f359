/// <reference types="@webgpu/types" />
// A submission: copies and launches checked (every check before anything reaches the device, so a
// refused submission changes nothing), their per-launch parameters and uniform tables packed into
// ONE upload written with ONE writeBuffer, then encoded into one command buffer. Launches in a row
// share a compute pass; a run of copies goes first as gather dispatches (gather.ts), in a pass of
// its own, and whatever cannot be gathered as encoder copies.

import { storageBytes } from '../../../compiler/ir/kernel.ts';
import { BIND } from '../../../compiler/render/wgsl/layout.ts';
import type { WgslKernel } from '../../../compiler/render/wgsl/render.ts';
import { baseVecs, FLAG_HEAD } from '../../../compiler/render/wgsl/header.ts';
import type { BindingPlan } from '../../../compiler/render/wgsl/slots.ts';
import { slotBinding } from '../../../compiler/render/wgsl/slots.ts';
import type { Item, Launch, Program } from '../backend.ts';
import { BlockCombine } from './combine.ts';
import { paramHead } from '../../../compiler/render/wgsl/blocked.ts';
import { BackendError } from '../backend.ts';
import type { GpuBuffer } from './memory.ts';
import type { GroupFlags } from './flags.ts';
import type { Gatherer, PlannedCopy } from './gather.ts';
import { Ids } from '../../ids.ts';
import { USAGE } from './memory.ts';
import type { BoundField } from './slots.ts';
import { planSlots } from './slots.ts';

/** A kernel compiled for one WebGPU backend (`owner`), with its pipeline and lookup tables. */
export interface GpuProgram extends Program {
  /** The kernel as rendered with one binding per field (its `source`). */
  readonly wgsl: WgslKernel;
  readonly tables: GPUBuffer | null;
  readonly owner: object;
  /** The kernel and pipeline for a binding plan (slots.ts), made on first use. */
  variant(plan: BindingPlan): {
    readonly wgsl: WgslKernel;
    readonly pipeline: GPUComputePipeline;
    /** A split kernel's fallback half (render.ts), dispatched after `pipeline` over the same launch. */
    readonly fallback: GPUComputePipeline | null;
  };
}

/** What planning needs from the backend: ownership checks and the device. */
export interface Context {
  readonly device: GPUDevice;
  own(b: GpuBuffer | null | undefined, what: string, op: string): GpuBuffer;
  readonly noRows: GPUBuffer;
}

export interface PlannedLaunch {
  readonly prog: GpuProgram;
  readonly pipeline: GPUComputePipeline;
  readonly fields: GPUBindGroupEntry[];
  readonly rowOf: GPUBufferBinding;
  readonly counters: GpuBuffer | null;
  /** The RED buffer of a blocked kernel (binding BIND.reductions, combine.ts), or null. */
  readonly reductions: GPUBufferBinding | null;
  /**
   * A split kernel's fallback half, or null; `words`: the launch's region of the flags buffer both
   * halves bind (BIND.flags; compiler/render/wgsl/header.ts FLAG_HEAD), its size in u32s.
   */
  readonly fallback: { readonly pipeline: GPUComputePipeline; readonly words: number } | null;
  readonly params: Uint32Array;
  readonly uniforms: Float32Array;
  readonly x: number;
  readonly y: number;
}

export type { PlannedCopy };
export type Planned = { readonly launch: PlannedLaunch } | { readonly copy: PlannedCopy };

const align = (x: number, a: number) => Math.ceil(x / a) * a;

/** A storage binding of all of `b` (rowOf): its own buffer whole, a view's range otherwise. */
function binding(ctx: Context, b: GpuBuffer, what: string, op: string): GPUBufferBinding {
  if (b.offset === 0 && b.bytes > 0) return { buffer: b.buffer };
  const a = ctx.device.limits.minStorageBufferOffsetAlignment;
  if (b.offset % a !== 0)
    throw new BackendError(
      `webgpu.${op}: ${what} starts at byte ${b.offset} of its buffer; a binding must start at a multiple of ${a}`,
    );
  checkStorage(b, what, op);
  const size = align(b.length * storageBytes[b.storage], 4);
  if (b.offset + size > b.buffer.size)
    throw new BackendError(
      `webgpu.${op}: ${what} needs bytes [${b.offset}, ${b.offset + size}) of a buffer of ${b.buffer.size} (bindings are whole words)`,
    );
  return { buffer: b.buffer, offset: b.offset, size: Math.max(4, size) };
}

function checkStorage(b: GpuBuffer, what: string, op: string): void {
  if ((b.buffer.usage & USAGE.STORAGE) === 0)
    throw new BackendError(`webgpu.${op}: ${what} is bound as storage, but its buffer lacks GPUBufferUsage.STORAGE`);
}

/** Check one launch against its program; its bind group entries, grid and parameters. */
export function planLaunch(ctx: Context, prog: GpuProgram, l: Launch<GpuBuffer>): PlannedLaunch {
  const k = prog.prepared.kernel,
    op = `run ${k.name}`;
  const w = prog.wgsl,
    [g0, g1] = l.groups;
  const nGroups = Math.ceil(l.length / k.groupSize);
  if (!(0 <= g0 && g0 <= g1 && g1 <= nGroups))
    throw new BackendError(`webgpu.${op}: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
  const bound: BoundField[] = [];
  for (const f of w.fields) {
    const b = ctx.own(l.bindings[f.field], `field ${f.field}`, op);
    if (b.storage !== f.storage)
      throw new BackendError(`webgpu.${op}: field ${f.field} is ${f.storage}, bound to a ${b.storage} buffer`);
    // A windowed field holds only the launched groups' elements.
    const need = k.windowed.includes(f.field)
      ? Math.max(0, Math.min(l.length, g1 * k.groupSize) - g0 * k.groupSize)
      : f.axis === 'element'
        ? l.length
        : nGroups;
    if (b.length < need)
      throw new BackendError(`webgpu.${op}: field ${f.field} has ${b.length} entries, needs ${need}`);
    checkStorage(b, `field ${f.field}`, op);
    const windowed = k.windowed.includes(f.field);
    const from = windowed ? 0 : f.axis === 'element' ? g0 * k.groupSize : g0;
    if (from < (b.lo ?? 0))
      throw new BackendError(`webgpu.${op}: field ${f.field} holds values from ${b.lo}, the launch starts at ${from}`);
    bound.push({ f, b, from, need, windowed });
  }
  let reductions: GPUBufferBinding | null = null,
    blocked: number[] = [];
  if (w.reductions) {
    // A blocked kernel (compiler/render/wgsl/blocked.ts): a workgroup per block of its groups.
    const c = l.reductions;
    if (!(c instanceof BlockCombine) || l.origin === undefined)
      throw new BackendError(
        `webgpu.${op}: the kernel runs a step's reductions, but the launch names no reductions of this backend (with its origin)`,
      );
    ctx.own(c.red, 'the reductions buffer', op);
    const [fb, nb] = c.launchBlocks(l.origin + g0, l.origin + g1, op);
    const { bs, rb, fn, sl } = c.words;
    blocked = [fb, nb, l.origin, bs, rb, fn, sl];
    reductions = binding(ctx, c.red, 'the reductions buffer', op);
  }
  const L = ctx.device.limits;
  // uniforms, rowOf, counters, tables, reductions or a split kernel's flags
  const own = 2 + (w.counters ? 1 : 0) + (w.tables ? 1 : 0) + (w.reductions || w.fallback ? 1 : 0);
  const sp = planSlots(bound, {
    slots: L.maxStorageBuffersPerShaderStage - own,
    offsetAlignment: L.minStorageBufferOffsetAlignment,
    maxBindingBytes: L.maxStorageBufferBindingSize,
  });
  if (typeof sp === 'string') throw new BackendError(`webgpu.${op}: cannot bind the kernel: ${sp}`);
  const rowOf = l.rowOf ? binding(ctx, ctx.own(l.rowOf, 'rowOf', op), 'rowOf', op) : { buffer: ctx.noRows };
  // rowOf in a buffer a slot writes must be writable too (a dispatch either writes a buffer or reads it).
  const written = new Set(sp.ranges.filter((_, i) => sp.plan.slots[i]!.writable).map((r) => r.buffer));
  const plan = written.has(rowOf.buffer) ? { ...sp.plan, rowOfWritable: true } : sp.plan;
  const fields = sp.ranges.map((r, i) => ({ binding: slotBinding(i), resource: r }));
  let counters: GpuBuffer | null = null;
  if (w.counters > 0) {
    counters = ctx.own(l.counters, 'the counters buffer', op);
    if (counters.storage !== 'u32' || counters.length < w.counters)
      throw new BackendError(
        `webgpu.${op}: the counters buffer must hold ${w.counters} u32 values, it holds ${counters.length} ${counters.storage}`,
      );
  }
  const threads = (g1 - g0) * w.threadsPerGroup;
  const workgroups = w.reductions ? blocked[1]! : Math.ceil(threads / w.workgroupSize);
  // A 2-D grid as square as the count needs: y rows of x, with fewer than y workgroups spare.
  const maxDim = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.ceil(workgroups / maxDim),
    x = y === 0 ? 0 : Math.ceil(workgroups / y);
  if (y > maxDim)
    throw new BackendError(`webgpu.${op}: ${g1 - g0} groups need ${workgroups} workgroups, more than a 2-D grid holds`);
  // Params: g0, g1, n, rows, columns, never, reductions a row, then a blocked launch's block fields
  // (blocked.ts BLOCKED_PARAMS), padding, then each field's base.
  const head = paramHead(w.reductions);
  const params = new Uint32Array(head + 4 * baseVecs(w.fields.length));
  const reds = l.reductions?.reductions.length ?? 0;
  params.set([g0, g1, l.length, l.rowOf ? 1 : 0, prog.prepared.columns.length, 0, reds, ...blocked]);
  params.set(sp.bases, head);
  const v = prog.variant(plan);
  // The head, a marker and a list entry a workgroup, a bit a group of the grid (header.ts fail_groups).
  const words = FLAG_HEAD + 2 * x * y + Math.ceil((x * y * w.workgroupSize) / w.threadsPerGroup / 32);
  const fallback = v.fallback ? { pipeline: v.fallback, words } : null;
  return {
    prog,
    pipeline: v.pipeline,
    fields,
    rowOf,
    counters,
    reductions,
    fallback,
    params,
    uniforms: l.uniforms,
    x,
    y,
  };
}

/** Check one copy: same storage, in bounds, every byte offset and size a whole word. */
export function planCopy(ctx: Context, it: Extract<Item<GpuBuffer>, { copy: unknown }>): PlannedCopy {
  const { from, fromAt, to, toAt } = it.copy,
    n = it.length,
    op = 'submit (copy)';
  const a = ctx.own(from, 'the copy source', op),
    b = ctx.own(to, 'the copy target', op);
  if (a.storage !== b.storage)
    throw new BackendError(`webgpu.${op}: a ${a.storage} buffer copied to a ${b.storage} one`);
  if (!(n >= 0 && fromAt >= 0 && toAt >= 0 && fromAt + n <= a.length && toAt + n <= b.length))
    throw new BackendError(
      `webgpu.${op}: ${n} values from ${fromAt} of ${a.length} to ${toAt} of ${b.length} run past an end`,
    );
  const sb = storageBytes[a.storage];
  const fromByte = a.offset + fromAt * sb,
    toByte = b.offset + toAt * sb,
    bytes = n * sb;
  if (fromByte % 4 || toByte % 4 || bytes % 4)
    throw new BackendError(
      `webgpu.${op}: ${n} ${a.storage} values from byte ${fromByte} to byte ${toByte}: copies move whole 4-byte words`,
    );
  if ((a.buffer.usage & USAGE.COPY_SRC) === 0)
    throw new BackendError(`webgpu.${op}: the source buffer lacks GPUBufferUsage.COPY_SRC`);
  return { from: a.buffer, fromByte, to: b.buffer, toByte, bytes };
}

/**
 * Where each launch's parameters and uniform table sit in the upload, and its bytes. A table that
 * several launches share (one object: gradient release's per-tensor launches) is uploaded once.
 */
export function uploadLayout(launches: readonly PlannedLaunch[], alignment: number) {
  const at: { params: number; paramBytes: number; uniforms: number; size: number }[] = [];
  const tables = new Map<Float32Array, number>();
  let end = 0;
  for (const l of launches) {
    const params = align(end, alignment);
    end = params + l.params.byteLength;
    const size = Math.max(16, align(l.uniforms.byteLength, 16));
    let uniforms = tables.get(l.uniforms);
    if (uniforms === undefined) {
      uniforms = align(end, alignment);
      tables.set(l.uniforms, uniforms);
      end = uniforms + size;
    }
    at.push({ params, paramBytes: l.params.byteLength, uniforms, size });
  }
  const bytes = new Uint8Array(Math.max(16, align(end, 16)));
  launches.forEach((l, i) => {
    bytes.set(new Uint8Array(l.params.buffer), at[i]!.params);
    bytes.set(new Uint8Array(l.uniforms.buffer, l.uniforms.byteOffset, l.uniforms.byteLength), at[i]!.uniforms);
  });
  return { at, bytes };
}

/**
 * Bind groups by what they bind. A step binds the same buffers at the same upload offsets each
 * time, and creating a bind group costs the host microseconds: a gradient-release step of GPT-2
 * binds 148 of them. Keys name buffers by identity (a new buffer never matches an old key).
 */
export class BindGroups {
  private readonly ids = new Ids();
  private readonly cache = new Map<string, GPUBindGroup>();

  get(d: GPUDevice, pipeline: GPUComputePipeline, entries: readonly GPUBindGroupEntry[], label: string): GPUBindGroup {
    let key = `${this.ids.of(pipeline)}`;
    for (const e of entries) {
      const r = e.resource as GPUBufferBinding;
      key += `|${e.binding}:${this.ids.of(r.buffer)}:${r.offset ?? 0}:${r.size ?? -1}`;
    }
    let g = this.cache.get(key);
    if (!g) {
      if (this.cache.size >= 4096) this.cache.clear(); // bound what stale entries can hold on to
      g = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...entries], label });
      this.cache.set(key, g);
    }
    return g;
  }
}

/** Encode the planned items into `enc`; `upload` holds uploadLayout's bytes; `stamps` times each launch. */
export function encodeItems(
  d: GPUDevice,
  enc: GPUCommandEncoder,
  items: readonly Planned[],
  upload: GPUBuffer,
  at: readonly { params: number; paramBytes: number; uniforms: number; size: number }[],
  stamps: GPUQuerySet | null,
  groups: BindGroups,
  gatherer: Gatherer | null,
  flags: GroupFlags,
): void {
  // Each split launch's region of the flags buffer, all cleared first (header.ts fail_groups).
  const regions: number[] = [];
  let flagBytes = 0;
  for (const it of items)
    if ('launch' in it && it.launch.fallback) {
      regions.push(flagBytes);
      flagBytes += align(it.launch.fallback.words * 4, d.limits.minStorageBufferOffsetAlignment);
    }
  const fl = flagBytes > 0 ? flags.get(flagBytes) : null;
  if (fl) enc.clearBuffer(fl, 0, flagBytes);
  let region = 0;
  let pass: GPUComputePassEncoder | null = null,
    li = 0,
    pipeline: GPUComputePipeline | null = null;
  const end = () => {
    pass?.end();
    pass = null;
    pipeline = null;
  };
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if ('copy' in it) {
      // A run of copies: as few gather dispatches as they fit (gather.ts), the rest as copies.
      const run: PlannedCopy[] = [];
      for (; i < items.length && 'copy' in items[i]!; i++) run.push((items[i] as { copy: PlannedCopy }).copy);
      i--;
      const { gathers, rest } = gatherer ? gatherer.plan(run) : { gathers: [], rest: run };
      end();
      for (const c of rest) if (c.bytes > 0) enc.copyBufferToBuffer(c.from, c.fromByte, c.to, c.toByte, c.bytes);
      if (gathers.length) {
        pass = enc.beginComputePass();
        gatherer!.encode(pass, gathers);
        end();
      }
      continue;
    }
    const l = it.launch,
      u = at[li]!;
    if (stamps) {
      // Its own pass, written even when empty, so both of its timestamps exist.
      end();
      pass = enc.beginComputePass({
        timestampWrites: { querySet: stamps, beginningOfPassWriteIndex: 2 * li, endOfPassWriteIndex: 2 * li + 1 },
      });
    }
    if (l.x > 0) {
      const entries: GPUBindGroupEntry[] = [
        ...l.fields,
        { binding: BIND.params, resource: { buffer: upload, offset: u.params, size: u.paramBytes } },
        { binding: BIND.uniforms, resource: { buffer: upload, offset: u.uniforms, size: u.size } },
        { binding: BIND.rowOf, resource: l.rowOf },
      ];
      if (l.counters) entries.push({ binding: BIND.counters, resource: { buffer: l.counters.buffer } });
      if (l.prog.tables) entries.push({ binding: BIND.tables, resource: { buffer: l.prog.tables } });
      if (l.reductions) entries.push({ binding: BIND.reductions, resource: l.reductions });
      const flagged = l.fallback && fl ? { buffer: fl, offset: regions[region++]!, size: l.fallback.words * 4 } : null;
      if (flagged) entries.push({ binding: BIND.flags, resource: flagged });
      pass ??= enc.beginComputePass();
      // Per-tensor launches of one program (gradient release) set it once per pass.
      if (pipeline !== l.pipeline) pass.setPipeline((pipeline = l.pipeline));
      const name = l.prog.prepared.kernel.name;
      pass.setBindGroup(0, groups.get(d, l.pipeline, entries, name));
      pass.dispatchWorkgroups(l.x, l.y);
      if (l.fallback && flagged) {
        // Over the workgroups the first half listed: none, where every check held.
        pass.setPipeline((pipeline = l.fallback.pipeline));
        pass.setBindGroup(0, groups.get(d, l.fallback.pipeline, entries, `${name} (fallback)`));
        pass.dispatchWorkgroupsIndirect(flagged.buffer, flagged.offset);
      }
    }
    if (stamps) end();
    li++;
  }
  end();
}
