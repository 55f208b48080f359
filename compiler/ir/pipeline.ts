// The passes, in order, each a line away from why it is there. A kernel goes in; a `Prepared`
// kernel comes out that every renderer reads.

import type { Expr } from './ir.ts';
import { structuralKey, topo } from './ir.ts';
import type { Kernel } from './kernel.ts';
import { KernelError, kernel, roots, uniformsOf } from './kernel.ts';
import type { Derived } from './passes.ts';
import { evalDerived, fold, hoist, simplify } from './passes.ts';
import { rewrite, rules } from './rewrite.ts';
import { REDUCTION_PREFIX } from './phases.ts';

export interface Prepared {
  /** The kernel after the passes (hash-consing already shared every common subexpression). */
  readonly kernel: Kernel;
  /** Uniforms the user sets, sorted by name. */
  readonly inputs: readonly string[];
  /** Uniforms computed on the host from the inputs, once per call and row. */
  readonly derived: readonly Derived[];
  /** The uniform table's columns: the names the rendered kernel reads, in order. */
  readonly columns: readonly string[];
  /** Equal for structurally equal kernels: the compile cache's key. */
  readonly key: string;
}

export const passes = [
  // 1. Fold constants and apply exact identities together, so each exposes work for the other
  //    (a folded 1 − 0 makes x·1 disappear). One fixpoint over both rule sets.
  { name: 'fold+simplify', run: (xs: Expr[]) => rewrite(xs, rules(fold, simplify)) },
  // 2. CSE is free: nodes are hash-consed, so equal subexpressions are already one node and every
  //    renderer emits each node once.
  // 3. Hoist step-invariant scalar work (1 − β, lr·wd, bias corrections) to the host.
] as const;

export interface PrepareOptions {
  /**
   * Reduction results (`$red<i>` columns, compiler/ir/phases.ts) stay in device memory, combined
   * there (WebGPU): the host never sees them, so what reads them is computed in the kernel
   * rather than hoisted to a host-computed derived uniform (a clip coefficient
   * min(1, c/(√S + 1e−6)) then costs each thread a √ and a ÷ once). Default false: the host
   * combines them and hoists as usual (the JS engines).
   */
  readonly reductionsOnDevice?: boolean;
}

export function prepare(k: Kernel, o: PrepareOptions = {}): Prepared {
  let xs = roots(k);
  // A reduction needs the whole tensor before any element can use it: no single pass computes it.
  if (topo(xs).some((e) => e.op === 'reduce'))
    throw new KernelError(
      `kernel ${k.name}: it holds a reduction (tensorSum, globalSum, …); split it with splitPhases (compiler/ir/phases.ts) and prepare each phase`,
    );
  for (const p of passes) xs = p.run(xs);
  const inputs = uniformsOf(k);
  const h = o.reductionsOnDevice ? hoist(xs, (u) => u.startsWith(REDUCTION_PREFIX)) : hoist(xs);
  const nOut = k.outputs.length;
  const out = kernel({
    name: k.name,
    groupSize: k.groupSize,
    outputs: k.outputs.map((o, i) => ({ ...o, value: h.roots[i]! })),
    counters: k.counters.map((c, i) => ({ ...c, value: h.roots[nOut + i]! })),
    windowed: k.windowed,
  });
  const columns = uniformsOf(out);
  const key = [
    k.name,
    k.groupSize,
    k.outputs.map((o) => `${o.field}/${o.storage}/${o.axis}`).join(','),
    k.counters.map((c) => c.name).join(','),
    k.windowed.join(','),
    inputs.join(','),
    columns.join(','),
    structuralKey([...h.roots, ...h.derived.map((d) => d.value)]),
  ].join('#');
  return { kernel: out, inputs, derived: h.derived, columns, key };
}

/** One row of uniforms by name (a parameter group's learning rate, step, …). */
export type Uniforms = Readonly<Record<string, number>>;

/** The rows × columns f32 uniform table of a prepared kernel; derived uniforms are computed here. */
export function uniformTable(p: Prepared, rows: readonly Uniforms[]): Float32Array {
  const S = p.columns.length;
  const U = new Float32Array(Math.max(1, rows.length) * S);
  // A row object that repeats (tensors sharing their hyperparameters) is evaluated once.
  const first = new Map<Uniforms, number>();
  rows.forEach((row, r) => {
    const seen = first.get(row);
    if (seen !== undefined) {
      U.copyWithin(r * S, seen * S, seen * S + S);
      return;
    }
    first.set(row, r);
    const value = (name: string): number => {
      const v = row[name];
      if (typeof v !== 'number') throw new RangeError(`kernel ${p.kernel.name}: uniform ${name} is missing (row ${r})`);
      return Math.fround(v);
    };
    const vals = evalDerived(p.derived, value);
    const derived = new Map(p.derived.map((d, i) => [d.name, vals[i]!]));
    p.columns.forEach((c, j) => {
      U[r * S + j] = derived.has(c) ? derived.get(c)! : value(c);
    });
  });
  return U;
}
