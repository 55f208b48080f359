// Targeted cases for the WebAssembly renderer that random kernels rarely reach: a group maximum
// whose ±0 tie must resolve to the first zero in element order (lanes see elements out of order),
// the ops rendered lane by lane (integer ÷, per-element shifts, exp2/log2) and in f64 (rsqrt), and
// round-half-away at its edges. Each is checked against the generated-JS reference.

import { describe, expect, it } from 'vitest';
import { compile } from '../js/compile.ts';
import type { Kernel } from '../../ir/kernel.ts';
import { fields, kernel } from '../../ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { JsBackend } from '../../../runtime/backends/js/js.ts';
import { simdSupported } from '../../../runtime/backends/js/wasm-module.ts';
import type { FieldArray } from '../../ir/kernel.ts';

async function both(k: Kernel, data: Record<string, FieldArray>, n: number) {
  const ref = Object.fromEntries(Object.entries(data).map(([f, a]) => [f, a.slice()]));
  const want = compile(k).run({ fields: ref, length: n });
  const b = new JsBackend({ engine: 'wasm' });
  const bind = Object.fromEntries(
    await Promise.all(
      fields(k).map(async (f) => {
        const buf = b.alloc(f.storage, data[f.field]!.length);
        await b.write(buf, data[f.field]!);
        return [f.field, buf] as const;
      }),
    ),
  );
  const counters = await b.run(await b.compile(k), {
    bindings: bind,
    uniforms: compile(k).uniformTable([{}]),
    rowOf: null,
    groups: [0, Math.ceil(n / k.groupSize)],
    length: n,
  });
  const got = Object.fromEntries(
    await Promise.all(Object.entries(bind).map(async ([f, buf]) => [f, await b.read(buf)] as const)),
  );
  return { want: ref, got, counters, wantCounters: k.counters.map((c) => want.counters[c.name]) };
}

describe.runIf(simdSupported)('WebAssembly renderer edge cases', () => {
  it('groupMax ties between −0 and +0 resolve to the first zero in element order', async () => {
    // Lane 0 sees −1, +0 (element 4); lane 1 sees −0 (element 1) first: the answer is −0.
    const x = d.field('x', 'f32');
    const k = kernel({
      name: 'tie',
      groupSize: 8,
      outputs: [{ field: 's', storage: 'u32', axis: 'group', value: d.asU32(d.groupMax(x)) }],
    });
    const xs = Float32Array.of(-1, -0, 0, -1, 0, -1, -1, -1, /* group 2 */ -2, -3, -0, 0, -5, -0, 0, -4);
    const r = await both(k, { x: xs, s: new Uint32Array(2) }, 16);
    expect(Array.from(r.want.s!)).toEqual([0x80000000, 0x80000000]);
    expect(Array.from(r.got.s!)).toEqual(Array.from(r.want.s!));
  });

  it('lane-by-lane and f64 ops match generated JS bit for bit', async () => {
    const x = d.field('x', 'f32'),
      i = d.field('i', 'i32'),
      j = d.field('j', 'i32');
    const k = kernel({
      name: 'lanes',
      groupSize: 4,
      outputs: [
        { field: 'q', storage: 'i32', axis: 'element', value: d.div(i, j) },
        { field: 'h', storage: 'i32', axis: 'element', value: d.xor(d.shl(i, d.asU32(j)), d.shr(i, d.asU32(j))) },
        { field: 'e', storage: 'f32', axis: 'element', value: d.add(d.exp2(x), d.log2(x)) },
        { field: 'r', storage: 'f32', axis: 'element', value: d.rsqrt(x) },
        { field: 'a', storage: 'f32', axis: 'element', value: d.roundAway(x) },
      ],
      counters: [{ name: 'neg', value: d.lt(x, 0) }],
    });
    const xs = Float32Array.of(
      0.5,
      -0.5,
      2.5,
      -2.5,
      0.49999997,
      -0.49999997,
      8388607.5,
      -0,
      3,
      1e-40,
      Infinity,
      NaN,
      1.5,
      7.3,
      -7.5,
      2 ** 24,
    );
    const is = Int32Array.of(7, -7, -2147483648, 5, 0, 1, -1, 100, 3, 9, -9, 2147483647, 12, 6, -6, 1);
    const js = Int32Array.of(2, -2, -1, 0, 3, 33, 31, -1, 1, 4, 2, 5, 0, 7, 3, 40);
    const n = xs.length,
      zeros = () => new Float32Array(n);
    const r = await both(
      k,
      { x: xs, i: is, j: js, q: new Int32Array(n), h: new Int32Array(n), e: zeros(), r: zeros(), a: zeros() },
      n,
    );
    for (const f of ['q', 'h', 'e', 'r', 'a']) expect(Array.from(r.got[f]!), f).toEqual(Array.from(r.want[f]!));
    expect(r.counters).toEqual(r.wantCounters);
  });
});
