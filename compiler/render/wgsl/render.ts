// The WGSL kernel template. One invocation owns E consecutive elements of one group (T = G/E
// invocations a group, adjacent in their subgroup); the element computation is unrolled E times
// in straight-line code so every value stays in registers. A groupMax reduces over the thread's
// own elements in order, then across the group's T invocations with subgroupShuffleXor, lower
// lanes first so every invocation gets the bit-identical value the JS loop computes. A groupSum
// (a reduction pass's partial) adds the thread's elements in order, then the T sums pairwise: not
// the JS loop's order when T > 1, but a fixed one. No barriers, no early returns (subgroup
// operations need every invocation): inactive invocations compute on clamped reads and store
// nothing. One dispatch covers [g0, g1), over a 2-D grid of workgroups when it needs more than
// 65535. A kernel of a step with reductions is blocked instead (blocked.ts): a workgroup per
// block, which computes its `$red<i>` columns from the blocks' sums (never from the host's table)
// and, in a reduction pass, adds its partials into its block's sum; only it has barriers. How f32
// operations are spelled (exact ÷ and √, contraction guards, NaN guards dropped where a range
// analysis allows) is arith.ts's business.

import type { Expr } from '../../ir/ir.ts';
import { topo } from '../../ir/ir.ts';
import { elementwise, roots } from '../../ir/kernel.ts';
import type { Prepared } from '../../ir/pipeline.ts';
import { storageBytes } from '../../ir/kernel.ts';
import { wgslLiteral, wgslType } from './ops.ts';
import type { Ablation } from './arith.ts';
import { Arith } from './arith.ts';
import type { Access, FieldLayout, ShapeOptions, ThreadShape } from './layout.ts';
import { findTables, tableEntries } from './tables.ts';
import { extract, fieldLayouts, threadShape } from './layout.ts';
import type { BindingPlan } from './slots.ts';
import { defaultPlan, slotsOf } from './slots.ts';
import { guardedStores, storeBlock } from './stores.ts';
import { assumptions, MODERATE_BITS } from './assume.ts';
import { REDUCTION_PREFIX } from '../../ir/phases.ts';
import type { BlockOutput } from './blocked.ts';
import { BLOCKED_WORKGROUP, tileClose } from './blocked.ts';
import { kernelHeader } from './header.ts';
import { bodyRenderer } from './body.ts';

export interface WgslOptions extends ShapeOptions {
  readonly workgroupSize?: number;
  /**
   * Match the JS backend's f32 rounding (default true): no fused multiply-add contraction of a
   * product an add consumes (it goes through `keep`, which the compiler cannot see through), and
   * ÷ and √ correctly rounded from exact fma residuals (wgsl/exact.ts). false gives the
   * driver's own (2.5 ULP ÷, contracted) arithmetic.
   */
  readonly exact?: boolean;
  /** The device's fma is fused (Vulkan allows an unfused one, as lavapipe has): ÷ and √ rounding fixes need it. */
  readonly fusedFma?: boolean;
  /**
   * Exact mode: split each kernel without reductions into a fast half and a fallback half
   * (`WgslKernel.fallback`; runtime/backends/webgpu/options.ts `splitKernels`, by default where fma is fused).
   */
  readonly split?: boolean;
  /** Diagnostics only (arith.ts `Ablation`): parts of the kernel left out to measure their cost. */
  readonly diagnostics?: readonly Ablation[];
}

export interface WgslKernel extends ThreadShape {
  readonly source: string;
  readonly workgroupSize: number;
  readonly fields: readonly FieldLayout[];
  readonly counters: number;
  /** Contents of the tables buffer (binding BIND.tables), or null when the kernel has none. */
  readonly tables: Float32Array | null;
  /** Which slot (binding) holds each field (slots.ts); each field's base is P.b[index]. */
  readonly plan: BindingPlan;
  /**
   * Blocked (a step with reductions, wgsl/blocked.ts): it reads reduction columns (`$red<i>`) or
   * adds reduction partials through the RED buffer (binding BIND.reductions), a workgroup a block.
   */
  readonly reductions: boolean;
  /** A reduction pass: it writes its blocks' sums into the RED buffer (bound read-write). */
  readonly writesReductions: boolean;
  /**
   * A split kernel (exact mode, no reductions): this kernel runs the fast body alone and stores
   * nothing in a subgroup where a check failed, flagging its groups in FL (binding BIND.flags, a
   * bit a group of the launch); `fallback`, dispatched next over the same launch and bindings,
   * redoes those groups with the general body. Null otherwise.
   */
  readonly fallback: WgslKernel | null;
  /** How it binds the flags (BIND.flags): the fast half writes them, the fallback reads them (and its dispatch size). */
  readonly flags: 'write' | 'read' | null;
}

