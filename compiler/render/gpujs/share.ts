// Which element values to compute once per launch instead of once per output pass. gpu.js gives
// one array per kernel, so a kernel with several outputs becomes several passes, and without this
// each pass recomputes what it shares with the others (FlashAdamW's p and p_ecc both need the whole
// update θ'). A shared value gets its own pass and array (an f32 holds an f32 or a bool exactly;
// integers are not shared, see below), which the output passes read instead. Exactness is
// unchanged: the arrays hold the very values the passes would have recomputed.

import type { Expr } from '../../ir/ir.ts';
import { children, isGroupReduction } from '../../ir/ir.ts';

/** Rough cost of computing a node in gpu.js (integer and bit ops expand to many f32 operations). */
function weight(e: Expr): number {
  switch (e.op) {
    case 'const':
    case 'load':
    case 'uniform':
    case 'groupMax':
    case 'groupSum':
      return 0;
    case 'bitcast':
      return 40;
    case 'cast':
      return e.type === 'f32' && e.x.type === 'f32' ? 1 : 10;
    default:
      return e.type === 'i32' || e.type === 'u32' ? 6 : 1;
  }
}

/** Nodes an output pass computes itself: its DAG, not descending into group reductions (read as arrays). */
function passNodes(root: Expr): Set<Expr> {
  const seen = new Set<Expr>();
  const stack = [root];
  while (stack.length) {
    const e = stack.pop()!;
    if (seen.has(e)) continue;
    seen.add(e);
    if (!isGroupReduction(e)) stack.push(...children(e));
  }
  return seen;
}

/**
 * The shared values for element output passes with these roots, children before parents. A value
 * is shared when two or more passes compute it and it costs at least `minWeight`; a value inside an
 * already shared one that no further pass needs is left inside it.
 */
export function sharedValues(roots: readonly Expr[], isElem: (e: Expr) => boolean, minWeight = 48): Expr[] {
  const sets = roots.map(passNodes);
  const usage = new Map<Expr, number>();
  for (const s of sets) for (const e of s) usage.set(e, (usage.get(e) ?? 0) + 1);
  const cost = new Map<Expr, number>();
  const costOf = (e: Expr): number => {
    let c = cost.get(e);
    if (c === undefined) {
      c = 0;
      for (const n of passNodes(e)) c += weight(n);
      cost.set(e, c);
    }
    return c;
  };
  // Only f32 and bool values: one array, one pass. (An integer would need two passes, each
  // computing the whole value for one half; sharing its f32 inputs instead is cheaper.)
  const candidates = [...usage.keys()]
    .filter(
      (e) =>
        (e.type === 'f32' || e.type === 'bool') &&
        (usage.get(e) ?? 0) >= 2 &&
        isElem(e) &&
        weight(e) > 0 &&
        costOf(e) >= minWeight,
    )
    .sort((a, b) => costOf(b) - costOf(a));
  const picked: Expr[] = [];
  const inside = new Map<Expr, Set<Expr>>();
  for (const e of candidates) {
    const covered = picked.some((p) => inside.get(p)!.has(e) && usage.get(p)! >= usage.get(e)!);
    if (covered) continue;
    picked.push(e);
    inside.set(e, passNodes(e));
  }
  // Children before parents (a shared value may read another one): interning numbers a node after
  // its children, so ids are a topological order.
  return picked.sort((a, b) => a.id - b.id);
}
