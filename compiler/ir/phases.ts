// The phase split of a kernel with reductions (`reduce` nodes: a sum or max over the current
// tensor or over every tensor of the step). A reduction's value is known only after every element
// of its scope was seen, so one step becomes:
//
//   level 1 … L: a reduction pass per level, an ordinary kernel whose group outputs hold each
//                reduction's per-group partial (groupSum / groupMax over the group, element order);
//                a reduction whose argument reads another one waits for that one's level;
//   combine:     the runtime adds (or maxes) the partials over each row's groups in group order,
//                and the rows in row order for a global one: one scalar per row (runtime/reductions.ts);
//   update:      the kernel itself with every reduction replaced by a uniform column `$red<i>`.
//
// Every partial and every combine runs in a fixed order, so the result is the same on every run.
// No renderer ever sees a `reduce` node: prepare() refuses one.

import type { Expr, ReduceFn, ReduceScope } from './ir.ts';
import { children, groupMax, groupSum, topo, uniform, withChildren } from './ir.ts';
import type { Kernel } from './kernel.ts';
import { fieldsRead, kernel, roots } from './kernel.ts';

export interface Reduction {
  /** The reduce node of the original kernel (hash-consed: callers find theirs by identity). */
  readonly node: Expr & { op: 'reduce' };
  /** `$red<i>`: the uniform column the update pass (and later levels) read, and the partial field. */
  readonly name: string;
  readonly fn: ReduceFn;
  readonly scope: ReduceScope;
  /** 1 for a reduction of element values alone; one more than the deepest reduction it reads. */
  readonly level: number;
}

export interface Phases {
  readonly reductions: readonly Reduction[];
  /** One reduction-pass kernel per level (partials as f32 group fields named like the reduction). */
  readonly passes: readonly Kernel[];
  /** The step's kernel with every reduction read as a uniform. */
  readonly update: Kernel;
}

export const REDUCTION_PREFIX = '$red';

/** Split `k` into reduction passes and an update pass (no reductions: no passes, `k` itself). */
export function splitPhases(k: Kernel): Phases {
  const all = roots(k);
  const level = new Map<Expr, number>();
  const found: (Expr & { op: 'reduce' })[] = [];
  for (const e of topo(all)) {
    let l = 0;
    for (const c of children(e)) l = Math.max(l, level.get(c) ?? 0);
    if (e.op === 'reduce') {
      found.push(e);
      l++;
    }
    level.set(e, l);
  }
  if (found.length === 0) return { reductions: [], passes: [], update: k };
  const reductions: Reduction[] = found.map((node, i) => ({
    node,
    name: `${REDUCTION_PREFIX}${i}`,
    fn: node.fn,
    scope: node.scope,
    level: level.get(node)!,
  }));
  const byNode = new Map(reductions.map((r) => [r.node as Expr, r]));
  // Every reduce node becomes its uniform; everything above it is rebuilt (interned) once.
  const swapped = new Map<Expr, Expr>();
  const swap = (root: Expr): Expr => {
    for (const e of topo([root], (x) => !swapped.has(x)))
      if (!swapped.has(e)) {
        const r = byNode.get(e);
        swapped.set(
          e,
          r
            ? uniform(r.name)
            : withChildren(
                e,
                children(e).map((c) => swapped.get(c)!),
              ),
        );
      }
    return swapped.get(root)!;
  };
  const levels = Math.max(...reductions.map((r) => r.level));
  const passes: Kernel[] = [];
  for (let l = 1; l <= levels; l++) {
    const outputs = reductions
      .filter((r) => r.level === l)
      .map((r) => {
        const x = swap(r.node.x);
        return {
          field: r.name,
          storage: 'f32' as const,
          axis: 'group' as const,
          value: r.fn === 'sum' ? groupSum(x) : groupMax(x),
        };
      });
    const partial = { name: `${k.name}/reduce${l}`, groupSize: k.groupSize, outputs, counters: [] };
    const read = new Set(fieldsRead({ ...partial, windowed: [] }).map((f) => f.field));
    passes.push(kernel({ ...partial, windowed: k.windowed.filter((w) => read.has(w)) }));
  }
  const update = kernel({
    name: k.name,
    groupSize: k.groupSize,
    outputs: k.outputs.map((o) => ({ ...o, value: swap(o.value) })),
    counters: k.counters.map((c) => ({ ...c, value: swap(c.value) })),
    windowed: k.windowed,
  });
  return { reductions, passes, update };
}

/** Does the kernel hold a reduction (and so need splitPhases before it can run)? */
export const hasReductions = (k: Kernel): boolean => topo(roots(k)).some((e) => e.op === 'reduce');
