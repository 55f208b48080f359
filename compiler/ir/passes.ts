// The passes. Each is a rule set (data) or a small function over the DAG; compiler/ir/pipeline.ts
// lists them in order. Every rule here is exact in f32: the property suite checks that each pass
// leaves every value bit-identical (Object.is) under semantics.ts, NaN and −0 included. That is
// why there is no `x + 0 → x` (−0 + 0 = +0) and no `x * 0 → 0` (NaN · 0 = NaN, −1 · 0 = −0).

import { match, P } from 'ts-pattern';
import type { Expr, Uniform } from './ir.ts';
import * as ir from './ir.ts';
import type { Rule, RuleSet } from './rewrite.ts';
import { apply, evaluate } from './semantics.ts';

// ts-pattern's inference does not terminate on the recursive Expr type, so rules match a shallow
// view of a node: its own fields, and for each child only its op, fn and constant value.
interface Child {
  readonly op: Expr['op'];
  readonly fn?: string;
  readonly value?: number;
}
const child = (e: Expr): Child => ({
  op: e.op,
  fn: 'fn' in e ? e.fn : undefined,
  value: e.op === 'const' ? e.value : undefined,
});
const binView = (e: ir.Binary) => ({ fn: e.fn, type: e.type, a: child(e.a), b: child(e.b) });
const c = (v: number) => P.when((x: Child): x is Child => x.op === 'const' && Object.is(x.value, v));

/** Constant folding: a node whose children are all constants becomes its value. */
const foldRule: Rule = (e) => {
  const kids = ir.children(e);
  if (kids.length === 0 || ir.isGroupReduction(e) || e.op === 'reduce' || !kids.every((k) => k.op === 'const'))
    return undefined;
  return ir.constant(
    e.type,
    apply(
      e,
      kids.map((k) => (k as ir.Const).value),
    ),
  );
};
export const fold: RuleSet = {
  unary: [foldRule],
  binary: [foldRule],
  select: [foldRule],
  cast: [foldRule],
  bitcast: [foldRule],
};

const INTS = P.union('i32', 'u32');
const neg = (x: Expr) => ir.unary('neg', x.type, x);

/** Algebraic identities that hold bit for bit in f32 (and trivially for integers). */
export const simplify: RuleSet = {
  binary: [
    (n) => {
      const e = n as ir.Binary;
      const { a, b } = e;
      return (
        match(binView(e))
          // x·1 = x and x/1 = x exactly (NaN stays NaN); x·(−1) = −x.
          .with({ fn: 'mul', b: c(1) }, { fn: 'div', b: c(1) }, () => a)
          .with({ fn: 'mul', a: c(1) }, () => b)
          .with({ fn: 'mul', type: 'f32', b: c(-1) }, { fn: 'div', type: 'f32', b: c(-1) }, () => neg(a))
          .with({ fn: 'mul', type: 'f32', a: c(-1) }, () => neg(b))
          // x + (−0) = x and x − (+0) = x for every x, −0 included; x + 0 is NOT x.
          .with({ fn: 'add', type: 'f32', b: c(-0) }, { fn: 'sub', type: 'f32', b: c(0) }, () => a)
          .with({ fn: 'add', type: 'f32', a: c(-0) }, () => b)
          // a + (−b) is by definition a − b, and a − (−b) is a + b.
          .with({ fn: 'add', b: { op: 'unary', fn: 'neg' } }, () => ir.binary('sub', e.type, a, (b as ir.Unary).x))
          .with({ fn: 'sub', type: 'f32', b: { op: 'unary', fn: 'neg' } }, () =>
            ir.binary('add', e.type, a, (b as ir.Unary).x),
          )
          // Integer identities (exact: integers wrap, they never round).
          .with({ fn: P.union('add', 'sub', 'or', 'xor', 'shl', 'shr'), type: INTS, b: c(0) }, () => a)
          .with({ fn: P.union('add', 'or', 'xor'), type: INTS, a: c(0) }, () => b)
          .with({ fn: P.union('mul', 'and'), type: INTS, b: c(0) }, () => b)
          .with({ fn: 'and', type: 'u32', b: c(0xffffffff) }, () => a)
          .with({ fn: 'and', type: 'bool', b: c(1) }, { fn: 'or', type: 'bool', b: c(0) }, () => a)
          .with({ fn: 'and', type: 'bool', b: c(0) }, { fn: 'or', type: 'bool', b: c(1) }, () => b)
          // min(x, x) = max(x, x) = x, NaN included.
          .with({ fn: P.union('min', 'max') }, () => (a === b ? a : undefined))
          .otherwise(() => undefined)
      );
    },
  ],
  unary: [
    (n) => {
      const e = n as ir.Unary;
      const inner = () => (e.x as ir.Unary).x;
      return match({ fn: e.fn, x: child(e.x) })
        .with({ fn: 'neg', x: { op: 'unary', fn: 'neg' } }, { fn: 'not', x: { op: 'unary', fn: 'not' } }, inner)
        .with({ fn: 'abs', x: { op: 'unary', fn: P.union('neg', 'abs') } }, () => ir.unary('abs', e.type, inner()))
        .otherwise(() => undefined);
    },
  ],
  select: [
    (n) => {
      const { cond, a, b, type } = n as ir.Select;
      return match({ cond: child(cond) })
        .with({ cond: { op: 'const' } }, () => ((cond as ir.Const).value ? a : b))
        .with({ cond: { op: 'unary', fn: 'not' } }, () => ir.select(type, (cond as ir.Unary).x, b, a))
        .otherwise(() => (a === b ? a : undefined));
    },
  ],
};

