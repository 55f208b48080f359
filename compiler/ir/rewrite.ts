// Rules are data: a `Rule` looks at one node and returns its replacement or undefined. Rule sets
// are indexed by op so a node only meets the rules that can match it. ts-pattern matches one
// value; walking the DAG is ours: bottom-up, memoised by identity (nodes are hash-consed), and
// each node rewritten to a fixpoint before its parents see it.

import type { Expr, Op } from './ir.ts';
import { children, withChildren } from './ir.ts';

export type Rule = (e: Expr) => Expr | undefined;
export type RuleSet = Partial<Record<Op, readonly Rule[]>>;

/** Merge rule sets (earlier sets' rules are tried first). */
export function rules(...sets: RuleSet[]): RuleSet {
  const out: Partial<Record<Op, Rule[]>> = {};
  for (const s of sets) for (const [op, rs] of Object.entries(s) as [Op, Rule[]][]) (out[op] ??= []).push(...rs);
  return out;
}

export class RewriteLimitError extends Error {}

/**
 * Each rule firing rewrites its replacement in a nested call, so a rule set that never settles
 * (a + b → b + a) nests once per firing and would overflow the JS stack (after ~4500 firings)
 * long before `limit`; past this depth it is reported as the RewriteLimitError it is.
 */
export const MAX_NESTING = 1000;

/**
 * Rewrite every node reachable from `roots` until no rule applies. A replacement is itself
 * rewritten (its new children included), so rules may build unreduced nodes. `limit` bounds the
 * number of rule firings: a rule set that loops throws instead of hanging.
 */
export function rewrite(roots: readonly Expr[], set: RuleSet, limit = 100_000): Expr[] {
  const memo = new Map<Expr, Expr>();
  let fired = 0,
    depth = 0;
  const visit = (root: Expr): Expr => {
    // Iterative post-order so deep expressions cannot overflow the stack.
    const stack: Expr[] = [root];
    while (stack.length) {
      const e = stack[stack.length - 1]!;
      if (memo.has(e)) {
        stack.pop();
        continue;
      }
      const kids = children(e);
      const pending = kids.filter((k) => !memo.has(k));
      if (pending.length) {
        stack.push(...pending);
        continue;
      }
      stack.pop();
      let cur = withChildren(
        e,
        kids.map((k) => memo.get(k)!),
      );
      for (;;) {
        let next: Expr | undefined;
        for (const rule of set[cur.op] ?? []) if ((next = rule(cur)) !== undefined && next !== cur) break;
        if (next === undefined || next === cur) break;
        if (++fired > limit)
          throw new RewriteLimitError(`rewrite: more than ${limit} rule firings (a rule set that never settles?)`);
        if (depth >= MAX_NESTING)
          throw new RewriteLimitError(
            `rewrite: replacements nested more than ${MAX_NESTING} deep (a rule set that never settles?)`,
          );
        depth++;
        try {
          cur = memo.get(next) ?? visit(next);
        } finally {
          depth--;
        }
      }
      memo.set(e, cur);
    }
    return memo.get(root)!;
  };
  return roots.map(visit);
}
