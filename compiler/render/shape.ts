// What every loop-over-groups renderer (js.ts, wasm.ts) needs to know about a prepared kernel
// before writing a line: field and uniform-column numbering, which values vary per element, and
// the groupMax levels (one pass over the group each).

import type { Expr } from '../ir/ir.ts';
import type { FieldRef, Kernel } from '../ir/kernel.ts';
import { elementwise, fields, groupLevels } from '../ir/kernel.ts';
import type { Prepared } from '../ir/pipeline.ts';

export interface Shape {
  readonly k: Kernel;
  readonly G: number;
  readonly fs: readonly FieldRef[];
  readonly fieldIx: ReadonlyMap<string, number>;
  readonly column: ReadonlyMap<string, number>;
  readonly isElem: (e: Expr) => boolean;
  readonly levels: readonly Expr[][];
  /** Every group reduction (groupMax and groupSum), level by level. */
  readonly groupMaxes: readonly Expr[];
}

export function shape(p: Prepared): Shape {
  const k = p.kernel,
    fs = fields(k),
    memo = new Map<Expr, boolean>(),
    levels = groupLevels(k);
  return {
    k,
    G: k.groupSize,
    fs,
    fieldIx: new Map(fs.map((f, i) => [f.field, i])),
    column: new Map(p.columns.map((c, i) => [c, i])),
    isElem: (e) => elementwise(e, memo),
    levels,
    groupMaxes: levels.flat(),
  };
}
