// The oracle run over a whole launch: every output of every element evaluated with semantics.ts,
// exactly as a kernel means it. Every backend and renderer is checked against this (the
// conformance suite in test/ wraps it as a Backend), so it is written for obviousness first:
// per element, every node in topological order through `apply`; no rendering, no lanes.
//
// The launch semantics a renderer must reproduce:
// - groups [g0, g1) run; elements at or past `length` are neither read nor written;
// - `groupMax(x)` is the maximum of x over the group's elements in index order, a NaN element
//   ignored and the first of equal values (±0) kept: semantics.ts's fmax folded from NaN;
// - `groupSum(x)` adds x over the group's elements in index order, in f32, starting from +0; with
//   `sumLanes` L (a renderer that splits a group over L threads, WGSL's), each of L consecutive
//   runs of G/L elements is added that way, then the runs' sums pairwise: (s0 + s1) + (s2 + s3);
// - a group-max level reads only lower levels, so levels are reduced one after the other;
// - every read sees the value from before the launch (a field an output overwrites is read by the
//   element that writes it, before it writes it; group outputs are written after the group);
// - a windowed field holds only the launched elements: element i lives at i − g0·groupSize;
// - uniform u of the group's row is Math.fround(rows[rowOf[g]][u]) (row 0 without rowOf);
// - a counter is the sum over elements of its value (a bool counts 1), modulo 2^32, read as its type.

import type { Expr } from './ir.ts';
import { children, topo } from './ir.ts';
import type { FieldArray, Kernel } from './kernel.ts';
import { counterValue, groupLevels, roots } from './kernel.ts';
import type { Uniforms } from './pipeline.ts';
import { apply, fmax } from './semantics.ts';

export interface Launch {
  /** Every field the kernel touches; outputs are written in place. */
  readonly fields: Readonly<Record<string, FieldArray>>;
  /** Uniform rows (one per parameter group); `rowOf[g]` picks group g's row (row 0 without it). */
  readonly uniforms: readonly Uniforms[];
  readonly rowOf?: ArrayLike<number> | null;
  /** Groups to run, [start, end); default all. */
  readonly groups?: readonly [number, number];
  readonly length: number;
  /** Threads a group's sum is split over (a power of two dividing the group size); default 1. */
  readonly sumLanes?: number;
}

/** Run `k` over `launch` with the oracle; returns the counters in declaration order. */
export function interpret(k: Kernel, launch: Launch): number[] {
  const G = k.groupSize,
    n = launch.length;
  const order = topo(roots(k));
  const at = new Map<Expr, number>(order.map((e, i) => [e, i]));
  const kids = order.map((e) => children(e).map((c) => at.get(c)!));
  const levels = groupLevels(k);
  const [g0, g1] = launch.groups ?? [0, Math.ceil(n / G)];
  const field = (name: string): FieldArray => {
    const a = launch.fields[name];
    if (!a) throw new RangeError(`interpret ${k.name}: field ${name} is missing`);
    return a;
  };
  const lanes = launch.sumLanes ?? 1,
    run = G / lanes;
  if (!Number.isInteger(run) || (lanes & (lanes - 1)) !== 0)
    throw new RangeError(`interpret ${k.name}: sumLanes ${lanes} must be a power of two dividing groupSize ${G}`);
  const windowStart = g0 * G;
  const vals = new Float64Array(order.length);
  const args = [0, 0, 0]; // children's values of the node being applied (reused: no allocation per node)
  const counters = k.counters.map(() => 0);
  const groupValue = new Map<Expr, number>();

  for (let g = g0; g < g1; g++) {
    const row = launch.uniforms[launch.rowOf ? launch.rowOf[g]! : 0];
    if (!row) throw new RangeError(`interpret ${k.name}: group ${g} has no uniform row`);
    const base = g * G,
      end = Math.min(base + G, n);
    groupValue.clear();
    const evalAt = (i: number) => {
      for (let j = 0; j < order.length; j++) {
        const e = order[j]!;
        switch (e.op) {
          case 'const':
            vals[j] = e.value;
            break;
          case 'uniform': {
            const u = row[e.name];
            if (typeof u !== 'number') throw new RangeError(`interpret ${k.name}: uniform ${e.name} is missing`);
            vals[j] = Math.fround(u);
            break;
          }
          case 'load': {
            const index = e.axis === 'group' ? g : k.windowed.includes(e.field) ? i - windowStart : i;
            vals[j] = field(e.field)[index]!;
            break;
          }
          // A level not reduced yet reads NaN; only a higher level's argument could see it, and
          // those are evaluated after this level is known.
          case 'groupMax':
          case 'groupSum':
            vals[j] = groupValue.get(e) ?? NaN;
            break;
          default: {
            const c = kids[j]!;
            for (let m = 0; m < c.length; m++) args[m] = vals[c[m]!]!;
            vals[j] = apply(e, args);
          }
        }
      }
    };
    for (const level of levels) {
      const acc = level.map((m) => (m.op === 'groupSum' ? new Array<number>(lanes).fill(0) : [NaN]));
      for (let i = base; i < end; i++) {
        evalAt(i);
        const lane = Math.floor((i - base) / run);
        level.forEach((m, l) => {
          const v = vals[at.get((m as Expr & { x: Expr }).x)!]!,
            a = acc[l]!;
          if (m.op === 'groupSum') a[lane] = Math.fround(a[lane]! + v);
          else a[0] = fmax(a[0]!, v);
        });
      }
      level.forEach((m, l) => groupValue.set(m, pairwise(acc[l]!)));
    }
    const pending: [FieldArray, number][] = [];
    for (let i = base; i < end; i++) {
      evalAt(i);
      for (const o of k.outputs) if (o.axis === 'element') pending.push([field(o.field), vals[at.get(o.value)!]!]);
      k.counters.forEach((c, ci) => {
        counters[ci] = counterValue(c, counters[ci]! + vals[at.get(c.value)!]!);
      });
      // Element i is written once all of its reads are done; no other element reads it.
      for (const [a, v] of pending) a[i] = v;
      pending.length = 0;
    }
    if (end > base) {
      evalAt(base);
      const out = k.outputs
        .filter((o) => o.axis === 'group')
        .map((o) => [field(o.field), vals[at.get(o.value)!]!] as const);
      for (const [a, v] of out) a[g] = v;
    }
  }
  return counters;
}

/** The lanes' sums added pairwise, neighbours first: (s0 + s1) + (s2 + s3) (one lane: itself). */
function pairwise(xs: number[]): number {
  for (let w = xs.length; w > 1; w /= 2)
    for (let i = 0; i < w / 2; i++) xs[i] = Math.fround(xs[2 * i]! + xs[2 * i + 1]!);
  return xs[0]!;
}
