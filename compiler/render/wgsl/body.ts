// The straight-line body of the WGSL kernel template (render.ts): every node in topological order,
// group-invariant ones once a thread and element ones once an element, with the exact helpers,
// the group reductions through subgroup shuffles, the decode tables, and the run-time values
// that keep the driver from folding what the oracle does not (−0, Inf, NaN).

import type { Expr } from '../../ir/ir.ts';
import { children } from '../../ir/ir.ts';
import { wgslLiteral, wgslType } from './ops.ts';
import { Arith } from './arith.ts';
import type { FieldLayout } from './layout.ts';
import type { Table } from './tables.ts';

const NAN = 'f32_bits(0x7fc00000u)';
/** A WGSL literal the driver sees as one (bool, number), as opposed to a name or a call. */
const LITERAL = /^(true|false|\(?-?[0-9][0-9.e+-]*[fiu]?\)?)$/;

export type Names = Map<Expr, string | string[]>;

/** What the body reads of the kernel it is rendered into. */
export interface BodyContext {
  /** The thread's element indices 0..E−1, and its threads a group. */
  readonly J: readonly number[];
  readonly T: number;
  readonly isElem: (e: Expr) => boolean;
  /** Each uniform's column in the uniform table. */
  readonly column: ReadonlyMap<string, number>;
  readonly byField: ReadonlyMap<string, FieldLayout>;
  readonly loadGroup: (f: FieldLayout) => string;
  readonly loadElem: (f: FieldLayout, j: number, as?: FieldLayout['storage']) => string;
  readonly tableOf: ReadonlyMap<Expr, Table>;
}

