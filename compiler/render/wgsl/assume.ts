// The kernel's fast path: its body rendered a second time under facts that hold for ordinary
// data and are checked at run time. Under them the range analysis (compiler/ir/range.ts) proves
// the rest of the body never NaN and bounded, so the NaN-safe compares, min/max, casts and the
// gradient guard (and with it the non-finite count) become plain operations. Every thread runs
// the fast body; a subgroup where some check failed runs the general body after it and keeps that
// result, so both compute the same function and the fast path changes speed only.
//
// What is assumed, each checked on the value's bits (a float compare may be folded as if NaN did
// not exist):
// - every uniform: u in [0, 2^16]; where that keeps a divisor from 0: u in [2^-40, 2^16];
// - then, repeatedly, the first node in topological order that could still be NaN although its
//   operands cannot (a value decoded from stored bits, a quotient whose divisor could be 0, a
//   float built from computed bits): |x| ≤ 2^40.
// A NaN or Inf input, a zero or negative divisor uniform, or a value beyond 2^40 where one was
// assumed fails a check, and its subgroup takes the general body.

import type { Expr } from '../../ir/ir.ts';
import { children, topo } from '../../ir/ir.ts';
import type { Fact } from '../../ir/range.ts';
import { Ranges } from '../../ir/range.ts';

/**
 * A node assumed within `fact`. The test on its value `x` is NaN-proof, on bits: a uniform's is a
 * bool (`test`), checked once a thread; an element value's is `magnitude`, bits whose maximum
 * over the thread must stay ≤ MODERATE_BITS (two integer ops an element, one compare a thread).
 */
export interface Assumed {
  readonly fact: Fact;
  readonly test?: (x: string) => string;
  readonly magnitude?: (x: string) => string;
}

const BOUND = 2 ** 40;
const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const hex = (n: number) => `0x${n.toString(16)}u`;
export const MODERATE_BITS = hex(bitsOf(BOUND));
const moderate: Assumed = {
  fact: { nan: false, lo: -BOUND, hi: BOUND },
  magnitude: (x) => `(bitcast<u32>(${x}) & 0x7fffffffu)`,
};
// Hyperparameters are non-negative in every built-in (a negative one takes the general body);
// one in a divisor is positive. At most 2^16 (not 2^40): then Adam's √v + ε̂ stays within
// [2^-60, 2^60] and its dividend within 2^60, so the update's exact ÷ checks only the dividend
// (exact.ts div_cr_a), about 8 integer ops an element fewer. Unsigned wrap-around makes
// lo ≤ bits ≤ hi one compare, and a set sign bit fails it.
const U_BOUND = 2 ** 16;
const nonNegative: Assumed = {
  fact: { nan: false, lo: 0, hi: U_BOUND },
  test: (x) => `(bitcast<u32>(${x}) <= ${hex(bitsOf(U_BOUND))})`,
};
const positive: Assumed = {
  fact: { nan: false, lo: 2 ** -40, hi: U_BOUND },
  test: (x) => `(bitcast<u32>(${x}) - ${hex(bitsOf(2 ** -40))} <= ${hex(bitsOf(U_BOUND) - bitsOf(2 ** -40))})`,
};
// Only NaN needs a fact: an unbounded value that cannot be NaN (m·(1/scale) where the scale may
// be 2^-126, a decoded v squared) is harmless, as range.ts follows ±Inf into what it can make NaN
// (Inf − Inf, 0·Inf, a quotient of two unbounded values), and that node is then the one assumed.
const bad = (f: Fact) => f.nan;
// Whether a divisor's non-NaN values may include 0 (its NaN, if any, is some other node's to assume).
const zeroIn = (f: Fact) => f.lo <= 0 && f.hi >= 0;
/** Enough for the kernels here (a handful each); a bound so a pathological one cannot loop long. */
const MAX_ASSUMED = 64;

/**
 * What the fast path assumes, for the nodes `order` (topological) computes; `base` gives facts
 * known without assuming anything (tables). Empty when the general body is already guard-free.
 */
export function assumptions(order: readonly Expr[], base: (e: Expr) => Fact | undefined): Map<Expr, Assumed> {
  const out = new Map<Expr, Assumed>();
  for (const e of order) if (e.op === 'uniform') out.set(e, nonNegative);
  // A uniform is assumed positive only where that keeps a divisor from 0 (Adam's ε̂ in √v + ε̂):
  // SGD's weight decay reaches its momentum's scale too, but a 0 there is an ordinary setting.
  const facts = () => new Ranges((e) => out.get(e)?.fact ?? base(e));
  for (const d of order) {
    if (d.op !== 'binary' || d.fn !== 'div' || d.type !== 'f32' || !zeroIn(facts().of(d.b))) continue;
    const us = topo([d.b]).filter((x) => x.op === 'uniform' && out.get(x) === nonNegative);
    for (const x of us) out.set(x, positive);
    if (zeroIn(facts().of(d.b))) for (const x of us) out.set(x, nonNegative);
    else for (const x of us) if ((out.set(x, nonNegative), zeroIn(facts().of(d.b)))) out.set(x, positive);
  }
  for (let n = 0; n < MAX_ASSUMED; n++) {
    const r = new Ranges((e) => out.get(e)?.fact ?? base(e));
    const source = order.find(
      (e) =>
        e.type === 'f32' &&
        e.op !== 'const' &&
        !out.has(e) &&
        bad(r.of(e)) &&
        children(e).every((c) => c.type !== 'f32' || !bad(r.of(c))),
    );
    if (!source) break;
    out.set(source, moderate);
  }
  const general = new Ranges(base);
  return order.some((e) => e.type === 'f32' && general.of(e).nan) ? out : new Map();
}
