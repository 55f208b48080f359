// Cheap facts about IR values that let the WebAssembly renderer drop work without changing a
// single result bit: "this f32 is never NaN" and its interval, from the range analysis both GPU
// and CPU renderers share (so minNum/maxNum need no NaN select, and a bitcast
// needs no NaN canonicalization) and "these are the only bits this integer can have" (so masking
// with a superset is the identity, and an unsigned value below 2^31 converts as a signed one).
// Both are conservative: when in doubt the answer is "maybe NaN" / "any bit".

import type { Expr } from '../../ir/ir.ts';
import { Ranges } from '../../ir/range.ts';

const ALL = 0xffffffff;
/** Every bit at or below the highest bit of `m`. */
const smear = (m: number) => {
  let x = m >>> 0;
  x |= x >>> 1;
  x |= x >>> 2;
  x |= x >>> 4;
  x |= x >>> 8;
  x |= x >>> 16;
  return x >>> 0;
};

export class Facts {
  /** The interval analysis the WGSL renderer uses too (ranges and NaN through arithmetic). */
  private readonly ranges = new Ranges();
  private readonly bitMemo = new Map<Expr, number>();

  /** Compute and keep the facts of `e`, whose children's facts are known (keeps later calls shallow). */
  warm(e: Expr): void {
    if (e.type === 'f32') this.ranges.of(e);
    else if (e.type !== 'bool') this.bits(e);
  }

  /** True only if `e` (an f32) can never be NaN. */
  notNaN(e: Expr): boolean {
    return e.type === 'f32' && !this.ranges.of(e).nan;
  }

  /** An f32 that is never NaN and always in (−1, 2^31): converting it to u32 or i32 is the same. */
  smallNonNegative(e: Expr): boolean {
    const f = this.ranges.of(e);
    return !f.nan && f.lo > -1 && f.hi < 2 ** 31;
  }

  /** A mask of the bits an i32/u32 value may have set (all of them when unknown). */
  bits(e: Expr): number {
    const hit = this.bitMemo.get(e);
    if (hit !== undefined) return hit;
    let v = ALL;
    const k = (x: Expr) => (x.op === 'const' ? x.value & 31 : null);
    switch (e.op) {
      case 'const':
        v = e.type === 'f32' ? ALL : e.value >>> 0;
        break;
      case 'load':
        v = e.storage === 'u16' ? 0xffff : e.storage === 'u8' ? 0xff : ALL;
        break;
      case 'cast':
        v = e.x.type === 'bool' ? 1 : e.x.type === 'f32' ? ALL : this.bits(e.x);
        break;
      case 'select':
        v = (this.bits(e.a) | this.bits(e.b)) >>> 0;
        break;
      case 'binary': {
        const a = this.bits(e.a),
          b = this.bits(e.b);
        if (e.fn === 'and') v = (a & b) >>> 0;
        else if (e.fn === 'or' || e.fn === 'xor') v = (a | b) >>> 0;
        else if (e.fn === 'shl' && k(e.b) !== null) v = (a << k(e.b)!) >>> 0;
        // A logical shift, or an arithmetic one of a value whose sign bit is known clear.
        else if (e.fn === 'shr' && k(e.b) !== null && (e.type === 'u32' || (a & 0x80000000) === 0)) v = a >>> k(e.b)!;
        else if (e.fn === 'min' && e.type === 'u32') v = Math.min(smear(a), smear(b));
        else if (e.fn === 'max' && e.type === 'u32') v = (smear(a) | smear(b)) >>> 0;
        break;
      }
      default:
        v = ALL;
    }
    this.bitMemo.set(e, v);
    return v;
  }
}