/** The body renderer for one kernel. */
export function bodyRenderer({ J, T, isElem, column, byField, loadGroup, loadElem, tableOf }: BodyContext) {
  /** Straight-line code in topological order (group-invariant nodes once, element nodes E times) into `out`. */
  return (
    arith: Arith,
    nodes: readonly Expr[],
    name: Names,
    out: string[],
    after: (e: Expr, ref: (x: Expr, j: number) => string) => string[] = () => [],
  ) => {
    const emit = (s: string) => out.push('  ' + s);
    // Per-thread reciprocals of group-invariant divisors (exact mode), declared before first use.
    const rcps = new Map<Expr, { r: string; b: string }>();
    const ref = (e: Expr, j: number): string => {
      if (e.op === 'const') return wgslLiteral(e.value, e.type);
      if (e.op === 'uniform') return `u${column.get(e.name)}`;
      const n = name.get(e)!;
      return typeof n === 'string' ? n : n[j]!;
    };
    const needRcp = (e: Expr) => {
      if (e.op !== 'binary' || !arith.usesRcp(e, (x) => !isElem(x)) || rcps.has(e.b)) return;
      const r = `rc${e.b.id}`;
      const host = e.b.op === 'const' ? Arith.constRcp(e.b.value) : null;
      emit(`let ${r} = ${host ?? arith.call('rcp_of', ref(e.b, 0))};`);
      if (host) emit(`let ${r}b = opaque(${ref(e.b, 0)});`);
      rcps.set(e.b, { r, b: host ? `${r}b` : ref(e.b, 0) });
    };
    // Values the driver can compute at compile time: literals (constants, and what the range
    // analysis decided) and what is built from them alone. It folds them, and a +0 then reaches a
    // product it folds too: lavapipe folded select(0.0f, 1f, false) · −1 to +0. Such f32 values
    // are made run-time values where declared (below), and a select on a known condition hides a
    // +0 branch; only there: hiding every +0 cost AdamW 5% on the H200 (4.30 → 4.52 ms at 2^28).
    const fixed = new Set<Expr>();
    const known = (x: Expr) => x.op === 'const' || fixed.has(x);
    const hideZero = (x: Expr, s: string) => (known(x) && s === '0.0f' ? 'f32_bits(0u)' : s);
    const build = (e: Expr, j: number): string => {
      const c = children(e).map((x) => ref(x, j));
      switch (e.op) {
        case 'unary':
        case 'binary':
          return arith.render(e, c, (b) => rcps.get(b) ?? null);
        case 'cast': {
          const v = arith.render(e, c, (b) => rcps.get(b) ?? null);
          // An integer made a float: the driver's integer range analysis may know it (lavapipe found
          // (−40 >> 1) / 1199693204 is 0 and folded its 0.0 times a run-time −2^−149 to +0; CI's
          // seed 45882071, the oracle −0). | P.never hides it; no built-in kernel casts one.
          if (e.x.type !== 'bool' && e.type === 'f32') return `bitcast<f32>(bitcast<u32>(${v}) | P.never)`;
          if (e.x.type !== 'bool') return v;
          // A 0 or 1 from a bool: the driver reasons about it (lavapipe turned eq(−1, f32(b)) into
          // false, then 0 · −2^−149 into +0; the oracle stores −0). Or-ing P.never (0 at run
          // time) leaves it nothing to reason with.
          return e.type === 'f32'
            ? `bitcast<f32>(bitcast<u32>(${v}) | P.never)`
            : e.type === 'u32'
              ? `(${v} | P.never)`
              : `(${v} | bitcast<i32>(P.never))`;
        }
        case 'select':
          return `select(${hideZero(e.cond, c[2]!)}, ${hideZero(e.cond, c[1]!)}, ${c[0]})`;
        case 'bitcast': {
          // The bits of any f32 NaN read as 0x7fc00000 (semantics.ts): payloads differ between GPUs.
          // A select of the bits of ±0 made a float the driver moved an add into: lavapipe folded
          // abs(bitcast(select(c, K, −0 bits))) + (−0) to −0 (the oracle: +0); | P.never hides them.
          const zeroArm = (x: Expr) => x.op === 'const' && (x.value | 0) << 1 === 0;
          const z = e.type === 'f32' && e.x.op === 'select' && (zeroArm(e.x.a) || zeroArm(e.x.b));
          const x = z ? `(${c[0]} | ${e.x.type === 'u32' ? 'P.never' : 'bitcast<i32>(P.never)'})` : c[0];
          const b = `bitcast<${wgslType[e.type]}>(${x})`;
          return e.x.type !== 'f32' || arith.safe(e.x)
            ? b
            : `select(${b}, ${wgslLiteral(0x7fc00000, e.type)}, is_nan(${c[0]}))`;
        }
        case 'load': {
          const f = byField.get(e.field)!;
          return e.axis === 'group' ? loadGroup(f) : loadElem(f, j);
        }
        default:
          throw new Error(`renderWgsl: unexpected ${e.op}`);
      }
    };
    for (const e of nodes) {
      if (e.op === 'const' || e.op === 'uniform' || name.has(e)) continue;
      if (e.op === 'groupMax') {
        const x = e.x,
          m = `m${e.id}`;
        if (arith.safe(x)) {
          // Never NaN: start from −Inf (fmax(NaN, y) = y = fmax(−Inf, y) for every y), plain compares.
          emit(`var ${m} = f32_bits(0xff800000u);`);
          for (const j of J) emit(`${m} = select(${m}, ${ref(x, j)}, v${j} && ${m} < ${ref(x, j)});`);
        } else {
          emit(`var ${m} = ${NAN};`);
          for (const j of J) emit(`${m} = fmax_nan(${m}, select(${NAN}, ${ref(x, j)}, v${j}));`);
        }
        for (let s = 1; s < T; s *= 2) {
          emit(
            `{ let o = subgroupShuffleXor(${m}, ${s}u); ${m} = select(fmax_nan(o, ${m}), fmax_nan(${m}, o), (t & ${s}u) == 0u); }`,
          );
        }
        name.set(e, m);
      } else if (e.op === 'groupSum') {
        // The thread's elements in order from +0 (hidden from folding: 0 + x is not x for x = −0),
        // then the threads' sums pairwise, (s0 + s1) + (s2 + s3): f32 addition is commutative, so
        // both lanes of a pair get the same bits. Fixed, so the same on every run; the oracle
        // adds in this order when told the threads a group has (interpret.ts `sumLanes`).
        const s = `s${e.id}`;
        emit(`var ${s} = f32_bits(0u);`);
        for (const j of J) emit(`${s} = select(${s}, ${s} + ${ref(e.x, j)}, v${j});`);
        for (let d = 1; d < T; d *= 2) emit(`${s} = ${s} + subgroupShuffleXor(${s}, ${d}u);`);
        name.set(e, s);
      } else if (tableOf.has(e)) {
        const tb = tableOf.get(e)!,
          f = byField.get(tb.load.field)!;
        const ns = J.map((j) => `t${e.id}_${j}`);
        J.forEach((j) => emit(`let ${ns[j]} = TB[${tb.offset}u + ${loadElem(f, j, 'u8')}];`));
        name.set(e, ns);
      } else {
        needRcp(e);
        const vs = (isElem(e) ? J : [0]).map((j) => build(e, j));
        // A cast from bool is a run-time value already (build), so nothing built on it is known.
        const runtime = e.op === 'cast' && e.x.type === 'bool';
        if (!runtime && (vs.every((v) => LITERAL.test(v)) || (children(e).length > 0 && children(e).every(known)))) {
          fixed.add(e);
          // An f32 the driver computes at compile time reaches products and sums it then folds as
          // if no −0, Inf or NaN existed: lavapipe folded f32(u32(false)) · −2^−149 to +0 (the
          // oracle: −0). Or-ing P.never (0 at run time) makes it a run-time value; only such values
          // pay. Not xor (opaque): that cancels against f32_bits's own xor, and the constant is back.
          if (e.type === 'f32') vs.forEach((v, j) => (vs[j] = `bitcast<f32>(bitcast<u32>(${v}) | P.never)`));
        }
        if (!isElem(e)) {
          emit(`let g${e.id} = ${vs[0]};`);
          name.set(e, `g${e.id}`);
        } else {
          const ns = J.map((j) => `t${e.id}_${j}`);
          J.forEach((j) => emit(`let ${ns[j]} = ${vs[j]};`));
          name.set(e, ns);
        }
      }
      after(e, ref).forEach(emit);
    }
    return ref;
  };
}
