// A small value-range analysis for the WGSL and WebAssembly renderers: for each f32 node, whether
// it can be NaN and an interval that holds every non-NaN value it can take (±Infinity when
// unbounded). WGSL lets a compiler assume no NaN, so that renderer tests NaN by bits and spells
// min/max/compare/cast out in NaN-safe helpers (compiler/render/wgsl/ops.ts), several integer ops each;
// the WebAssembly renderer needs a select per NaN-ignoring min/max. Where this analysis proves an
// operand is never NaN (a clamp's result, a code in [−127, 127], a table's entries, a power of two
// built from exponent bits), the plain form is the same function and is emitted instead
// (render/wgsl/render.ts, render/wasm/facts.ts).
//
// Guards are path-sensitive in the one shape the codecs use: in select(isNan(x), c, y) the value
// y is analysed knowing x is not NaN, and in select(isFinite(x), y, c) knowing x is finite.

import type { Expr } from './ir.ts';
import { topo } from './ir.ts';
import { decide, floatOfBits, intFact } from './int-range.ts';
import type { Fact } from './fact.ts';

export type { Fact } from './fact.ts';

const ANY: Fact = { nan: true, lo: -Infinity, hi: Infinity };
const MAXF = 3.4028234663852886e38;
// Interval ends are computed in f64; widen them so f32 rounding (monotone) stays inside.
const widen = (x: number, up: boolean) =>
  !Number.isFinite(x)
    ? x
    : Math.abs(x) > MAXF
      ? x > 0
        ? Infinity
        : -Infinity
      : x + (up ? 1 : -1) * Math.abs(x) * 2 ** -20;
const span = (nan: boolean, xs: number[]): Fact => {
  const ok = xs.filter((x) => !Number.isNaN(x));
  return { nan, lo: widen(Math.min(...ok), false), hi: widen(Math.max(...ok), true) };
};
const unbounded = (f: Fact) => !Number.isFinite(f.lo) || !Number.isFinite(f.hi);
const hasZero = (f: Fact) => f.lo <= 0 && f.hi >= 0;

export class Ranges {
  private readonly memo = new Map<string, Map<Expr, Fact>>();
  constructor(private readonly leaf: (e: Expr) => Fact | undefined = () => undefined) {}

  /** Facts about f32 node `e`, an interval for an integer node (int-range.ts), ANY for a bool. */
  of(e: Expr, assume: ReadonlyMap<Expr, Fact> = new Map()): Fact {
    const key = [...assume]
      .map(([x, f]) => `${x.id}:${f.nan}:${f.lo}:${f.hi}`)
      .sort()
      .join(',');
    let m = this.memo.get(key);
    if (!m) this.memo.set(key, (m = new Map()));
    const hit = m.get(e);
    if (hit) return hit;
    // Children first, without recursion: each compute then finds its children's facts in this
    // context already known, so only a new assumption (a NaN-guarding select) nests a call.
    for (const n of topo([e], (x) => !m.has(x))) if (!m.has(n)) m.set(n, assume.get(n) ?? this.compute(n, assume));
    return m.get(e)!;
  }

  /** Never NaN. */
  safe(e: Expr): boolean {
    return e.type === 'f32' && !this.of(e).nan;
  }

