// groupSum in the gpu.js renderer, without gpu.js: the passes are plain JavaScript functions of
// `this.thread.x`, so the cpu-mode rendering (Math.fround after each f32 operation) runs here as
// gpu.js's cpu mode would run it, and must store the oracle's bits (compiler/ir/interpret.ts: the
// group's elements added in element order, in f32, from +0). The modes that add in f32 natively
// (webasm, webgpu) run the same kernels in runtime/backends/gpujs/gpujs.test.ts.
import { describe, expect, it } from 'vitest';
import * as d from '../../../dsl/ops.ts';
import { interpret } from '../../ir/interpret.ts';
import { kernel } from '../../ir/kernel.ts';
import { prepare } from '../../ir/pipeline.ts';
import type { GpujsPass, GpujsPlan } from './plan.ts';
import { BLOCKS_ARRAY, HEAD, LANES, STEP_ARRAY, lanesName, reductionName } from './plan.ts';
import { renderGpujs } from './render.ts';

const x = d.field('x', 'f32'),
  y = d.field('y', 'f32');
const n = 61,
  G = 16;
const groups = Math.ceil(n / G);
// Order-sensitive values (1e8 swallows small terms unless they come first), a group of −0 only
// (from +0, its sum is +0), NaN and +∞ in the ragged last group.
const X = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1e8 : i % 3 === 0 ? -1e8 : 0.3 + i));
X.fill(-0, 16, 32);
X[50] = NaN;
X[55] = Infinity;
const Y = Float32Array.from({ length: n }, (_, i) => 0.1 * (i % 5) - 0.2);

/** Run one pass as gpu.js's cpu mode does: a call per thread, `this.thread.x` its index. */
function runPass(plan: GpujsPlan, pass: GpujsPass, arrays: Record<string, Float32Array>, length: number) {
  const aux = new Float32Array(plan.uniformBase + 1);
  aux.set([n, 0, groups, plan.uniformBase, 0]);
  aux.set(plan.constants, HEAD);
  const fn = new Function(`return ${pass.source}`)() as (...a: Float32Array[]) => number;
  const args = pass.arrays.map((a) => (a === 'aux' ? aux : arrays[a]!));
  return Float32Array.from({ length }, (_, i) => fn.apply({ thread: { x: i } }, args));
}

describe('gpu.js groupSum', () => {
  // Two levels (the second sums y times the first), a group output of the second and an element
  // output reading the first.
  const first = d.groupSum(d.mul(x, 1.5));
  const second = d.groupSum(d.mul(y, first));
  const k = kernel({
    name: 'sums',
    groupSize: G,
    outputs: [
      { field: 's', storage: 'f32', axis: 'group', value: second },
      { field: 'e', storage: 'f32', axis: 'element', value: d.mul(y, first) },
    ],
  });
  const want = { s: new Float32Array(groups), e: new Float32Array(n) };
  interpret(k, { fields: { x: X, y: Y, ...want }, uniforms: [{}], length: n });
  const plan = renderGpujs(prepare(k), { fround: true, signedZeros: true });

  it('renders a pass per level, which later passes read as arrays', () => {
    expect(plan.passes.map((p) => [p.name, p.over, p.target.kind])).toEqual([
      ['sums.sum0', 'group', 'reduction'],
      ['sums.sum1', 'group', 'reduction'],
      ['sums.s', 'group', 'field'],
      ['sums.e', 'element', 'field'],
    ]);
    expect(plan.passes[1]!.arrays).toContain(reductionName(0));
    expect(plan.passes[3]!.arrays).toContain(reductionName(0));
  });

  it('the cpu rendering adds in element order from +0, rounding each addition: the oracle bits', () => {
    const arrays: Record<string, Float32Array> = { x: X, y: Y, s: new Float32Array(groups), e: new Float32Array(n) };
    for (const [i, p] of plan.passes.entries()) {
      const out = runPass(plan, p, arrays, p.over === 'group' ? groups : n);
      arrays[p.target.kind === 'reduction' ? reductionName(p.target.index) : (p.target as { field: string }).field] =
        out;
      if (i === 0) {
        let acc = 0;
        for (let j = 0; j < G; j++) acc = Math.fround(acc + Math.fround(X[j]! * 1.5));
        expect(out[0]).toBe(acc);
        expect(Object.is(out[1], 0)).toBe(true); // −0 sixteen times, from +0
        expect(out[3]).toBeNaN();
      }
    }
    expect([...arrays.s!]).toEqual([...want.s]);
    expect([...arrays.e!]).toEqual([...want.e]);
  });
});

describe('gpu.js lane passes (a reduction pass with the combine on the device)', () => {
  // A reduction pass as compiler/ir/phases.ts makes it: `$red0` holds each group's sum.
  const n = 700;
  const Z = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1e8 : i % 3 === 0 ? -1e8 : 0.3 + i));
  const k = kernel({
    name: 'pass',
    groupSize: 1,
    outputs: [{ field: '$red0', storage: 'f32', axis: 'group', value: d.groupSum(d.mul(x, 1.5)) }],
  });
  const opts = { fround: true, signedZeros: true, reductionsOnDevice: true };
  const plan = renderGpujs(prepare(k, { reductionsOnDevice: true }), opts);
  const pass = plan.passes[0]!;
  /** One launch over groups [g0, g1) of a step over [s0, s1): the lanes after it (one block of all n groups). */
  const launch = (lanes: Float32Array, [g0, g1]: readonly [number, number], [s0, s1]: readonly [number, number]) => {
    const aux = new Float32Array(plan.uniformBase + 1);
    aux.set([n, g0, g1, plan.uniformBase, 0]);
    aux.set(plan.constants, HEAD);
    const arrays: Record<string, Float32Array> = {
      x: Z,
      aux,
      [BLOCKS_ARRAY]: Float32Array.of(0, n),
      [STEP_ARRAY]: Float32Array.of(0, s0, s1),
      [lanesName(0)]: lanes,
    };
    const fn = new Function(`return ${pass.source}`)() as (...a: Float32Array[]) => number;
    const args = pass.arrays.map((a) => arrays[a]!);
    return Float32Array.from({ length: LANES }, (_, i) => fn.apply({ thread: { x: i } }, args));
  };
  // Lane t: groups t, t + 256, … of [s0, s1) in order, each group's sum from +0 (one element here).
  const want = ([s0, s1]: readonly [number, number]) =>
    Float32Array.from({ length: LANES }, (_, t) => {
      let v = 0;
      for (let g = t; g < n; g += LANES)
        if (g >= s0 && g < s1) v = Math.fround(v + Math.fround(0 + Math.fround(Z[g]! * 1.5)));
      return v;
    });

  it('renders one lane pass for the output, and no group sum or partial field pass', () => {
    expect(plan.passes.map((p) => [p.name, p.over, p.target.kind])).toEqual([['pass.lanes0', 'lane', 'lanes']]);
  });

  it('lane t adds its groups t, t + 256, … in order; a step in two launches carries the lanes (the same bits as one)', () => {
    const stale = new Float32Array(LANES).fill(7);
    for (const step of [[0, n] as const, [100, 650] as const]) {
      const whole = launch(stale, step, step);
      expect([...whole]).toEqual([...want(step)]);
      // The second launch starts inside the block: it carries the first's lanes on.
      const first = launch(stale, [step[0], 300], step);
      expect([...launch(first, [300, step[1]], step)]).toEqual([...whole]);
    }
    // A block outside the step counts nothing: +0 in every lane, whatever was there.
    expect([...launch(stale, [0, 0], [n, n])]).toEqual([...new Float32Array(LANES)]);
  });
});
