// How kernel.ts spells f32 arithmetic: exact-mode ÷, √ and products (compiler/render/wgsl/exact.ts),
// and the NaN-safe helpers dropped where the range analysis (range.ts) proves an operand is never
// NaN. Measured on the H200 (docs/bench-gpu.md): each choice here is an ablation row of bench/gpu.ts.

import type { Expr } from '../../ir/ir.ts';
import { children, topo } from '../../ir/ir.ts';
import { wgslBinary, wgslCast, wgslLiteral, wgslUnary } from './ops.ts';
import type { Fact } from '../../ir/range.ts';
import { Ranges } from '../../ir/range.ts';

export interface ArithOptions {
  /** JS-matching rounding (kernel.ts WgslOptions.exact). */
  readonly exact: boolean;
  /** The device's fma is fused: needed by the ÷ and √ rounding fixes. */
  readonly fused: boolean;
  /** The first exact mode (3-candidate ÷ and √, a select on every product): for comparison. */
  readonly legacy?: boolean;
  /** Use the range analysis to drop NaN guards (default true). */
  readonly ranges?: boolean;
  /** Benchmark ablation only, NOT the IR's semantics: every f32 compare, min/max and cast native. */
  readonly unsafeNoNanGuards?: boolean;
  /** Benchmark ablation only: no contraction guard on products (exact mode still fixes ÷ and √). */
  readonly noKeep?: boolean;
  /**
   * Benchmark ablations only, not exact: 'div' / 'sqrt' use the driver's ÷ / √ in exact mode,
   * 'fallback' drops the branches to the 3-candidate helpers (wrong near zero and at range ends).
   */
  readonly ablate?: readonly ('div' | 'sqrt' | 'fallback')[];
  /** Fast pass (kernel.ts): ÷ and √ without their fallback branch, flagging the variable `slow` instead. */
  readonly flag?: boolean;
}

const isPow2Const = (e: Expr) => e.op === 'const' && e.value !== 0 && Number.isFinite(e.value) && Math.log2(Math.abs(e.value)) % 1 === 0;
/** bitcast<f32>(k << 23): a power of two (or 0 / Inf); products with it are exact, so fusing is harmless. */
const isPow2 = (e: Expr) => isPow2Const(e) || (e.op === 'bitcast' && e.type === 'f32' && e.x.op === 'binary' && e.x.fn === 'shl' && e.x.b.op === 'const' && (e.x.b.value & 31) === 23);

export class Arith {
  readonly ranges: Ranges;
  /** Renders the fast pass (`slow` must be a var bool in scope). */
  readonly flags: boolean;
  private readonly guarded = new Set<Expr>();
  private readonly useRanges: boolean;

  constructor(roots: readonly Expr[], readonly o: ArithOptions, leaf: (e: Expr) => Fact | undefined) {
    this.ranges = new Ranges(leaf);
    this.flags = o.flag === true;
    this.useRanges = o.ranges !== false && !o.legacy;
    // Products an add/sub consumes (directly or through neg/select): the compiler may fuse those.
    const users = new Map<Expr, Expr[]>();
    for (const e of topo(roots)) for (const c of children(e)) users.set(c, [...(users.get(c) ?? []), e]);
    const feedsAdd = (e: Expr, depth = 0): boolean => (users.get(e) ?? []).some((u) =>
      (u.op === 'binary' && (u.fn === 'add' || u.fn === 'sub') && u.type === 'f32') ||
      (depth < 4 && ((u.op === 'unary' && u.fn === 'neg') || (u.op === 'select' && u.cond !== e)) && feedsAdd(u, depth + 1)));
    for (const e of users.keys())
      if (e.op === 'binary' && e.fn === 'mul' && e.type === 'f32' && !isPow2(e.a) && !isPow2(e.b) && feedsAdd(e)) this.guarded.add(e);
  }

  private safe(e: Expr): boolean { return this.o.unsafeNoNanGuards === true || (this.useRanges && this.ranges.safe(e)); }
  private within(e: Expr, lo: number, hi: number): boolean {
    if (this.o.unsafeNoNanGuards) return true;
    const f = this.ranges.of(e);
    return this.useRanges && !f.nan && f.lo > lo && f.hi < hi;
  }

  /** Does this division's divisor get a per-thread reciprocal (rcp_of) in exact mode? */
  usesRcp(e: Expr, invariant: (x: Expr) => boolean): boolean {
    return this.o.exact && this.o.fused && !this.o.legacy && !this.o.ablate?.includes('div') && e.op === 'binary' && e.fn === 'div' && e.type === 'f32' && invariant(e.b);
  }