/** The kernel for binding plan `plan` (default: one slot per field). */
export function renderWgsl(p: Prepared, o: WgslOptions = {}, plan?: BindingPlan, role?: 'fallback'): WgslKernel {
  const { k, guards } = guardedStores(p.kernel),
    G = k.groupSize;
  // What the body computes: the outputs, the counters and the stores' guards.
  const needed = [...roots(k), ...guards.values()];
  const shape = threadShape(k, o);
  const { threadsPerGroup: T, elementsPerThread: E } = shape;
  // A reduction's result (`$red<i>`) is never in the uniform table here, and a reduction pass's
  // partials (`$red<i>` outputs) are never stored: the kernel is blocked (wgsl/blocked.ts), in
  // workgroups of BLOCKED_WORKGROUP whatever `workgroupSize` asks (its orders depend on the size).
  const red = (c: string) => (c.startsWith(REDUCTION_PREFIX) ? Number(c.slice(REDUCTION_PREFIX.length)) : -1);
  const blockOuts: BlockOutput[] = k.outputs.flatMap((x) =>
    red(x.field) >= 0 ? [{ index: red(x.field), value: x.value }] : [],
  );
  const reductions = blockOuts.length > 0 || p.columns.some((c) => red(c) >= 0);
  const WG = reductions ? BLOCKED_WORKGROUP : (o.workgroupSize ?? 256);
  if (WG % T !== 0) throw new RangeError(`wgsl: workgroupSize ${WG} is not a multiple of ${T} threads per group`);
  // What the kernel stores: every output but the partials.
  const stored = blockOuts.length ? { ...k, outputs: k.outputs.filter((x) => red(x.field) < 0) } : k;
  const layouts = fieldLayouts(k, shape, new Set(k.outputs.flatMap((x) => (red(x.field) >= 0 ? [x.field] : []))));
  const byField = new Map(layouts.map((f) => [f.field, f]));
  const column = new Map(p.columns.map((c, i) => [c, i]));
  const memo = new Map<Expr, boolean>();
  const isElem = (e: Expr) => elementwise(e, memo);
  const J = [...Array(E).keys()];
  const bp = plan ?? defaultPlan(layouts);
  const slotOf = slotsOf(layouts, k.windowed, bp);
  // A field is reached as its slot's elements (a vec4 field in a word slot is read word by word).
  const access = (f: FieldLayout): Access => bp.slots[slotOf[f.index]!]!.type;
  const zero = new Set(bp.zeroBase ?? []); // fields at base 0 need no offset
  const at = (f: FieldLayout, i: string) => `S${slotOf[f.index]}[${zero.has(f.index) ? '' : `o${f.index} + `}${i}]`;
  const exact = o.exact !== false,
    fused = o.fusedFma === true;
  const body: string[] = [];
  const emit = (s: string) => body.push('  ' + s);

  // Words of each element field's span, loaded unconditionally: past the launch's end they are
  // robust access's clamped words or the next field's in the slot, and only ever masked by v_j.
  const wordOf = new Map<string, (w: number) => string>();
  for (const f of layouts) {
    if (f.axis !== 'element' || !f.read || k.windowed.includes(f.field)) continue;
    const sb = storageBytes[f.storage];
    if (access(f) === 'vec4') {
      const nv = (E * sb) / 16;
      for (let v = 0; v < nv; v++) emit(`let w${f.index}_${v} = ${at(f, `e0 * ${sb}u / 16u + ${v}u`)};`);
      wordOf.set(f.field, (w) => `w${f.index}_${w >> 2}.${'xyzw'[w & 3]}`);
    } else if (access(f) === 'word' && (E * sb) % 4 === 0) {
      for (let w = 0; w < (E * sb) / 4; w++) emit(`let w${f.index}_${w} = ${at(f, `e0 * ${sb}u / 4u + ${w}u`)};`);
      wordOf.set(f.field, (w) => `w${f.index}_${w}`);
    }
  }
  const loadElem = (f: FieldLayout, j: number, as = f.storage): string => {
    const sb = storageBytes[f.storage];
    const words = wordOf.get(f.field);
    if (words) return extract(as, words(Math.floor((j * sb) / 4)), `${((j * sb) % 4) * 8}u`);
    // A span that shares words with the neighbours, or a windowed field (element i of the launch
    // at i − g0·G): one word per element, shift from its index.
    const i = k.windowed.includes(f.field) ? `(e0 + ${j}u - P.g0 * ${G}u)` : `(e0 + ${j}u)`;
    const w = at(f, `${i} * ${sb}u / 4u`);
    return extract(as, access(f) === 'atomic' ? `atomicLoad(&${w})` : w, `((${i} * ${sb}u) % 4u) * 8u`);
  };
  const off = new Set(o.diagnostics ?? []);
  const tables = off.has('tables') ? [] : findTables(needed);
  const tableOf = new Map(tables.map((t) => [t.expr, t]));
  const entries = tables.length ? tableEntries(tables) : null;
  const tableFact = (e: Expr) => {
    // A table's value set is known exactly: never NaN when no entry is.
    const t = tableOf.get(e);
    if (!t || !entries) return undefined;
    const xs = [...entries.subarray(t.offset, t.offset + 256)];
    return xs.some(Number.isNaN) ? undefined : { nan: false, lo: Math.min(...xs), hi: Math.max(...xs) };
  };
  const general = new Arith(needed, { exact, fused, off: [...off] }, tableFact);
  const loadGroup = (f: FieldLayout): string => {
    const sb = storageBytes[f.storage];
    const w = at(f, `g * ${sb}u / 4u`);
    return extract(f.storage, access(f) === 'atomic' ? `atomicLoad(&${w})` : w, `((g * ${sb}u) % 4u) * 8u`);
  };
  // The nodes the outputs need, not descending into a table's expression.
  const order = topo(needed, (e) => !tableOf.has(e));
  const renderBody = bodyRenderer({ J, T, isElem, column, byField, loadGroup, loadElem, tableOf });
  // Counters: per invocation, then one atomicAdd when nonzero.
  const counterSums = (ref: (e: Expr, j: number) => string) =>
    k.counters.map((c) =>
      J.map((j) =>
        c.value.type === 'bool'
          ? `select(0u, 1u, v${j} && ${ref(c.value, j)})`
          : `select(0u, bitcast<u32>(${ref(c.value, j)}), v${j})`,
      ).join(' + '),
    );
  const atomics = () =>
    k.counters.forEach((_, ci) => emit(`if (live && c${ci} != 0u) { atomicAdd(&C[${ci}], c${ci}); }`));

  let ref: (e: Expr, j: number) => string;
  // The second body pays for itself inline in the driver's arithmetic only. On the H200 (AdamW,
  // 2^28, bench/gpu.ts VARIANTS=path, docs/bench-gpu.md) exact: false ran 2.64 ms with it and
  // 3.02 without; exact mode, whose ÷ and √ helpers the second body inlines again, 8.40 and 5.75.
  // Exact mode may split instead (`split`): the fast body, with no fallback branch in its ÷ and √,
  // is the whole kernel, and a second kernel (`fallback`) redoes the workgroups where a check failed.
  // The fast path inline (exact: false, or an exact-mode diagnostic), or the split; the fallback
  // half, like exact mode by default, is one general body.
  const inlinePath = !off.has('fastPath') && (!exact || off.has('exactOneBody') || off.has('fastBodyOnly'));
  const splitting = o.split === true && exact && !reductions && !role && !inlinePath;
  const assumed = role !== 'fallback' && (inlinePath || splitting) ? assumptions(order, tableFact) : new Map();
  const split = splitting && assumed.size > 0;
  if (assumed.size === 0) {
    ref = renderBody(general, order, new Map(), body);
    counterSums(ref).forEach((sum, ci) => emit(`let c${ci} = ${sum};`));
    atomics();
  } else {
    // Each body leaves the outputs and counts in these.
    const outs = [...new Set([...k.outputs.map((o) => o.value), ...guards.values()])].filter(
      (e) => e.op !== 'const' && e.op !== 'uniform',
    );
    const vars = new Map<Expr, string | string[]>(
      outs.map((e) => [e, isElem(e) ? J.map((j) => `o${e.id}_${j}`) : `o${e.id}`]),
    );
    for (const [e, v] of vars) for (const n of [v].flat()) emit(`var ${n}: ${wgslType[e.type]};`);
    k.counters.forEach((_, ci) => emit(`var c${ci} = 0u;`));
    emit('var fast = true;');
    emit('var big = 0u;');
    const branch = (arith: Arith, check: boolean) => {
      const lines: string[] = [];
      // Uniforms are never rendered as nodes: their checks come first.
      if (check)
        for (const [e, a] of assumed)
          if (e.op === 'uniform' && a.test) lines.push(`  fast = fast && ${a.test(`u${column.get(e.name)}`)};`);
      const r = renderBody(arith, order, new Map(), lines, (e, r) => {
        const a = check ? assumed.get(e) : undefined;
        if (a?.test) return [`fast = fast && ${a.test(r(e, 0))};`];
        if (!a?.magnitude) return [];
        // Every element, the tail's past-the-end ones too: garbage there only costs the general body.
        return (isElem(e) ? J : [0]).map((j) => `big = max(big, ${a.magnitude!(r(e, j))});`);
      });
      for (const [e, v] of vars) for (const j of isElem(e) ? J : [0]) lines.push(`  ${[v].flat()[j]} = ${r(e, j)};`);
      counterSums(r).forEach((sum, ci) => lines.push(`  c${ci} = ${sum};`));
      return lines;
    };
    const facts = new Map([...assumed].map(([e, a]) => [e, a.fact]));
    // The fast body for everyone; the general one where a check failed (uniform per subgroup).
    emit('{');
    const fastArith = new Arith(
      needed,
      { exact, fused, off: [...off], ...(split ? { collect: 'fast' } : {}) },
      (e) => facts.get(e) ?? tableFact(e),
    );
    branch(fastArith, true).forEach((l) => emit(l));
    emit(`  fast = fast && big <= ${MODERATE_BITS};`);
    emit(`}`);
    if (split) {
      // A subgroup (a group, at one thread a group) stores all of its groups or none and flags
      // them for the fallback kernel (header.ts fail_groups), which redoes them from the same
      // inputs, dispatched over the listed workgroups only.
      emit(`let ok = ${T > 1 ? 'subgroupAll(fast)' : 'fast'};`);
      const lead = T > 1 ? 'sgi == 0u && ' : '';
      emit(`if (${lead}!ok) { fail_groups(gi / ${T}u, ${T > 1 ? `sgs / ${T}u` : '1u'}, wg, nwg.x * nwg.y); }`);
      emit('if (ok) {');
    } else if (!off.has('fastBodyOnly')) {
      emit(`if (!${T > 1 ? 'subgroupAll(fast)' : 'fast'}) {`);
      branch(general, false).forEach((l) => emit(l));
      emit('}');
    }
    atomics();
    ref = (e, j) => {
      const v = vars.get(e);
      if (v) return typeof v === 'string' ? v : v[j]!;
      if (e.op === 'const') return wgslLiteral(e.value, e.type);
      if (e.op === 'uniform') return `u${column.get(e.name)}`;
      throw new Error(`renderWgsl: output ${e.op} has no variable`);
    };
  }

  // Stores, after every invocation has run the shuffles they need.
  storeBlock({
    k: stored,
    E,
    T,
    byField,
    ref,
    access,
    at,
    emit,
    ...(reductions ? { live: ['glo', 'ghi'] as const } : {}),
    ...(role === 'fallback' ? { ownGroup: true } : {}),
    guard: (f) => (guards.has(f) ? ref(guards.get(f)!, 0) : undefined),
  }).forEach(emit);
  if (split) emit('}');
  if (reductions) body.push(...tileClose(T, blockOuts, (x) => ref(x.value, 0)));

  const decl = kernelHeader({
    k,
    columns: p.columns,
    red,
    T,
    E,
    WG,
    layouts,
    slotOf,
    plan: bp,
    zero,
    tables: tables.length > 0,
    reductions,
    blockOuts,
    twoBodies: assumed.size > 0 && !split,
    ...(split ? { split: 'fast' as const } : role ? { split: role } : {}),
    off,
  });
  return {
    ...shape,
    workgroupSize: WG,
    fields: layouts,
    counters: k.counters.length,
    tables: entries,
    plan: bp,
    reductions,
    writesReductions: blockOuts.length > 0,
    source: [...decl, ...body, '}', ''].join('\n'),
    fallback: split ? renderWgsl(p, o, plan, 'fallback') : null,
    flags: split ? 'write' : role === 'fallback' ? 'read' : null,
  };
}
