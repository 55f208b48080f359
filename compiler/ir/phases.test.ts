// Reductions in the IR: the phase split (levels, the update reading uniforms, prepare refusing an
// unsplit kernel) and groupSum, the one new op a reduction pass renders: the JS and WebAssembly
// engines add in element order, bit for bit as the oracle does; WGSL in its threads' order, which
// the oracle follows when told (sumLanes). (gpu.js renders
// it: compiler/render/gpujs/render.test.ts, runtime/backends/gpujs/reductions.test.ts.)
import { describe, expect, it } from 'vitest';
import * as d from '../../dsl/ops.ts';
import { interpret } from './interpret.ts';
import { kernel, KernelError, uniformsOf } from './kernel.ts';
import { prepare } from './pipeline.ts';
import { splitPhases } from './phases.ts';
import { JsBackend } from '../../runtime/backends/js/js.ts';
import { renderWgsl } from '../render/wgsl/render.ts';

const x = d.field('x', 'f32'),
  y = d.field('y', 'f32');

describe('splitPhases', () => {
  // LAMB's shape: ‖u‖ where u reads a global norm needs that norm first: two levels.
  const norm = d.globalSum(d.square(x));
  const coef = d.min(1, d.div(1, d.sqrt(norm)));
  const u = d.mul(y, coef);
  const k = kernel({
    name: 'k',
    groupSize: 4,
    outputs: [{ field: 'y', storage: 'f32', axis: 'element', value: d.mul(u, d.tensorSum(d.square(u))) }],
  });

  it('levels reductions by what they read, and the update reads each as a uniform', () => {
    const ph = splitPhases(k);
    expect(ph.reductions.map((r) => [r.name, r.fn, r.scope, r.level])).toEqual([
      ['$red0', 'sum', 'global', 1],
      ['$red1', 'sum', 'tensor', 2],
    ]);
    expect(ph.passes.map((p) => p.outputs.map((o) => [o.field, o.axis, o.value.op]))).toEqual([
      [['$red0', 'group', 'groupSum']],
      [['$red1', 'group', 'groupSum']],
    ]);
    expect(uniformsOf(ph.passes[1]!)).toEqual(['$red0']); // level 2 reads level 1's result
    expect(uniformsOf(ph.update)).toEqual(['$red0', '$red1']);
    expect(() => prepare(ph.update)).not.toThrow();
  });

  it('an unsplit kernel is refused by prepare, so no renderer ever sees a reduce', () => {
    expect(() => prepare(k)).toThrow(KernelError);
    expect(() => prepare(k)).toThrow('kernel k: it holds a reduction');
  });

  it('a kernel without reductions is its own update', () => {
    const plain = kernel({ outputs: [{ field: 'y', storage: 'f32', axis: 'element', value: d.add(x, 1) }] });
    expect(splitPhases(plain)).toEqual({ reductions: [], passes: [], update: plain });
  });
});

describe('groupSum', () => {
  // Values whose f32 sum depends on the order (1e8 swallows small terms unless they come first),
  // a ragged last group, NaN and ±Inf groups.
  const n = 45,
    G = 16;
  const X = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1e8 : i % 3 === 0 ? -1e8 : 0.3 + i));
  X[33] = NaN;
  X[40] = Infinity;
  const k = kernel({
    name: 'sum',
    groupSize: G,
    outputs: [{ field: 's', storage: 'f32', axis: 'group', value: d.groupSum(d.mul(x, 1.5)) }],
  });
  const groups = Math.ceil(n / G);

  it('adds in element order from +0, in f32 (the oracle)', () => {
    const S = new Float32Array(groups);
    interpret(k, { fields: { x: X, s: S }, uniforms: [{}], length: n });
    let acc = 0;
    for (let i = 0; i < G; i++) acc = Math.fround(acc + Math.fround(X[i]! * 1.5));
    expect(S[0]).toBe(acc);
    expect(S[2]).toBeNaN();
  });

  it.each(['js', 'wasm'] as const)('the %s engine stores the oracle bits', async (engine) => {
    const want = new Float32Array(groups);
    interpret(k, { fields: { x: X, s: want }, uniforms: [{}], length: n });
    const b = new JsBackend({ engine });
    const xb = b.alloc('f32', n),
      sb = b.alloc('f32', groups);
    await b.write(xb, X);
    const p = await b.compile(k);
    await b.run(p, {
      bindings: { x: xb, s: sb },
      uniforms: new Float32Array(1),
      rowOf: null,
      groups: [0, groups],
      length: n,
    });
    expect([...((await b.read(sb)) as Float32Array)]).toEqual([...want]);
  });

  it('WGSL adds each thread’s elements in order, then the threads’ sums pairwise: the oracle with sumLanes', () => {
    const w = renderWgsl(prepare(k), { subgroupMinSize: 4 });
    expect([w.threadsPerGroup, w.elementsPerThread]).toEqual([2, 8]);
    expect(w.source).toMatch(/s\d+ = s\d+ \+ subgroupShuffleXor\(s\d+, 1u\);/);
    // Each product it adds is kept from contraction into an fma with the add (exact mode).
    expect(w.source).toMatch(/= keep\(t\d+_0 \* 1\.5f\);/);
    const lanes = new Float32Array(groups);
    interpret(k, { fields: { x: X, s: lanes }, uniforms: [{}], length: n, sumLanes: 2 });
    const half = (from: number) => {
      let acc = 0;
      for (let i = from; i < from + G / 2; i++) acc = Math.fround(acc + Math.fround(X[i]! * 1.5));
      return acc;
    };
    expect(lanes[0]).toBe(Math.fround(half(0) + half(G / 2)));
    // This group's sum depends on the order: the lanes are not the JS engines' element order.
    const seq = new Float32Array(groups);
    interpret(k, { fields: { x: X, s: seq }, uniforms: [{}], length: n });
    expect(lanes[0]).not.toBe(seq[0]);
  });
});