  /**
   * rcp_of(b) for a constant b, computed here: fround(1/b) is RN(1/b) (f64 then f32 rounds once
   * for ÷). Both r and b then go through `opaque`: seeing constants, the H200's compiler turned
   * fma(−(x·r), b, x) into x − x·(r·b) = x − x·1 and dropped the residual (q/32767 came out 1 ulp
   * off in the 32-bit master decode).
   */
  static constRcp(b: number): string | null {
    const eb = (new Uint32Array(Float32Array.of(b).buffer)[0]! >>> 23) & 0xff;
    if (eb < 2 || eb > 252) return null;
    const lo = Math.max(50, eb - 99), hi = Math.min(254, eb + 125);
    return `Rcp(opaque(${wgslLiteral(Math.fround(1 / b), 'f32')}), ${lo}u, ${hi - lo}u, true)`;
  }

  /** The WGSL of unary/binary/cast node `e` with operands `c` (strings), or null for the default. */
  render(e: Expr, c: string[], rcp: (b: Expr) => { r: string; b: string } | null): string {
    const { exact, fused, legacy } = this.o;
    if (e.op === 'unary') {
      const x = e.x;
      if (e.fn === 'sqrt' && exact && fused && !this.o.ablate?.includes('sqrt')) return legacy ? `sqrt_exact(${c[0]})` : this.o.flag ? `sqrt_cr_f(${c[0]}, &slow)` : `sqrt_cr(${c[0]})`;
      if (x.type === 'f32' && this.safe(x)) {
        if (e.fn === 'isNan') return 'false';
        if (e.fn === 'isFinite' && this.within(x, -3.4e38, 3.4e38)) return 'true';
        if (e.fn === 'sign') return `select(select(${c[0]}, -1.0f, ${c[0]} < 0.0f), 1.0f, 0.0f < ${c[0]})`;
      }
      return wgslUnary[e.fn](c[0]!, e.type);
    }
    if (e.op === 'cast') {
      if (e.x.type === 'f32' && e.type === 'i32' && this.within(e.x, -2147483520, 2147483520)) return `i32(${c[0]})`;
      if (e.x.type === 'f32' && e.type === 'u32' && this.within(e.x, -Infinity, 4294967040)) return `u32(${c[0]})`;
      return wgslCast(c[0]!, e.x.type, e.type);
    }
    if (e.op !== 'binary') throw new Error(`Arith.render: ${e.op}`);
    const [a, b] = c as [string, string];
    if (e.a.type === 'f32') {
      if (e.fn === 'mul' && exact && !this.o.noKeep) return legacy ? `keep_select(${a} * ${b})` : this.guarded.has(e) ? `keep(${a} * ${b})` : `(${a} * ${b})`;
      if (e.fn === 'div' && exact && fused && !this.o.ablate?.includes('div')) {
        if (legacy) return `div_exact(${a}, ${b})`;
        const r = rcp(e.b);
        const f = this.o.flag ? ['_f', ', &slow'] : ['', ''];
        if (r) return `div_rcp${f[0]}(${a}, ${r.b}, ${r.r}${f[1]})`;
        const fb = this.ranges.of(e.b), fa = this.ranges.of(e.a);
        const small = this.useRanges && !fb.nan && (fb.lo >= 2 ** -60 || fb.hi <= -(2 ** -60)) && Math.max(Math.abs(fb.lo), Math.abs(fb.hi)) <= 2 ** 60 && Math.max(Math.abs(fa.lo), Math.abs(fa.hi)) <= 2 ** 60;
        return `${small ? 'div_cr_a' : 'div_cr'}${f[0]}(${a}, ${b}${f[1]})`;
      }
      const both = this.safe(e.a) && this.safe(e.b);
      if (both) {
        // The same IEEE functions as the helpers once no operand is NaN (ties keep the first operand).
        switch (e.fn) {
          case 'min': return `select(${a}, ${b}, ${b} < ${a})`;
          case 'max': return `select(${a}, ${b}, ${a} < ${b})`;
          case 'lt': return `(${a} < ${b})`;
          case 'le': return `(${a} <= ${b})`;
          case 'eq': return `(${a} == ${b})`;
          case 'ne': return `(${a} != ${b})`;
        }
      }
    }
    return wgslBinary[e.fn](a, b, e.a.type);
  }
}
