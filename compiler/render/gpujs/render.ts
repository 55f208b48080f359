// The gpu.js renderer: a Prepared kernel becomes a list of gpu.js kernel functions ("passes"), each
// written in the JavaScript subset gpu.js transpiles and each producing ONE array, because the
// gpu.js modes that run here (webgpu, webasm) have no kernel maps:
//   1. one pass per group reduction (groupMax, groupSum), level by level: a thread per group loops
//      over the group's elements in order, recomputing the element values its argument needs, and
//      writes the group's maximum or sum (f32 additions from +0 in element order, as
//      compiler/ir/semantics.ts defines it: the cpu mode rounds each with Math.fround, webasm and
//      webgpu add in f32);
//   2. one pass per element value that several outputs share and that is costly (gpujs/share.ts),
//      so the output passes read it instead of recomputing it;
//   3. one pass per output array: element fields thread per element, group fields thread per
//      group; an i32/u32 field is two arrays (high and low 16-bit halves), so two passes;
//   4. one pass per counter array: a thread per group sums the group's counts (≤ groupSize, exact),
//      the host sums the groups.
// Every pass reads the fields as they were before the launch; the runtime swaps the new arrays in
// afterwards, which is what "outputs are written after all reads" means here. Threads outside the
// launched groups (or past the element count) return the old value, so an output array is always
// the whole field. The price of no kernel maps: more kernel calls, inputs read once per pass, and
// (for what step 2 does not share) recomputation.
//
// Every scalar a pass needs arrives in one f32 array, `aux`:
//   [n, g0, g1, rowsAt, hasRows, R, ...constants, ...uniform rows (S columns each), ...row of each group]
// With `reductionsOnDevice` the reduction columns `$red<i>` are not read from the uniform rows but
// from the device array the backend's combine wrote (REDUCTIONS_ARRAY): row r's value i at r·R + i.

import type { Expr, Storage } from '../../ir/ir.ts';
import * as ir from '../../ir/ir.ts';
import type { Kernel } from '../../ir/kernel.ts';
import { elementwise, groupLevels, kernel, roots } from '../../ir/kernel.ts';
import type { Prepared } from '../../ir/pipeline.ts';
import { REDUCTION_PREFIX } from '../../ir/phases.ts';
import { rewrite } from '../../ir/rewrite.ts';
import { Emit } from './emit.ts';
import { pairFromSmall, pairToSmall } from './ints.ts';
import { legalize } from './legalize.ts';
import { sharedValues } from './share.ts';
import type { Value } from './values.ts';
import { asF, asP, binary, bitcast, cast, constBits, unary } from './values.ts';

/** What one pass writes: a field's array (or one half of an i32/u32 field), a group reduction, a counter. */
export type PassTarget =
  | { readonly kind: 'field'; readonly field: string; readonly half?: 'h' | 'l' }
  /** A group maximum or sum: one value per group, which later passes read. */
  | { readonly kind: 'reduction'; readonly index: number }
  | { readonly kind: 'counter'; readonly index: number; readonly half?: 'h' | 'l' }
  /** An element value several output passes read (gpujs/share.ts), one array per launch. */
  | { readonly kind: 'shared'; readonly index: number };

export interface GpujsPass {
  readonly name: string;
  /** A thread per element (output length: the field's length) or per group. */
  readonly over: 'element' | 'group';
  readonly target: PassTarget;
  /** The arrays passed in, in argument order: device array names (see `arrayName`) and 'aux'. */
  readonly arrays: readonly string[];
  /** `function (a0, a1, …) { … }` in the gpu.js subset. */
  readonly source: string;
}

export interface GpujsPlan {
  readonly passes: readonly GpujsPass[];
  /** The constant table: aux[HEAD + i]. */
  readonly constants: readonly number[];
  /** Uniform columns start at aux[HEAD + constants.length]. */
  readonly uniformBase: number;
  readonly groupSize: number;
  /** All passes, for users to read. */
  readonly source: string;
}

export const HEAD = 6;
/** Is a field held as two arrays of 16-bit halves? */
export const split = (s: Storage): boolean => s === 'i32' || s === 'u32';
/** The device array holding a field (or one half of it). */
export const arrayName = (field: string, half?: 'h' | 'l'): string => (half ? `${field}:${half}` : field);
/** The device array holding a group reduction's value per group. */
export const reductionName = (index: number): string => `reduction:${index}`;
export const sharedName = (index: number): string => `shared:${index}`;
/** The device array of combined reduction values (rows × R) that `$red` columns read on the device. */
export const REDUCTIONS_ARRAY = 'combine:values';

