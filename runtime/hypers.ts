// Parameter groups and their hyperparameters: which group each tensor is in, the optimizer
// definition (with its hyperparameters) in force for each group, and the uniform rows of a launch
// (one per tensor, computed on the host in float64 and checked finite before anything runs).

import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { HyperError, shown } from '../optim/define.ts';
import type { Layout, TensorSlot } from './arena.ts';

export interface GroupSpec<H extends Hyper> {
  readonly params: readonly string[];
  readonly hyper: Partial<H>;
}

export class Hypers<H extends Hyper> {
  /** The definition of each group: 0 is the default group, i + 1 is groups[i]. */
  private defs: OptimizerDef<H>[];
  /** Group of each tensor row. */
  readonly groupOfRow: Int32Array;

  constructor(
    readonly base: OptimizerDef<H>,
    readonly layout: Layout,
    groups: readonly GroupSpec<H>[],
  ) {
    const W = 'createOptimizer';
    if (!Array.isArray(groups)) throw new TypeError(`${W}: groups must be an array, got ${shown(groups)}`);
    const owner = new Map<string, number>();
    this.defs = [base];
    groups.forEach((g, i) => {
      if (!g || !Array.isArray(g.params) || typeof g.hyper !== 'object' || g.hyper === null)
        throw new TypeError(`${W}: groups[${i}] must be { params: string[], hyper: {…} }, got ${shown(g)}`);
      for (const n of g.params) {
        if (typeof n !== 'string' || !layout.byName.has(n))
          throw new RangeError(`${W}: groups[${i}] names unknown tensor ${shown(n)}`);
        const first = owner.get(n);
        if (first !== undefined)
          throw new RangeError(`${W}: tensor ${shown(n)} is in groups[${first}] and groups[${i}]`);
        owner.set(n, i);
      }
      this.defs.push(sameStructure(base, base.with(g.hyper), `${W}: groups[${i}]`));
    });
    this.groupOfRow = Int32Array.from(layout.tensors, (t) => (owner.get(t.name) ?? -1) + 1);
  }

  get count(): number {
    return this.defs.length;
  }

  defOf(t: TensorSlot): OptimizerDef<H> {
    return this.defs[this.groupOfRow[t.row]!]!;
  }

  /** Group `i`'s definition. */
  def(i: number): OptimizerDef<H> {
    return this.defs[i]!;
  }

  /** The definitions after `h` is applied to every group, or to `group`: validated, nothing changed. */
  plan(h: Partial<H>, group?: number): OptimizerDef<H>[] {
    if (group !== undefined && !(Number.isInteger(group) && group >= 0 && group < this.defs.length))
      throw new RangeError(`setHyper: group must be an integer in [0, ${this.defs.length}), got ${shown(group)}`);
    if (h === null || typeof h !== 'object')
      throw new TypeError(`setHyper: expected an object of hyperparameters, got ${shown(h)}`);
    return this.defs.map((d, i) =>
      group === undefined || group === i ? sameStructure(this.base, d.with(h), 'setHyper') : d,
    );
  }

  /** Replace every group's definition (from `plan`, or a checkpoint's). */
  set(defs: readonly OptimizerDef<H>[]): void {
    if (defs.length !== this.defs.length)
      throw new RangeError(`hypers: ${defs.length} groups given, ${this.defs.length} exist`);
    this.defs = [...defs];
  }

  /** Tensor names of each group, in layout order. */
  members(): string[][] {
    const out: string[][] = this.defs.map(() => []);
    for (const t of this.layout.tensors) out[this.groupOfRow[t.row]!]!.push(t.name);
    return out;
  }

  /**
   * The uniform rows of one launch: one per tensor (its group's hyperparameters, merged with the
   * schedule's, its step count), `active` 0 for tensors that sit this launch out.
   */
  rows(
    active: (t: TensorSlot) => boolean,
    steps: Int32Array,
    sched: Partial<H>,
    initialLr: number,
  ): Record<string, number>[] {
    // A schedule applies to every group: validate and merge it once per group, not per tensor.
    const defs = Object.keys(sched).length
      ? this.defs.map((d) => sameStructure(this.base, d.with(sched), 'schedule'))
      : this.defs;
    // Tensors of one group at one step count share their row (one object): GPT-2's 148 tensors
    // are one computation, and uniformTable fills a shared row once.
    const shared = new Map<string, Record<string, number>>();
    return this.layout.tensors.map((t) => {
      const g = this.groupOfRow[t.row]!,
        d = defs[g]!;
      const on = active(t),
        step = steps[t.row]! + (on ? 1 : 0);
      const key = `${g} ${step} ${on}`;
      const hit = shared.get(key);
      if (hit) return hit;
      const u = { ...d.uniforms(d.hyper, { step, initialLr }), active: on ? 1 : 0 };
      for (const [k, v] of Object.entries(u))
        if (typeof v !== 'number' || !Number.isFinite(v))
          throw new HyperError(
            `${d.name}: uniform ${k} of tensor ${shown(t.name)} is ${shown(v)}; every uniform must be a finite number`,
          );
      shared.set(key, u);
      return u;
    });
  }
}

/** `next` if it compiles to the same kernel as `base`, else an error: a new structure needs a new optimizer. */
export function sameStructure<H extends Hyper>(
  base: OptimizerDef<H>,
  next: OptimizerDef<H>,
  who: string,
): OptimizerDef<H> {
  if (next.structure !== base.structure)
    throw new HyperError(
      `${who}: the hyperparameters change the kernel's structure (${base.structure} → ${next.structure}); create a new optimizer instead`,
    );
  return next;
}
