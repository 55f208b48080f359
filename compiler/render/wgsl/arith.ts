// How render.ts spells f32 arithmetic: exact-mode ÷, √ and products (compiler/render/wgsl/exact.ts),
// and the NaN-safe helpers dropped where the range analysis (compiler/ir/range.ts) proves an operand
// is never NaN. Each choice can be turned off for a diagnostic build (`Ablation`), which is how
// bench/gpu.ts shows what each one costs (docs/bench-gpu.md).

import type { Expr } from '../../ir/ir.ts';
import { children, topo } from '../../ir/ir.ts';
import { wgslBinary, wgslCast, wgslLiteral, wgslUnary } from './ops.ts';
import type { Fact } from '../../ir/range.ts';
import { Ranges } from '../../ir/range.ts';

/**
 * A part of the kernel a diagnostic build leaves out, to measure what it costs. Diagnostics only
 * (runtime/backends/webgpu/diagnostics.ts), never a user option: most make the kernel disagree
 * with the JS backend.
 * - 'exactDiv' / 'exactSqrt': the driver's ÷ / √ in exact mode (not exact);
 * - 'fallbackBranches': exact ÷ and √ without the branch to the 3-candidate helpers (wrong near
 *   zero and at the ends of the f32 range);
 * - 'contractionGuards': products not kept from fma contraction (not exact);
 * - 'nanGuards': every f32 compare, min/max, cast and groupMax native (not IEEE-safe);
 * - 'rangeAnalysis': every NaN guard kept (still exact: the guards are the same function);
 * - 'tables': 8-bit decodes computed, not looked up (still exact);
 * - 'fastPath': with exact: false, one body only, no second one for checked inputs (assume.ts;
 *   the same function: only the speed changes).
 * - 'exactOneBody': exact mode's single body; left out, exact mode too gets the fast path's
 *   second body (the same function), to measure whether it pays there.
 * - 'fastBodyOnly': the fast path's body alone, on its facts, with no general body after it
 *   (wrong where a check fails): what a guard-free body whose fallback runs elsewhere costs.
 */
export type Ablation =
  | 'exactDiv'
  | 'exactSqrt'
  | 'fallbackBranches'
  | 'contractionGuards'
  | 'nanGuards'
  | 'rangeAnalysis'
  | 'tables'
  | 'fastPath'
  | 'exactOneBody'
  | 'fastBodyOnly';
export const ablations: readonly Ablation[] = [
  'exactDiv',
  'exactSqrt',
  'fallbackBranches',
  'contractionGuards',
  'nanGuards',
  'rangeAnalysis',
  'tables',
  'fastPath',
  'exactOneBody',
  'fastBodyOnly',
];

export interface ArithOptions {
  /** JS-matching rounding (render.ts WgslOptions.exact). */
  readonly exact: boolean;
  /** The device's fma is fused: needed by the ÷ and √ rounding fixes. */
  readonly fused: boolean;
  /** Diagnostics: what is left out. */
  readonly off?: readonly Ablation[];
  /**
   * The split kernel's fast half (render.ts): exact ÷ and √ have no fallback branch and clear this
   * bool variable where their result is not the correctly rounded one.
   */
  readonly collect?: string;
}

const isPow2Const = (e: Expr) =>
  e.op === 'const' && e.value !== 0 && Number.isFinite(e.value) && Math.log2(Math.abs(e.value)) % 1 === 0;
/** bitcast<f32>(k << 23): a power of two (or 0 / Inf); products with it are exact, so fusing is harmless. */
const isPow2 = (e: Expr) =>
  isPow2Const(e) ||
  (e.op === 'bitcast' &&
    e.type === 'f32' &&
    e.x.op === 'binary' &&
    e.x.fn === 'shl' &&
    e.x.b.op === 'const' &&
    (e.x.b.value & 31) === 23);

export class Arith {
  readonly ranges: Ranges;
  private readonly guarded = new Set<Expr>();
  private readonly off: ReadonlySet<Ablation>;

  constructor(
    roots: readonly Expr[],
    readonly o: ArithOptions,
    leaf: (e: Expr) => Fact | undefined,
  ) {
    this.ranges = new Ranges(leaf);
    this.off = new Set(o.off ?? []);
    // Products an add/sub consumes (directly or through neg/select), or a groupSum adds up (render.ts
    // adds each element to the thread's sum): the compiler may fuse those.
    const users = new Map<Expr, Expr[]>();
    for (const e of topo(roots)) for (const c of children(e)) users.set(c, [...(users.get(c) ?? []), e]);
    const feedsAdd = (e: Expr, depth = 0): boolean =>
      (users.get(e) ?? []).some(
        (u) =>
          (u.op === 'binary' && (u.fn === 'add' || u.fn === 'sub') && u.type === 'f32') ||
          u.op === 'groupSum' ||
          (depth < 4 &&
            ((u.op === 'unary' && u.fn === 'neg') || (u.op === 'select' && u.cond !== e)) &&
            feedsAdd(u, depth + 1)),
      );
    for (const e of users.keys())
      if (e.op === 'binary' && e.fn === 'mul' && e.type === 'f32' && !isPow2(e.a) && !isPow2(e.b) && feedsAdd(e))
        this.guarded.add(e);
  }

