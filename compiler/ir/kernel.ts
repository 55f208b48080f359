// A kernel: what to compute, not how. Fields in (loads inside the expressions), fields out (each
// with the expression stored to it), counters summed over elements, and an explicit group axis:
// elements come in groups of `groupSize`, group-axis fields hold one value per group, and
// `groupMax` reduces over a group. Renderers turn this into loops, threads or workgroups.

import type { Axis, Expr, Storage } from './ir.ts';
import { children, isGroupReduction, loadType, topo } from './ir.ts';

export interface FieldRef {
  readonly field: string;
  readonly storage: Storage;
  readonly axis: Axis;
}
export interface Output extends FieldRef {
  readonly value: Expr;
}
/**
 * A count summed over every element processed (a bool counts 1 when true). The sum wraps modulo
 * 2^32 and reads as the counter's type (i32 signed; bool and u32 unsigned) on every backend, as a
 * GPU's 32-bit atomics do; a count of booleans cannot wrap on an arena 32-bit indices address.
 */
export interface Counter {
  readonly name: string;
  readonly value: Expr;
}

/** A counter's total as its type, from any integer sum of its values (exact below 2^53). */
export const counterValue = (c: Counter, total: number): number => (c.value.type === 'i32' ? total | 0 : total >>> 0);

export interface Kernel {
  readonly name: string;
  readonly groupSize: number;
  readonly outputs: readonly Output[];
  readonly counters: readonly Counter[];
  /**
   * Element fields that hold only the launched groups' elements: element i of the launch lives at
   * i − g0·groupSize. Gradient release binds one tensor's gradient this way, so no arena-sized
   * gradient buffer is ever held.
   */
  readonly windowed: readonly string[];
}

export class KernelError extends Error {}

/** The most expression nodes one kernel may have (about a 10,000-deep chain of two-op steps). */
export const MAX_KERNEL_NODES = 20_000;

/** Does the value of `e` vary per element (reads an element field outside a group reduction or a reduce)? */
export function elementwise(e: Expr, memo = new Map<Expr, boolean>()): boolean {
  const hit = memo.get(e);
  if (hit !== undefined) return hit;
  // Children first, without recursion (expressions may be arbitrarily deep).
  for (const n of topo([e], (x) => !isGroupReduction(x) && x.op !== 'reduce' && !memo.has(x))) {
    if (memo.has(n)) continue;
    memo.set(
      n,
      n.op === 'load'
        ? n.axis === 'element'
        : isGroupReduction(n) || n.op === 'reduce' || n.op === 'const' || n.op === 'uniform'
          ? false
          : children(n).some((c) => memo.get(c)!),
    );
  }
  return memo.get(e)!;
}