export interface RenderOptions {
  /** Round every f32 operation with Math.fround (the cpu mode computes in f64). */
  readonly fround: boolean;
  /** Tell −0 from +0 in bitcasts (needs IEEE 1/±0 = ±∞; false for webgpu: see gpujs/bits.ts). */
  readonly signedZeros?: boolean;
  /** Compute values several outputs share once, in passes of their own (default true). */
  readonly share?: boolean;
  /** Read `$red<i>` columns from REDUCTIONS_ARRAY (a device combine's results), not the uniform rows. */
  readonly reductionsOnDevice?: boolean;
}

/** The kernel with the gpu.js legalization rules applied (rules as data, compiler/ir/rewrite.ts). */
function legalized(k: Kernel): Kernel {
  const xs = rewrite(roots(k), legalize);
  const n = k.outputs.length;
  return kernel({
    name: k.name,
    groupSize: k.groupSize,
    outputs: k.outputs.map((o, i) => ({ ...o, value: xs[i]! })),
    counters: k.counters.map((c, i) => ({ ...c, value: xs[n + i]! })),
    windowed: k.windowed,
  });
}

export function renderGpujs(p: Prepared, opts: RenderOptions): GpujsPlan {
  const k = legalized(p.kernel);
  const G = k.groupSize;
  const constants: number[] = [];
  const konst = (v: number): string => {
    let i = constants.findIndex((c) => Object.is(c, v));
    if (i < 0) {
      i = constants.length;
      constants.push(v);
    }
    return `aux[${HEAD + i}]`;
  };
  const reductions = groupLevels(k).flat();
  const reductionIndex = new Map(reductions.map((m, i) => [m, i]));
  const column = new Map(p.columns.map((c, i) => [c, i]));
  const S = p.columns.length;
  const isElem = (() => {
    const memo = new Map<Expr, boolean>();
    return (e: Expr) => elementwise(e, memo);
  })();
  const passes: GpujsPass[] = [];
  const passRoots = k.outputs
    .filter((o) => o.axis === 'element')
    .flatMap((o) => (split(o.storage) ? [o.value, o.value] : [o.value]));
  const shared = opts.share === false ? [] : sharedValues(passRoots, isElem);
  const sharedIndex = new Map(shared.map((e, i) => [e, i]));

  /**
   * Render one pass: `target` is computed from `root`; `reduce` says how a group pass combines
   * elements: 'max' and 'sum' compute `root` (a groupMax or groupSum) from its argument, 'count'
   * adds up a counter's integer values in the group (the host adds the groups).
   */
  const pass = (
    name: string,
    over: 'element' | 'group',
    target: PassTarget,
    root: Expr,
    finish: (e: Emit, v: Value) => string,
    reduce?: 'max' | 'sum' | 'count',
    old?: string,
    reuse = false,
  ): void => {
    const arrays: string[] = [];
    const arg = (a: string): string => {
      let i = arrays.indexOf(a);
      if (i < 0) {
        i = arrays.length;
        arrays.push(a);
      }
      return `a${i}`;
    };
    const pre = new Emit(opts.fround, konst, 'p', opts.signedZeros ?? true);
    const loop = new Emit(opts.fround, konst, 'e', opts.signedZeros ?? true);
    const memoPre = new Map<Expr, Value>(),
      memoLoop = new Map<Expr, Value>();
    const own = reduce === 'max' || reduce === 'sum' ? root : undefined; // the group reduction this pass computes
    const value = (x: Expr): Value => {
      const inLoop = over === 'element' || (reduce !== undefined && isElem(x));
      const memo = inLoop ? memoLoop : memoPre,
        e = inLoop ? loop : pre;
      const hit = memo.get(x);
      if (hit !== undefined) return hit;
      const si = reuse && !(target.kind === 'shared' && x === root) ? sharedIndex.get(x) : undefined;
      const v = si === undefined ? node(e, x) : readShared(e, si);
      memo.set(x, v);
      return v;
    };
    // `value` recurses through what it has not computed yet; calling it on those nodes children
    // first, in the recursion's own order, keeps every call shallow at any depth.
    const valueDeep = (r: Expr): Value => {
      const fresh = (x: Expr) =>
        !ir.isGroupReduction(x) &&
        !memoLoop.has(x) &&
        !memoPre.has(x) &&
        !(reuse && sharedIndex.has(x) && !(target.kind === 'shared' && x === root));
      for (const n of ir.topo([r], fresh)) value(n);
      return value(r);
    };
    const idx = (axis: 'element' | 'group') => (axis === 'group' ? 'g' : 'i');
    const readShared = (e: Emit, si: number): Value => e.let(`${arg(sharedName(si))}[i]`);
    const node = (e: Emit, x: Expr): Value => {
      switch (x.op) {
        case 'const':
          if (x.type === 'f32' || x.type === 'bool') return e.lit(x.value);
          return { h: e.lit(Math.floor((x.value >>> 0) / 65536)), l: e.lit((x.value >>> 0) % 65536) };
        case 'uniform':
          if (opts.reductionsOnDevice && x.name.startsWith(REDUCTION_PREFIX))
            return e.let(`${arg(REDUCTIONS_ARRAY)}[row * aux[5] + ${Number(x.name.slice(REDUCTION_PREFIX.length))}]`);
          return e.let(`aux[r + ${column.get(x.name)}]`);
        case 'groupMax':
        case 'groupSum':
          return e.let(`${arg(reductionName(reductionIndex.get(x)!))}[g]`);
        case 'reduce':
          // prepare() refuses a kernel that still holds one (compiler/ir/phases.ts splits them out).
          throw new Error(`renderGpujs: unexpected ${x.op}`);
        case 'load': {
          // A windowed field holds only the launched groups: element i lives at i − g0·G (aux[1] is g0).
          const i = k.windowed.includes(x.field) ? `(i - aux[1] * ${G})` : idx(x.axis);
          if (split(x.storage))
            return {
              h: e.let(`${arg(arrayName(x.field, 'h'))}[${i}]`),
              l: e.let(`${arg(arrayName(x.field, 'l'))}[${i}]`),
            };
          const v = e.let(`${arg(x.field)}[${i}]`);
          return x.storage === 'f32' ? v : pairFromSmall(e, v, x.storage === 'i8' || x.storage === 'i16');
        }
        case 'unary':
          return unary[x.fn](e, value(x.x), x.type);
        case 'binary':
          return binary[x.fn](e, value(x.a), value(x.b), x.a.type, constBits(x.b));
        case 'select': {
          const c = asF(value(x.cond)),
            a = value(x.a),
            b = value(x.b);
          if (typeof a === 'string') return e.let(`${c} != 0 ? ${a} : ${asF(b)}`);
          const bp = asP(b);
          return { h: e.let(`${c} != 0 ? ${a.h} : ${bp.h}`), l: e.let(`${c} != 0 ? ${a.l} : ${bp.l}`) };
        }
        case 'cast':
          return cast(e, value(x.x), x.x.type, x.type);
        case 'bitcast':
          return bitcast(e, value(x.x), x.x.type, x.type);
      }
    };

    const body: string[] = [];
    const oldRead = old ? `${arg(old)}[${over === 'element' ? 'i' : 'g'}]` : '0';
    if (over === 'element') {
      body.push('let i = this.thread.x;', `let g = Math.floor(i / ${G});`, `let old = ${oldRead};`);
      body.push('if (i >= aux[0] || g < aux[1] || g >= aux[2]) { return old; }');
    } else {
      body.push('let g = this.thread.x;', `let old = ${oldRead};`);
      body.push('if (g < aux[1] || g >= aux[2]) { return old; }');
    }
    body.push('let row = aux[aux[3] + g * aux[4]];', `let r = row * ${S} + @UNIFORMS@;`);
    let result: string;
    if (reduce) {
      const x = own ? (own as ir.GroupMax | ir.GroupSum).x : root;
      // A sum starts from +0 read from the constant table, where no shader compiler sees it: with a
      // literal, webgpu mode's fast math folds 0 + x to x, and a group of −0 sums to −0, not +0.
      const acc = pre.mut(reduce === 'max' ? pre.lit(NaN) : reduce === 'sum' ? pre.opaque(0) : '0');
      const v = valueDeep(x);
      const fin = finish(loop, v);
      if (reduce === 'max') loop.line(`if (${loop.nan(acc)} || ${fin} > ${acc}) { ${acc} = ${fin}; }`);
      else if (reduce === 'sum')
        loop.line(`${acc} = ${loop.fround ? `Math.fround(${acc} + ${fin})` : `${acc} + ${fin}`};`);
      else loop.line(`${acc} = ${acc} + ${fin};`);
      body.push(
        ...pre.lines,
        `for (let j = 0; j < ${G}; j++) {`,
        `  let i = g * ${G} + j;`,
        '  if (i < aux[0]) {',
        ...loop.lines.map((l) => '    ' + l),
        '  }',
        '}',
      );
      result = acc;
    } else {
      const v = valueDeep(root);
      result = finish(over === 'element' ? loop : pre, v);
      for (const l of [pre.lines, loop.lines].flat()) body.push(l);
    }
    body.push(`return ${result};`);
    passes.push({ name, over, target, arrays: [...arrays, 'aux'], source: body.join('\n') });
  };

  // 1. Group maxima and sums, level by level (a later level reads the arrays of earlier ones).
  reductions.forEach((m, i) => {
    const fn = m.op === 'groupSum' ? 'sum' : 'max';
    pass(`${k.name}.${fn}${i}`, 'group', { kind: 'reduction', index: i }, m, (_e, v) => asF(v), fn);
  });
  // 2. Shared element values, children first (each may read earlier ones), then the outputs read them.
  shared.forEach((e, i) =>
    pass(
      `${k.name}.shared${i}`,
      'element',
      { kind: 'shared', index: i },
      e,
      (_e, v) => asF(v),
      undefined,
      undefined,
      true,
    ),
  );
  // 3. Outputs: the value, narrowed to what its storage holds.
  const store =
    (s: Storage, half?: 'h' | 'l') =>
    (e: Emit, v: Value): string => {
      if (s === 'f32') return asF(v);
      const p = asP(v);
      if (half) return half === 'h' ? p.h : p.l;
      return pairToSmall(e, p, s === 'u8' || s === 'i8' ? 8 : 16, s === 'i8' || s === 'i16');
    };
  for (const o of k.outputs) {
    const halves = split(o.storage) ? (['h', 'l'] as const) : [undefined];
    for (const h of halves) {
      pass(
        `${k.name}.${o.field}${h ? ':' + h : ''}`,
        o.axis,
        { kind: 'field', field: o.field, half: h },
        o.value,
        store(o.storage, h),
        undefined,
        arrayName(o.field, h),
        o.axis === 'element',
      );
    }
  }
  // 4. Counters: per-group sums of 0/1 or of each integer half (the high half signed for i32).
  k.counters.forEach((c, i) => {
    if (c.value.type === 'bool') {
      pass(`${k.name}.count${i}`, 'group', { kind: 'counter', index: i }, c.value, (_e, v) => asF(v), 'count');
      return;
    }
    const signed = c.value.type === 'i32';
    pass(
      `${k.name}.count${i}:h`,
      'group',
      { kind: 'counter', index: i, half: 'h' },
      c.value,
      (e, v) => (signed ? e.let(`${asP(v).h} >= 32768 ? ${asP(v).h} - 65536 : ${asP(v).h}`) : asP(v).h),
      'count',
    );
    pass(
      `${k.name}.count${i}:l`,
      'group',
      { kind: 'counter', index: i, half: 'l' },
      c.value,
      (_e, v) => asP(v).l,
      'count',
    );
  });

  // Uniform columns follow the constant table, whose size is only known now.
  const uniformBase = HEAD + constants.length;
  const finished = passes.map((ps) => {
    const params = ps.arrays.map((a, i) => (a === 'aux' ? 'aux' : `a${i}`)).join(', ');
    const src = ps.source.replace('@UNIFORMS@', String(uniformBase));
    return {
      ...ps,
      source: `function (${params}) {\n${src
        .split('\n')
        .map((l) => '  ' + l)
        .join('\n')}\n}`,
    };
  });
  const header = `// kernel ${k.name} for gpu.js: groupSize ${G}; aux = [n, g0, g1, rowsAt, hasRows, R, ${constants.length} constants, rows of ${S} uniforms (${p.columns.join(', ') || 'none'}), row of each group]`;
  const source = [
    header,
    ...finished.map(
      (ps) => `// pass ${ps.name}: a thread per ${ps.over}; arrays ${ps.arrays.join(', ')}\n${ps.source}`,
    ),
  ].join('\n\n');
  return { passes: finished, constants, uniformBase, groupSize: G, source };
}
