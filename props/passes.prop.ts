// Every rewrite pass leaves every value bit-identical (Object.is, so −0 ≠ +0 and NaN = NaN)
// under the semantic oracle, on random well-typed expressions and random inputs with specials.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Expr } from '../compiler/ir/ir.ts';
import { evalDerived, fold, hoist, simplify } from '../compiler/ir/passes.ts';
import { rewrite, rules } from '../compiler/ir/rewrite.ts';
import type { Env } from '../compiler/ir/semantics.ts';
import { evaluate } from '../compiler/ir/semantics.ts';
import { allOps, coveredOps, envArbitrary, exprArbitraries } from './expr.ts';

const NUM_RUNS = 10_000;
type Values = Record<string, number>;

/** Evaluate on one element: a group of one, so groupMax(x) is x (NaN ignored, so NaN stays NaN). */
function value(e: Expr, v: Values, uniforms: (n: string) => number = (n) => v[n]!): number {
  const env: Env = {
    load: (f) => v[f]!,
    uniform: uniforms,
    groupMax: (g) => evaluate((g as Expr & { x: Expr }).x, env),
  };
  return evaluate(e, env);
}

const arb = exprArbitraries();
const anyExpr = fc.oneof(arb.f32, arb.i32, arb.u32, arb.bool);

describe('passes preserve values bit for bit', () => {
  it('the arbitraries cover every op of the IR', () => {
    expect(allOps.filter((o) => !coveredOps.has(o))).toEqual([]);
  });

  for (const [name, set] of [
    ['fold', fold],
    ['simplify', simplify],
    ['fold+simplify', rules(fold, simplify)],
  ] as const) {
    it(name, () => {
      fc.assert(
        fc.property(anyExpr, envArbitrary(), (e, v) => {
          const [r] = rewrite([e], set);
          expect(Object.is(value(r!, v), value(e, v))).toBe(true);
        }),
        { numRuns: NUM_RUNS },
      );
    });
  }

  it('hoist: derived uniforms computed on the host give the same values', () => {
    fc.assert(
      fc.property(anyExpr, envArbitrary(), (e, v) => {
        const h = hoist([e]);
        const derived = evalDerived(h.derived, (n) => (v as Values)[n]!);
        const all: Values = { ...v, ...Object.fromEntries(h.derived.map((d, i) => [d.name, derived[i]!])) };
        expect(Object.is(value(h.roots[0]!, all), value(e, v))).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
