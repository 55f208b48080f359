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
//      group; an i32/u32 field is two arrays (high and low 16-bit halves), so two passes. With
//      `reductionsOnDevice` (webgpu mode) a reduction pass's `$red<i>` outputs are lane passes
//      instead (pass.ts, plan.ts LANES): a thread per lane of a block of the device combine, adding
//      its groups' sums or maxima (each computed as in 1.) in the combine's order, so neither the
//      group reduction of 1. nor a per-group array is made for them; the backend's combine then
//      adds the lanes (runtime/backends/gpujs/combine.ts), at the end of the same launch;
//   4. one pass per counter array: a thread per group sums the group's counts (≤ groupSize, exact),
//      the host sums the groups.
// Every pass reads the fields as they were before the launch; the runtime swaps the new arrays in
// afterwards, which is what "outputs are written after all reads" means here. Threads outside the
// launched groups (or past the element count) return the old value, so an output array is always
// the whole field. The price of no kernel maps: more kernel calls, inputs read once per pass, and
// (for what step 2 does not share) recomputation.

import type { Expr, Storage } from '../../ir/ir.ts';
import * as ir from '../../ir/ir.ts';
import type { Kernel } from '../../ir/kernel.ts';
import { elementwise, groupLevels, kernel, roots } from '../../ir/kernel.ts';
import { REDUCTION_PREFIX } from '../../ir/phases.ts';
import type { Prepared } from '../../ir/pipeline.ts';
import { rewrite } from '../../ir/rewrite.ts';
import type { Emit } from './emit.ts';
import { pairToSmall } from './ints.ts';
import { legalize } from './legalize.ts';
import { passRenderer } from './pass.ts';
import type { GpujsPass, GpujsPlan, RenderOptions } from './plan.ts';
import { HEAD, arrayName, split } from './plan.ts';
import { sharedValues } from './share.ts';
import type { Value } from './values.ts';
import { asF, asP } from './values.ts';

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
  const render = passRenderer({ kernel: k, opts, konst, isElem, column, columns: S, reductionIndex, sharedIndex });
  const pass = (...a: Parameters<typeof render>) => void passes.push(render(...a));
  // With the combine on the device, a reduction pass's outputs `$red<i>` are lanes of the combine.
  const lanes = k.outputs.filter(
    (o) =>
      opts.reductionsOnDevice &&
      o.axis === 'group' &&
      o.field.startsWith(REDUCTION_PREFIX) &&
      ir.isGroupReduction(o.value) &&
      o.storage === 'f32',
  );
  const rest = k.outputs.filter((o) => !lanes.includes(o));
  // The group reductions something other than a lane pass's own root reads.
  const read = new Set<Expr>(
    ir
      .topo([
        ...rest.map((o) => o.value),
        ...k.counters.map((c) => c.value),
        ...lanes.map((o) => (o.value as ir.GroupMax | ir.GroupSum).x),
      ])
      .filter(ir.isGroupReduction),
  );

  // 1. Group maxima and sums, level by level (a later level reads the arrays of earlier ones).
  reductions.forEach((m, i) => {
    if (!read.has(m)) return;
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
  // 3. Outputs: a lane pass per `$red<i>` (its groups' sums or maxima in the combine's order), then
  // the others, each value narrowed to what its storage holds.
  for (const o of lanes) {
    const fn = o.value.op === 'groupSum' ? 'sum' : 'max';
    const reduction = Number(o.field.slice(REDUCTION_PREFIX.length));
    const target = { kind: 'lanes', reduction, field: o.field } as const;
    pass(`${k.name}.lanes${reduction}`, 'lane', target, o.value, (_e, v) => asF(v), fn);
  }
  const store =
    (s: Storage, half?: 'h' | 'l') =>
    (e: Emit, v: Value): string => {
      if (s === 'f32') return asF(v);
      const p = asP(v);
      if (half) return half === 'h' ? p.h : p.l;
      return pairToSmall(e, p, s === 'u8' || s === 'i8' ? 8 : 16, s === 'i8' || s === 'i16');
    };
  for (const o of rest) {
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