/** Build a kernel, checking what a renderer would otherwise trip over later. */
export function kernel(spec: {
  name?: string;
  groupSize?: number;
  outputs: readonly Output[];
  counters?: readonly Counter[];
  windowed?: readonly string[];
}): Kernel {
  const groupSize = spec.groupSize ?? 32;
  const name = spec.name ?? 'kernel';
  if (!Number.isInteger(groupSize) || groupSize < 1)
    throw new KernelError(`kernel ${name}: groupSize must be a positive integer, got ${groupSize}`);
  const seen = new Set<string>();
  const memo = new Map<Expr, boolean>();
  for (const o of spec.outputs) {
    if (seen.has(o.field)) throw new KernelError(`kernel ${name}: field ${o.field} is written twice`);
    seen.add(o.field);
    const want = loadType(o.storage);
    if (o.value.type !== want)
      throw new KernelError(
        `kernel ${name}: output ${o.field} stores ${o.storage} from a ${want}, got a ${o.value.type}`,
      );
    if (o.axis === 'group' && elementwise(o.value, memo))
      throw new KernelError(`kernel ${name}: group output ${o.field} reads an element field outside groupMax`);
  }
  for (const c of spec.counters ?? []) {
    if (c.value.type !== 'bool' && c.value.type !== 'u32' && c.value.type !== 'i32')
      throw new KernelError(`kernel ${name}: counter ${c.name} must count a bool or an integer, got ${c.value.type}`);
  }
  // Every renderer is iterative, but the code it writes is one function per kernel: a JavaScript
  // function or WebAssembly body with ~10^5 locals overflows the engine's own stack when it runs.
  const size = topo(roots({ outputs: spec.outputs, counters: spec.counters ?? [] } as Kernel)).length;
  if (size > MAX_KERNEL_NODES)
    throw new KernelError(
      `kernel ${name}: ${size} expression nodes, more than the ${MAX_KERNEL_NODES} a kernel may have (MAX_KERNEL_NODES); split the computation`,
    );
  const k: Kernel = {
    name,
    groupSize,
    outputs: spec.outputs,
    counters: spec.counters ?? [],
    windowed: spec.windowed ?? [],
  };
  const loads = fieldsRead(k);
  for (const w of k.windowed) {
    const f = loads.find((l) => l.field === w);
    if (!f || f.axis !== 'element' || k.outputs.some((o) => o.field === w))
      throw new KernelError(`kernel ${name}: windowed field ${w} must be a read-only element field the kernel reads`);
  }
  for (const o of k.outputs) {
    const r = loads.find((l) => l.field === o.field);
    if (r && (r.storage !== o.storage || r.axis !== o.axis))
      throw new KernelError(
        `kernel ${name}: field ${o.field} is read as ${r.storage}/${r.axis} but written as ${o.storage}/${o.axis}`,
      );
  }
  for (const a of loads)
    for (const b of loads)
      if (a !== b && a.field === b.field)
        throw new KernelError(
          `kernel ${name}: field ${a.field} is read both as ${a.storage}/${a.axis} and as ${b.storage}/${b.axis}`,
        );
  return k;
}

export function roots(k: Kernel): Expr[] {
  return [...k.outputs.map((o) => o.value), ...k.counters.map((c) => c.value)];
}

/** Every field a kernel reads, once each, in first-use order. */
export function fieldsRead(k: Kernel): FieldRef[] {
  const out = new Map<string, FieldRef>();
  for (const e of topo(roots(k)))
    if (e.op === 'load') {
      const key = `${e.field}/${e.storage}/${e.axis}`;
      if (!out.has(key)) out.set(key, { field: e.field, storage: e.storage, axis: e.axis });
    }
  return [...out.values()];
}

/** Every field a kernel touches (read or written), each once. */
export function fields(k: Kernel): FieldRef[] {
  const out = new Map<string, FieldRef>();
  for (const f of [...fieldsRead(k), ...k.outputs])
    if (!out.has(f.field)) out.set(f.field, { field: f.field, storage: f.storage, axis: f.axis });
  return [...out.values()];
}

/** Uniform names a kernel reads, sorted (the order of a uniform-table row). */
export function uniformsOf(k: Kernel): string[] {
  const s = new Set<string>();
  for (const e of topo(roots(k))) if (e.op === 'uniform') s.add(e.name);
  return [...s].sort();
}

/**
 * The reduction levels: a groupMax or groupSum whose argument contains other groupMaxes must wait for them.
 * Level 1 holds those with none inside; a renderer runs one pass over the group per level.
 */
export function groupLevels(k: Kernel): Expr[][] {
  const level = new Map<Expr, number>();
  for (const e of topo(roots(k))) {
    let l = 0;
    for (const c of children(e)) l = Math.max(l, level.get(c) ?? 0);
    level.set(e, isGroupReduction(e) ? l + 1 : l);
  }
  const out: Expr[][] = [];
  for (const [e, l] of level) if (isGroupReduction(e)) (out[l - 1] ??= []).push(e);
  return out.map((xs) => xs ?? []);
}

export const storageBytes: Record<Storage, number> = { f32: 4, i32: 4, u32: 4, u16: 2, i16: 2, u8: 1, i8: 1 };

/** The typed array that holds a field of each storage on the host. */
export type FieldArray = Float32Array | Int32Array | Uint32Array | Uint16Array | Int16Array | Uint8Array | Int8Array;
export const arrayFor: Record<Storage, new (n: number) => FieldArray> = {
  f32: Float32Array,
  i32: Int32Array,
  u32: Uint32Array,
  u16: Uint16Array,
  i16: Int16Array,
  u8: Uint8Array,
  i8: Int8Array,
};