  private compute(e: Expr, as: ReadonlyMap<Expr, Fact>): Fact {
    const own = this.leaf(e);
    if (own) return own;
    const R = (x: Expr, extra?: [Expr, Fact]) => this.of(x, extra ? new Map([...as, extra]) : as);
    if (e.type === 'u32' || e.type === 'i32') return intFact(e, (x) => R(x));
    if (e.type !== 'f32') return ANY;
    switch (e.op) {
      case 'const':
        return Number.isNaN(e.value) ? ANY : { nan: false, lo: e.value, hi: e.value };
      case 'uniform':
      case 'load':
        return ANY;
      case 'groupMax':
        return R(e.x);
      case 'groupSum': // a sum of finite values may still overflow to ±Inf, and +Inf + −Inf is NaN
      case 'reduce':
        return ANY;
      case 'cast': {
        if (e.x.type !== 'i32' && e.x.type !== 'u32') return { nan: false, lo: 0, hi: 1 };
        const x = R(e.x);
        return { nan: false, lo: widen(x.lo, false), hi: widen(x.hi, true) };
      }
      case 'bitcast': {
        const x = e.x;
        const bounded = x.type === 'f32' ? undefined : floatOfBits(R(x));
        if (bounded) return bounded;
        // bitcast<f32>(k << 23): a zero mantissa, so ±2^n, ±0 or ±Inf, never NaN.
        if (x.op === 'binary' && x.fn === 'shl' && x.b.op === 'const' && (x.b.value & 31) === 23)
          return { nan: false, lo: -Infinity, hi: Infinity };
        return ANY;
      }
      case 'select': {
        const c = e.cond;
        const d = decide(c, (x) => R(x));
        if (d !== undefined) return d ? R(e.a) : R(e.b);
        let a = R(e.a),
          b = R(e.b);
        // select(x < y, y, x) is max(x, y) and select(x < y, x, y) is min(x, y) where y is no NaN
        // (a NaN x fails the compare and is kept): the clamps of the codecs.
        if (c.op === 'binary' && (c.fn === 'lt' || c.fn === 'le') && c.a.type === 'f32') {
          const [x, y] = [R(c.a), R(c.b)];
          if (e.a === c.b && e.b === c.a && !y.nan)
            return { nan: x.nan, lo: Math.max(x.lo, y.lo), hi: Math.max(x.hi, y.hi) };
          if (e.a === c.a && e.b === c.b && !x.nan)
            return { nan: y.nan, lo: Math.min(x.lo, y.lo), hi: Math.min(x.hi, y.hi) };
        }
        if (c.op === 'unary' && c.fn === 'isNan' && c.x.type === 'f32') b = R(e.b, [c.x, { ...R(c.x), nan: false }]);
        if (c.op === 'unary' && c.fn === 'isFinite' && c.x.type === 'f32') {
          const x = R(c.x);
          a = R(e.a, [c.x, { nan: false, lo: Math.max(x.lo, -MAXF), hi: Math.min(x.hi, MAXF) }]);
        }
        return { nan: a.nan || b.nan, lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) };
      }
      case 'unary': {
        const x = R(e.x);
        switch (e.fn) {
          case 'neg':
            return { nan: x.nan, lo: -x.hi, hi: -x.lo };
          case 'abs':
            return {
              nan: x.nan,
              lo: hasZero(x) ? 0 : Math.min(Math.abs(x.lo), Math.abs(x.hi)),
              hi: Math.max(Math.abs(x.lo), Math.abs(x.hi)),
            };
          case 'floor':
          case 'ceil':
          case 'trunc':
          case 'roundEven':
          case 'roundAway':
            return { nan: x.nan, lo: Math.floor(x.lo), hi: Math.ceil(x.hi) };
          case 'sign':
            return { nan: x.nan, lo: -1, hi: 1 };
          case 'sqrt':
            return { nan: x.nan || x.lo < 0, lo: 0, hi: Math.sqrt(Math.max(0, x.hi)) * (1 + 2 ** -20) };
          default:
            return ANY;
        }
      }
      case 'binary': {
        const a = R(e.a),
          b = R(e.b),
          nan = a.nan || b.nan;
        switch (e.fn) {
          case 'add':
            return span(nan || (unbounded(a) && unbounded(b)), [a.lo + b.lo, a.hi + b.hi]);
          case 'sub':
            return span(nan || (unbounded(a) && unbounded(b)), [a.lo - b.hi, a.hi - b.lo]);
          case 'mul': {
            // x·x is a square: never below 0 (interval products would let the two x differ).
            if (e.a === e.b && !unbounded(a)) {
              const m = Math.max(a.lo * a.lo, a.hi * a.hi);
              return span(a.nan, [hasZero(a) ? 0 : Math.min(a.lo * a.lo, a.hi * a.hi), m]);
            }
            const zInf = (hasZero(a) && unbounded(b)) || (hasZero(b) && unbounded(a));
            return span(
              nan || zInf,
              [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi].map((x) => (Number.isNaN(x) ? 0 : x)),
            );
          }
          case 'div': {
            if (hasZero(b)) return { nan: true, lo: -Infinity, hi: Infinity };
            return span(nan || (unbounded(a) && unbounded(b)), [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi]);
          }
          // IEEE minNum/maxNum: NaN only when both are; a NaN operand yields the other one.
          // Cases: neither NaN, a NaN (gives b), b NaN (gives a).
          case 'min':
            return {
              nan: a.nan && b.nan,
              lo: Math.min(a.lo, b.lo),
              hi: Math.max(Math.min(a.hi, b.hi), a.nan ? b.hi : -Infinity, b.nan ? a.hi : -Infinity),
            };
          case 'max':
            return {
              nan: a.nan && b.nan,
              lo: Math.min(Math.max(a.lo, b.lo), a.nan ? b.lo : Infinity, b.nan ? a.lo : Infinity),
              hi: Math.max(a.hi, b.hi),
            };
          default:
            return ANY;
        }
      }
    }
  }
}