/** A derived uniform: computed once per call (per row) on the host, with the same semantics. */
export interface Derived {
  readonly name: string;
  readonly value: Expr;
}

/**
 * Hoist step-invariant work out of the element loop: every maximal subexpression that reads no
 * field (only uniforms and constants, at least one uniform) becomes a derived uniform `$k`,
 * evaluated on the host once per call. Bias corrections, 1 − β and lr·wd end up here. A uniform
 * `onDevice` names has no value on the host (a reduction's result the device combined): nothing
 * that reads it is hoisted, so the kernel computes it.
 */
export function hoist(
  roots: readonly Expr[],
  onDevice: (uniform: string) => boolean = () => false,
): { roots: Expr[]; derived: Derived[] } {
  const invariant = new Map<Expr, boolean>();
  for (const e of ir.topo(roots)) {
    const kids = ir.children(e);
    invariant.set(
      e,
      (e.op === 'uniform' && !onDevice(e.name)) ||
        e.op === 'const' ||
        (e.op !== 'load' &&
          !ir.isGroupReduction(e) &&
          e.op !== 'reduce' &&
          kids.length > 0 &&
          kids.every((k) => invariant.get(k))),
    );
  }
  const order = ir.topo(roots);
  const hasUniform = new Map<Expr, boolean>();
  for (const e of order) hasUniform.set(e, e.op === 'uniform' || ir.children(e).some((k) => hasUniform.get(k)));
  // Only f32 subexpressions: a derived uniform is an f32 (a hoisted bool or integer would change
  // the node's type, and an integer ≥ 2^24 would be rounded by the f32 uniform table).
  const hoisted = (e: Expr) =>
    invariant.get(e)! && e.type === 'f32' && e.op !== 'uniform' && e.op !== 'const' && hasUniform.get(e)!;
  // The maximal hoisted subexpressions: a walk from the roots that stops at each one, numbering
  // them in the order a recursive walk would meet them.
  const derived: Derived[] = [];
  const byNode = new Map<Expr, Uniform>();
  for (const e of ir.topo(roots, (x) => !hoisted(x)))
    if (hoisted(e) && !byNode.has(e)) {
      const u = ir.uniform(`$${byNode.size}`);
      byNode.set(e, u);
      derived.push({ name: u.name, value: e });
    }
  const out = new Map<Expr, Expr>();
  for (const e of ir.topo(roots, (x) => !hoisted(x)))
    out.set(
      e,
      byNode.get(e) ??
        ir.withChildren(
          e,
          ir.children(e).map((k) => out.get(k)!),
        ),
    );
  return { roots: roots.map((r) => out.get(r)!), derived };
}

/** Evaluate derived uniforms from the user's uniforms, in order (later ones never use earlier). */
export function evalDerived(derived: readonly Derived[], values: (name: string) => number): number[] {
  return derived.map((d) => evaluate(d.value, { load: () => NaN, uniform: values }));
}
