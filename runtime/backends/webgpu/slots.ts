/// <reference types="@webgpu/types" />
// Which binding ("slot") of a launch holds each field (compiler/render/wgsl/slots.ts renders it).
// A device at WebGPU's default limits has 8 storage buffers per shader stage; FlashAdamW has 7
// fields beside uniforms, rowOf, counters and tables. The arena packs a chunk's fields into one
// buffer (runtime/chunks.ts), so the fields of one GPUBuffer share slots: a run of them, in byte
// order, reached the same way (vec4, word or atomic), bound as one range, each at its own base.
// Writable slots never overlap: WebGPU refuses aliased writable bindings in a dispatch. Every slot
// of a buffer that any binding writes is writable: a buffer is either written or read in a
// dispatch, never both kinds of binding at once.

import { storageBytes } from '../../../compiler/ir/kernel.ts';
import type { Access, FieldLayout } from '../../../compiler/render/wgsl/layout.ts';
import type { BindingPlan, Slot } from '../../../compiler/render/wgsl/slots.ts';
import type { GpuBuffer } from './memory.ts';

/** A field of a launch and what it is bound to. */
export interface BoundField {
  readonly f: FieldLayout;
  readonly b: GpuBuffer;
  /** The values the launch may touch: [from, need). */
  readonly from: number;
  readonly need: number;
  readonly windowed: boolean;
}

export interface SlotPlan {
  readonly plan: BindingPlan;
  /** The range each slot binds. */
  readonly ranges: readonly GPUBufferBinding[];
  /** Each field's base in its slot's units (16 bytes for vec4, 4 otherwise), by FieldLayout.index. */
  readonly bases: readonly number[];
}

export interface SlotLimits {
  /** Storage bindings left for fields. */
  readonly slots: number;
  readonly offsetAlignment: number;
  readonly maxBindingBytes: number;
}

const RANK: Record<Access, number> = { vec4: 0, word: 1, atomic: 2 };
const unit = (a: Access) => (a === 'vec4' ? 16 : 4);
const up = (x: number, a: number) => Math.ceil(x / a) * a;

interface Run {
  readonly buffer: GPUBuffer;
  readonly size: number;
  type: Access;
  writable: boolean;
  start: number;
  end: number;
  fields: BoundField[];
}

/** Byte of value 0 (below the buffer's start for a shifted view: runtime/params.ts), and of the first value touched. */
const originOf = (x: BoundField) => x.b.offset;
const firstOf = (x: BoundField) => x.b.offset + x.from * storageBytes[x.b.storage];
const bytesOf = (x: BoundField) => x.need * storageBytes[x.b.storage];
const mod = (x: number, m: number) => ((x % m) + m) % m;

/** A field's own way in: atomics where it must, vec4 where its span and place allow, words otherwise. */
function wants(x: BoundField): Access {
  if (x.f.access === 'atomic') return 'atomic';
  if (x.f.access === 'vec4' && !x.windowed && mod(originOf(x), 16) === 0) return 'vec4';
  return 'word';
}

/** Close a run: its binding range, at the device's alignment, and ending within its buffer. */
function close(r: Run, align: number): void {
  r.start = Math.floor(Math.min(...r.fields.map(firstOf)) / align) * align;
  const end = (t: Access) => Math.max(...r.fields.map((x) => originOf(x) + up(bytesOf(x), unit(t))));
  // A vec4 slot's last vec4 must lie inside the buffer, and every base be a whole vec4.
  if (r.type === 'vec4' && (end('vec4') > r.size || r.fields.some((x) => mod(originOf(x) - r.start, 16) !== 0)))
    r.type = 'word';
  r.end = Math.min(r.size, Math.max(r.start + 4, end(r.type)));
}

