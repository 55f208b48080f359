// One pass of the gpu.js renderer (render.ts): the walk that writes a root's value in the gpu.js
// subset, inside the thread's guard and, for a group pass, the loop over the group's elements; a
// lane pass (plan.ts LANES) wraps that group loop in a loop over the lane's groups of its block.

import type { Expr } from '../../ir/ir.ts';
import * as ir from '../../ir/ir.ts';
import type { Kernel } from '../../ir/kernel.ts';
import { REDUCTION_PREFIX } from '../../ir/phases.ts';
import { Emit } from './emit.ts';
import { pairFromSmall } from './ints.ts';
import type { GpujsPass, PassTarget, RenderOptions } from './plan.ts';
import {
  BLOCKS_ARRAY,
  LANES,
  LANE_STEPS,
  REDUCTIONS_ARRAY,
  STEP_ARRAY,
  arrayName,
  lanesName,
  reductionName,
  sharedName,
  split,
} from './plan.ts';
import type { Value } from './values.ts';
import { asF, asP, binary, bitcast, cast, constBits, unary } from './values.ts';

/** What every pass of one kernel shares (renderGpujs builds it once). */
export interface PassContext {
  readonly kernel: Kernel;
  readonly opts: RenderOptions;
  readonly konst: (v: number) => string;
  readonly isElem: (e: Expr) => boolean;
  /** A uniform's column in a row of `columns`. */
  readonly column: ReadonlyMap<string, number>;
  readonly columns: number;
  readonly reductionIndex: ReadonlyMap<Expr, number>;
  readonly sharedIndex: ReadonlyMap<Expr, number>;
}

/**
 * The pass renderer of one kernel. A pass: `target` is computed from `root`; `reduce` says how a
 * group pass combines elements: 'max' and 'sum' compute `root` (a groupMax or groupSum) from its
 * argument, 'count' adds up a counter's integer values in the group (the host adds the groups).
 */
export function passRenderer(cx: PassContext) {
  const { kernel: k, opts, konst, isElem, column, columns: S, reductionIndex, sharedIndex } = cx;
  const G = k.groupSize;
  return (
    name: string,
    over: 'element' | 'group' | 'lane',
    target: PassTarget,
    root: Expr,
    finish: (e: Emit, v: Value) => string,
    reduce?: 'max' | 'sum' | 'count',
    old?: string,
    reuse = false,
  ): GpujsPass => {
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
    const sum = (a: string, b: string) => (opts.fround ? `Math.fround(${a} + ${b})` : `${a} + ${b}`);

    // A thread per lane t of block b of the combine (BLOCKS_ARRAY, arena groups): `lane` adds the
    // block's groups t, t + LANES, … that lie in this launch and in the step, in order, each
    // group's value computed by `group` (which sets `acc`) in element order, as a group pass does.
    // It starts from the value the step's earlier launches left (a chunk before this one held some
    // of the block's groups), else from +0 (−∞ for a max); a block outside the step is +0 (−∞),
    // one the launch misses keeps its lanes. So the lanes never depend on how the step is chunked.
    const laneLoop = (reduction: number, fn: 'max' | 'sum', group: string[], acc: string): string[] => {
      const [B, L, P] = [arg(BLOCKS_ARRAY), arg(lanesName(reduction)), arg(STEP_ARRAY)];
      const empty = fn === 'sum' ? konst(0) : konst(-Infinity);
      const add =
        fn === 'sum' ? `lane = ${sum('lane', acc)};` : `if (${pre.nan('lane')} || ${acc} > lane) { lane = ${acc}; }`;
      return [
        'let x0 = this.thread.x;',
        `let lb = Math.floor(x0 / ${LANES});`,
        `let lt = x0 - lb * ${LANES};`,
        `let old = ${L}[x0];`,
        `let bf = ${B}[2 * lb];`,
        `let bn = ${B}[2 * lb + 1];`,
        `let la = ${P}[0] + aux[1];`,
        `let lz = ${P}[0] + aux[2];`,
        `if (bf + bn <= ${P}[1] || bf >= ${P}[2]) { return ${empty}; }`,
        'if (bf + bn <= la || bf >= lz) { return old; }',
        `let lane = ${empty};`,
        `if ((bf > ${P}[1] ? bf : ${P}[1]) < la) { lane = old; }`,
        `for (let m = 0; m < ${LANE_STEPS}; m++) {`,
        `  let ga = bf + lt + m * ${LANES};`,
        `  if (ga < bf + bn && ga >= la && ga < lz && ga >= ${P}[1] && ga < ${P}[2]) {`,
        `    let g = ga - ${P}[0];`,
        ...group.map((l) => '    ' + l),
        `    ${add}`,
        '  }',
        '}',
      ];
    };
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
    const rowOf = ['let row = aux[aux[3] + g * aux[4]];', `let r = row * ${S} + @UNIFORMS@;`];
    if (over === 'element') {
      body.push('let i = this.thread.x;', `let g = Math.floor(i / ${G});`, `let old = ${oldRead};`);
      body.push('if (i >= aux[0] || g < aux[1] || g >= aux[2]) { return old; }', ...rowOf);
    } else if (over === 'group') {
      body.push('let g = this.thread.x;', `let old = ${oldRead};`);
      body.push('if (g < aux[1] || g >= aux[2]) { return old; }', ...rowOf);
    }
    let result: string;
    if (reduce) {
      const x = own ? (own as ir.GroupMax | ir.GroupSum).x : root;
      // A sum starts from +0 read from the constant table, where no shader compiler sees it: with a
      // literal, webgpu mode's fast math folds 0 + x to x, and a group of −0 sums to −0, not +0.
      const acc = pre.mut(reduce === 'max' ? pre.lit(NaN) : reduce === 'sum' ? pre.opaque(0) : '0');
      const v = valueDeep(x);
      const fin = finish(loop, v);
      if (reduce === 'max') loop.line(`if (${loop.nan(acc)} || ${fin} > ${acc}) { ${acc} = ${fin}; }`);
      else if (reduce === 'sum') loop.line(`${acc} = ${sum(acc, fin)};`);
      else loop.line(`${acc} = ${acc} + ${fin};`);
      const group = [
        ...pre.lines,
        `for (let j = 0; j < ${G}; j++) {`,
        `  let i = g * ${G} + j;`,
        '  if (i < aux[0]) {',
        ...loop.lines.map((l) => '    ' + l),
        '  }',
        '}',
      ];
      if (over === 'lane') {
        if (reduce === 'count' || target.kind !== 'lanes')
          throw new Error(`renderGpujs: lane pass ${name} adds no group reduction`);
        body.push(...laneLoop(target.reduction, reduce, [...rowOf, ...group], acc));
        result = 'lane';
      } else {
        body.push(...group);
        result = acc;
      }
    } else {
      const v = valueDeep(root);
      result = finish(over === 'element' ? loop : pre, v);
      for (const l of [pre.lines, loop.lines].flat()) body.push(l);
    }
    body.push(`return ${result};`);
    return { name, over, target, arrays: [...arrays, 'aux'], source: body.join('\n') };
  };
}
