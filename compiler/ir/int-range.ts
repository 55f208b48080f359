// Integer intervals for the range analysis (range.ts): the codecs build powers of two and stored
// bit patterns from integer exponent arithmetic (a bf16's exponent field, minus a shift, clamped,
// plus the bias, shifted into place), and an f32 made from those bits is bounded exactly when the
// integers are. Each rule below is conservative: where the integer could wrap or the operation is
// not one the codecs use, the answer is the whole type.

import type { Expr, Type } from './ir.ts';
import type { Fact } from './fact.ts';

const U32: Fact = { nan: false, lo: 0, hi: 2 ** 32 - 1 };
const I32: Fact = { nan: false, lo: -(2 ** 31), hi: 2 ** 31 - 1 };
const whole = (t: Type): Fact => (t === 'u32' ? U32 : I32);
const storageRange: Record<string, [number, number]> = {
  u8: [0, 255],
  i8: [-128, 127],
  u16: [0, 65535],
  i16: [-32768, 32767],
};
/** [lo, hi] if it fits type t without wrapping, else the whole type. */
const fit = (t: Type, lo: number, hi: number): Fact => {
  const w = whole(t);
  return lo >= w.lo && hi <= w.hi && lo <= hi ? { nan: false, lo, hi } : w;
};
const konst = (e: Expr): number | undefined => (e.op === 'const' ? e.value : undefined);
/** All ones up to the highest bit of a non-negative n. */
const ones = (n: number) => (n <= 0 ? 0 : 2 ** Math.ceil(Math.log2(n + 1)) - 1);

/** The interval of integer node `e` (u32 or i32), given its children's facts through `of`. */
export function intFact(e: Expr, of: (x: Expr) => Fact): Fact {
  const t = e.type;
  if (t !== 'u32' && t !== 'i32') return { nan: true, lo: -Infinity, hi: Infinity };
  switch (e.op) {
    case 'const':
      return { nan: false, lo: e.value, hi: e.value };
    case 'load': {
      const r = storageRange[e.storage];
      return r ? fit(t, r[0], r[1]) : whole(t);
    }
    case 'cast': {
      const x = of(e.x);
      // i32 ↔ u32 keep the bits: the same numbers where the interval is non-negative and fits.
      if (e.x.type === 'u32' || e.x.type === 'i32') return x.lo >= 0 ? fit(t, x.lo, x.hi) : whole(t);
      if (e.x.type === 'f32' && !x.nan) return fit(t, Math.trunc(x.lo), Math.trunc(x.hi));
      return whole(t);
    }
    case 'bitcast': {
      const x = of(e.x);
      if (e.x.type !== 'f32') return x.lo >= 0 ? fit(t, x.lo, x.hi) : whole(t);
      // Non-negative floats order like their bits (−0 aside: its bits are the sign bit alone).
      return !x.nan && x.lo > 0 && x.hi <= 3.4028234663852886e38 ? fit(t, bitsOf(x.lo), bitsOf(x.hi)) : whole(t);
    }
    case 'select': {
      const c = decide(e.cond, of);
      const a = of(e.a),
        b = of(e.b);
      if (c !== undefined) return c ? a : b;
      return fit(t, Math.min(a.lo, b.lo), Math.max(a.hi, b.hi));
    }
    case 'unary':
      if (e.fn === 'neg') {
        const x = of(e.x);
        return fit(t, -x.hi, -x.lo);
      }
      if (e.fn === 'abs') {
        const x = of(e.x);
        return fit(t, x.lo <= 0 && x.hi >= 0 ? 0 : Math.min(Math.abs(x.lo), Math.abs(x.hi)), Math.max(-x.lo, x.hi));
      }
      return whole(t);
    case 'binary': {
      const a = of(e.a),
        b = of(e.b);
      const k = konst(e.b);
      switch (e.fn) {
        case 'add':
          return fit(t, a.lo + b.lo, a.hi + b.hi);
        case 'sub': {
          // x − (x >> k) (a ceil-half of an exponent): monotone in x, which the intervals alone lose.
          const h = e.b.op === 'binary' && e.b.fn === 'shr' && e.b.a === e.a ? konst(e.b.b) : undefined;
          if (h !== undefined && (h & 31) > 0) {
            const d = 2 ** (h & 31);
            return fit(t, a.lo - Math.floor(a.lo / d), a.hi - Math.floor(a.hi / d));
          }
          return fit(t, a.lo - b.hi, a.hi - b.lo);
        }
        case 'min':
          return fit(t, Math.min(a.lo, b.lo), Math.min(a.hi, b.hi));
        case 'max':
          return fit(t, Math.max(a.lo, b.lo), Math.max(a.hi, b.hi));
        case 'and':
          // x & (2^k − 1) with x already in [0, 2^k − 1] is x (a bf16 scale's 16 bits, masked
          // again as they are widened): keeping its lower bound keeps 1/scale finite.
          if (k !== undefined && k === ones(k) && a.lo >= 0 && a.hi <= k) return a;
          // A non-negative operand bounds the result: x & m is in [0, m].
          if (a.lo >= 0 && b.lo >= 0) return fit(t, 0, Math.min(a.hi, b.hi));
          if (b.lo >= 0) return fit(t, 0, b.hi);
          if (a.lo >= 0) return fit(t, 0, a.hi);
          return whole(t);
        case 'or':
        case 'xor':
          return a.lo >= 0 && b.lo >= 0
            ? fit(t, e.fn === 'or' ? Math.max(a.lo, b.lo) : 0, ones(Math.max(a.hi, b.hi)))
            : whole(t);
        case 'shl':
          return k !== undefined ? fit(t, a.lo * 2 ** (k & 31), a.hi * 2 ** (k & 31)) : whole(t);
        case 'shr':
          // Arithmetic for i32, logical for u32 (u32 values are non-negative): floor(x / 2^k) both.
          return k !== undefined
            ? fit(t, Math.floor(a.lo / 2 ** (k & 31)), Math.floor(a.hi / 2 ** (k & 31)))
            : whole(t);
        default:
          return whole(t);
      }
    }
    default:
      return whole(t);
  }
}