/** Runs of one buffer's fields in byte order: a new run where the way in changes and ranges stay apart. */
function runsOf(fields: BoundField[], writable: boolean, align: number): Run[] {
  const sorted = [...fields].sort((a, b) => firstOf(a) - firstOf(b));
  const runs: Run[] = [];
  for (const x of sorted) {
    const t = wants(x);
    const last = runs[runs.length - 1];
    const aligned = Math.floor(firstOf(x) / align) * align;
    if (last && (last.type === t || aligned < last.end)) {
      last.fields.push(x);
      if (RANK[t] > RANK[last.type]) last.type = t;
      close(last, align);
      continue;
    }
    const r: Run = { buffer: x.b.buffer, size: x.b.buffer.size, type: t, writable, start: 0, end: 0, fields: [x] };
    close(r, align);
    runs.push(r);
  }
  return runs;
}

/** Merge all of a buffer's runs into one reached the most general way. */
function merge(runs: Run[], align: number): Run {
  const r = runs[0]!;
  r.fields = runs.flatMap((x) => x.fields);
  r.type = runs.reduce<Access>((t, x) => (RANK[x.type] > RANK[t] ? x.type : t), 'vec4');
  close(r, align);
  return r;
}

/**
 * The plan for a launch's fields, or a message saying why none fits the device. `writes(b)`: some
 * binding of the launch writes GPUBuffer b (its fields', or rowOf's buffer then needs to be writable).
 */
export function planSlots(bound: readonly BoundField[], lim: SlotLimits): SlotPlan | string {
  const byBuffer = new Map<GPUBuffer, BoundField[]>();
  for (const x of bound) {
    const list = byBuffer.get(x.b.buffer);
    if (list) list.push(x);
    else byBuffer.set(x.b.buffer, [x]);
  }
  const writes = (fs: BoundField[]) => fs.some((x) => x.f.written || x.f.access === 'atomic');
  // A slot per field where the device has the bindings (its index then needs no base: fastest),
  // unless two fields' ranges would overlap; else runs of fields sharing slots.
  const own = [...byBuffer.values()].map((fs) => fs.map((x) => runsOf([x], writes(fs), lim.offsetAlignment)[0]!));
  const apart = own.every((rs) => {
    const sorted = [...rs].sort((a, b) => a.start - b.start);
    return sorted.every((r, i) => i === 0 || sorted[i - 1]!.end <= r.start);
  });
  let groups =
    apart && own.reduce((n, rs) => n + rs.length, 0) <= lim.slots
      ? own
      : [...byBuffer.values()].map((fs) => runsOf(fs, writes(fs), lim.offsetAlignment));
  // Too many slots: fold the buffer with the most runs into one, until it fits or cannot.
  for (;;) {
    const total = groups.reduce((s, g) => s + g.length, 0);
    if (total <= lim.slots) break;
    const widest = groups.reduce((a, g) => (g.length > a.length ? g : a));
    if (widest.length === 1)
      return `its fields lie in ${groups.length} buffers, and this device binds at most ${lim.slots} beside the kernel's own (maxStorageBuffersPerShaderStage)`;
    groups = groups.map((g) => (g === widest ? [merge(g, lim.offsetAlignment)] : g));
  }
  const runs = groups.flat();
  const slots: Slot[] = [];
  const ranges: GPUBufferBinding[] = [];
  const bases: number[] = [];
  for (const r of runs) {
    if (r.end - r.start > lim.maxBindingBytes)
      return `a binding of ${r.end - r.start} bytes exceeds this device's maxStorageBufferBindingSize ${lim.maxBindingBytes}`;
    slots.push({ type: r.type, writable: r.writable || r.type === 'atomic', fields: r.fields.map((x) => x.f.index) });
    ranges.push({ buffer: r.buffer, offset: r.start, size: r.end - r.start });
    // Below the binding's start for a shifted view: u32 arithmetic in the kernel wraps it back.
    for (const x of r.fields) bases[x.f.index] = ((originOf(x) - r.start) / unit(r.type)) >>> 0;
  }
  const zeroBase = bound.filter((x) => bases[x.f.index] === 0).map((x) => x.f.index);
  return { plan: { slots, rowOfWritable: false, zeroBase }, ranges, bases };
}