  private get useRanges(): boolean {
    return !this.off.has('rangeAnalysis');
  }
  /** `e` is never NaN (proved, or NaN guards are off in a diagnostic build): plain compares suffice. */
  safe(e: Expr): boolean {
    return this.off.has('nanGuards') || (this.useRanges && this.ranges.safe(e));
  }
  private within(e: Expr, lo: number, hi: number): boolean {
    if (this.off.has('nanGuards')) return true;
    const f = this.ranges.of(e);
    return this.useRanges && !f.nan && f.lo > lo && f.hi < hi;
  }
  private get exactDiv(): boolean {
    return this.o.exact && this.o.fused && !this.off.has('exactDiv');
  }

  /** A call of exact helper `fn`, or of its split-kernel form (exact.ts `_f`), which reports to `collect`. */
  call(fn: string, ...args: string[]): string {
    const c = this.o.collect;
    return c ? `${fn}_f(${args.join(', ')}, &${c})` : `${fn}(${args.join(', ')})`;
  }

  /** Does this division's divisor get a per-thread reciprocal (rcp_of) in exact mode? */
  usesRcp(e: Expr, invariant: (x: Expr) => boolean): boolean {
    return this.exactDiv && e.op === 'binary' && e.fn === 'div' && e.type === 'f32' && invariant(e.b);
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
    const lo = Math.max(50, eb - 99),
      hi = Math.min(254, eb + 125);
    return `Rcp(opaque(${wgslLiteral(Math.fround(1 / b), 'f32')}), ${lo}u, ${hi - lo}u, true)`;
  }

  /** The WGSL of unary/binary/cast node `e` with operands `c` (strings); `rcp` gives a divisor's per-thread reciprocal, if it has one. */
  render(e: Expr, c: string[], rcp: (b: Expr) => { r: string; b: string } | null): string {
    const { exact, fused } = this.o;
    if (e.op === 'unary') {
      const x = e.x;
      if (e.fn === 'sqrt' && exact && fused && !this.off.has('exactSqrt')) return this.call('sqrt_cr', c[0]!);
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
    // A +0 operand the driver can see lets it fold 0·x, x/0 or x + 0 as if no NaN, Inf or −0
    // existed (−0, Inf and NaN literals are hidden already: ops.ts f32_bits).
    const arith = e.a.type === 'f32' && (e.fn === 'add' || e.fn === 'sub' || e.fn === 'mul' || e.fn === 'div');
    const hide = (x: Expr, s: string) => (arith && x.op === 'const' && Object.is(x.value, 0) ? 'f32_bits(0u)' : s);
    const [a, b] = [hide(e.a, c[0]!), hide(e.b, c[1]!)];
    if (e.a.type === 'f32') {
      if (e.fn === 'mul' && exact && !this.off.has('contractionGuards'))
        return this.guarded.has(e) ? `keep(${a} * ${b})` : `(${a} * ${b})`;
      if (e.fn === 'div' && this.exactDiv) {
        const r = rcp(e.b);
        // 1/b is the reciprocal itself: rcp_of's r is RN(1/b) (its _f form clears the check otherwise).
        if (r) return e.a.op === 'const' && e.a.value === 1 ? `${r.r}.r` : this.call('div_rcp', a, r.b, r.r);
        const fb = this.ranges.of(e.b),
          fa = this.ranges.of(e.a);
        const small =
          this.useRanges &&
          !fb.nan &&
          (fb.lo >= 2 ** -60 || fb.hi <= -(2 ** -60)) &&
          Math.max(Math.abs(fb.lo), Math.abs(fb.hi)) <= 2 ** 60 &&
          Math.max(Math.abs(fa.lo), Math.abs(fa.hi)) <= 2 ** 60;
        return this.call(small ? 'div_cr_a' : 'div_cr', a, b);
      }
      if (this.safe(e.a) && this.safe(e.b)) {
        // The same IEEE functions as the helpers once no operand is NaN (ties keep the first operand).
        switch (e.fn) {
          case 'min':
            return `select(${a}, ${b}, ${b} < ${a})`;
          case 'max':
            return `select(${a}, ${b}, ${a} < ${b})`;
          case 'lt':
            return `(${a} < ${b})`;
          case 'le':
            return `(${a} <= ${b})`;
          case 'eq':
            return `(${a} == ${b})`;
          case 'ne':
            return `(${a} != ${b})`;
        }
      }
    }
    return wgslBinary[e.fn](a, b, e.a.type);
  }
}