const f32 = new Float32Array(1),
  u32 = new Uint32Array(f32.buffer);
const asFloat = (bits: number) => ((u32[0] = bits), f32[0]!);
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** A condition the facts decide (true or false on every input), or undefined. */
export function decide(c: Expr, of: (x: Expr) => Fact): boolean | undefined {
  if (c.op === 'const') return c.value !== 0;
  if (c.op === 'unary') {
    if (c.fn === 'not') {
      const d = decide(c.x, of);
      return d === undefined ? undefined : !d;
    }
    const x = of(c.x);
    if (c.fn === 'isNan' && !x.nan) return false;
    if (c.fn === 'isFinite' && !x.nan && Number.isFinite(x.lo) && Number.isFinite(x.hi)) return true;
    return undefined;
  }
  if (c.op !== 'binary' || (c.a.type !== 'u32' && c.a.type !== 'i32')) return undefined;
  const a = of(c.a),
    b = of(c.b);
  switch (c.fn) {
    case 'lt':
      return a.hi < b.lo ? true : a.lo >= b.hi ? false : undefined;
    case 'le':
      return a.hi <= b.lo ? true : a.lo > b.hi ? false : undefined;
    default:
      return undefined;
  }
}

/**
 * bitcast<f32> of an integer in `x`. Non-negative bit patterns up to the largest finite f32's
 * order like the floats they encode, so the interval maps through; bits reaching the exponent
 * field 0xff (Inf, NaN) or the sign bit say nothing.
 */
export function floatOfBits(x: Fact): Fact | undefined {
  if (x.nan || x.lo < 0 || x.hi > 0x7f7fffff) return undefined;
  return { nan: false, lo: asFloat(x.lo), hi: asFloat(x.hi) };
}
