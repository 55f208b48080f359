import { afterAll, describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import { compile } from '../../../compiler/render/js/compile.ts';
import * as d from '../../../dsl/ops.ts';
import type { Backend, DeviceBuffer } from '../backend.ts';
import { JsBackend } from './js.ts';
import { JsThreadsBackend } from './threads.ts';
import { createOptimizer } from '../../optimizer.ts';
import { adamw } from '../../../optim/index.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { prng } from '../../../props/prng.ts';

// A momentum step with an int8 state and a per-group scale: a group reduction, group-axis and
// element-axis outputs, two uniform rows and a counter, which is everything a split could break.
const p = d.field('p', 'f32'),
  g = d.field('g', 'f32');
const code = d.field('m', 'i8'),
  scale = d.field('m_scale', 'f32', 'group');
const m = d.add(d.mul(d.uniform('beta'), d.mul(d.f32(code), d.div(scale, 127))), d.mul(d.sub(1, d.uniform('beta')), g));
const absmax = d.groupMax(d.abs(m));
const safe = d.select(d.gt(absmax, 0), absmax, 1);
const K = kernel({
  name: 'threads-test',
  groupSize: 32,
  outputs: [
    { field: 'p', storage: 'f32', axis: 'element', value: d.sub(p, d.mul(d.uniform('lr'), m)) },
    { field: 'm', storage: 'i8', axis: 'element', value: d.i32(d.roundEven(d.mul(d.div(m, safe), 127))) },
    { field: 'm_scale', storage: 'f32', axis: 'group', value: safe },
  ],
  counters: [{ name: 'big', value: d.gt(d.abs(g), 1) }],
});

function random(n: number, seed: number, f: (r: number) => number): number[] {
  const r = prng(seed);
  return Array.from({ length: n }, () => f(r()));
}

async function runOn(
  b: Backend,
  n: number,
  groups: [number, number],
  steps: number,
): Promise<{ out: FieldArray[]; counts: number[][] }> {
  const nG = Math.ceil(n / 32);
  const init: Record<string, FieldArray> = {
    p: Float32Array.from(random(n, 1, (r) => r * 2 - 1)),
    g: Float32Array.from(random(n, 2, (r) => (r * 2 - 1) * 1.5)),
    m: Int8Array.from(random(n, 3, (r) => Math.floor(r * 255) - 127)),
    m_scale: Float32Array.from(random(nG, 4, (r) => r)),
  };
  const bind: Record<string, DeviceBuffer> = {};
  for (const [k, v] of Object.entries(init)) {
    bind[k] = b.alloc(k === 'm' ? 'i8' : 'f32', v.length);
    await b.write(bind[k]!, v);
  }
  const rowOf = b.alloc('u32', nG);
  await b.write(rowOf, Uint32Array.from(random(nG, 5, (r) => (r < 0.5 ? 0 : 1))));
  const prog = await b.compile(K);
  const uniforms = compile(K).uniformTable([
    { lr: 0.01, beta: 0.9 },
    { lr: 0.003, beta: 0.5 },
  ]);
  const counts: number[][] = [];
  for (let s = 0; s < steps; s++)
    counts.push(await b.run(prog, { bindings: bind, uniforms, rowOf, groups, length: n }));
  const out = await Promise.all(['p', 'm', 'm_scale'].map((k) => b.read(bind[k]!)));
  return { out, counts };
}

describe('JsThreadsBackend', () => {
  const backends: JsThreadsBackend[] = [];
  afterAll(() => backends.forEach((b) => b.dispose()));

  it.each([1, 2, 3])('is bit-identical to JsBackend with %i threads, counters summed', async (threads) => {
    const t = new JsThreadsBackend({ threads, minGroupsPerThread: 4 });
    backends.push(t);
    // 1000 elements (a ragged last group), a sub-range of groups that does not start at 0.
    for (const [n, groups] of [
      [1000, [0, 32]],
      [1000, [3, 29]],
      [40_000, [0, 1250]],
    ] as [number, [number, number]][]) {
      const ref = await runOn(new JsBackend(), n, groups, 3);
      const got = await runOn(t, n, groups, 3);
      expect(got.counts).toEqual(ref.counts);
      expect(ref.counts[0]![0]).toBeGreaterThan(0);
      got.out.forEach((a, i) =>
        expect(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).toEqual(
          new Uint8Array(ref.out[i]!.buffer, ref.out[i]!.byteOffset, ref.out[i]!.byteLength),
        ),
      );
    }
    expect(t.launches).toBe(9);
  });

  it('runs small launches on the calling thread and still agrees', async () => {
    const t = new JsThreadsBackend({ threads: 2 }); // default threshold: 10 groups stay local
    backends.push(t);
    const ref = await runOn(new JsBackend(), 300, [0, 10], 2);
    const got = await runOn(t, 300, [0, 10], 2);
    expect(got.counts).toEqual(ref.counts);
    got.out.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(ref.out[i]!)));
  });

  it('runs a whole FlashAdamW optimizer bit-identically to the JS backend', async () => {
    const t = new JsThreadsBackend({ threads: 2, minGroupsPerThread: 4 });
    backends.push(t);
    const params = () => ({
      a: Float32Array.from(random(5000, 11, (r) => r - 0.5)),
      b: { data: Float32Array.from(random(777, 12, (r) => r * 3)), shape: [7, 111] },
    });
    const grads = [1, 2, 3].map((s) => ({
      a: Float32Array.from(random(5000, 20 + s, (r) => (r - 0.5) * 0.1)),
      b: Float32Array.from(random(777, 30 + s, (r) => (r - 0.5) * 0.1)),
    }));
    const ref = await createOptimizer(adamw({ lr: 1e-2 }), params());
    const got = await createOptimizer(adamw({ lr: 1e-2 }), params(), { backend: t });
    for (const g of grads) expect(await got.step(g)).toEqual(await ref.step(g));
    const [rp, gp] = [await ref.readParams(), await got.readParams()];
    expect(Array.from(gp.a!)).toEqual(Array.from(rp.a!));
    expect(Array.from(gp.b!)).toEqual(Array.from(rp.b!));
    const [re, ge] = [(await ref.exportFp32()).a!, (await got.exportFp32()).a!];
    expect(Array.from(ge)).toEqual(Array.from(re));
    const init = params().a;
    expect(re.filter((x, i) => Math.abs(x - init[i]!) > 1e-3).length).toBeGreaterThan(4000); // it moved
    expect(t.launches).toBeGreaterThan(3);
  });

  it('gradient release (windowed gradient fields) splits correctly across workers', async () => {
    const t = new JsThreadsBackend({ threads: 3, minGroupsPerThread: 4 });
    backends.push(t);
    const params = () => ({
      a: Float32Array.from(random(3000, 41, (r) => r - 0.5)),
      b: Float32Array.from(random(9000, 42, (r) => r - 0.5)),
    });
    const opts = { gradientRelease: true } as const;
    const ref = await createOptimizer(adamw({ lr: 1e-2 }), params(), opts);
    const got = await createOptimizer(adamw({ lr: 1e-2 }), params(), { ...opts, backend: t });
    for (const s of [1, 2])
      for (const [name, n] of [
        ['b', 9000],
        ['a', 3000],
      ] as const) {
        const g = Float32Array.from(random(n, 50 + s + n, (r) => (r - 0.5) * 0.1));
        expect(await got.stepTensor(name, g)).toEqual(await ref.stepTensor(name, g));
      }
    const [re, ge] = [await ref.exportFp32(), await got.exportFp32()];
    expect(Array.from(ge.a!)).toEqual(Array.from(re.a!));
    expect(Array.from(ge.b!)).toEqual(Array.from(re.b!));
  });

  it('names the unbound field, rejects foreign buffers and use after dispose', async () => {
    const t = new JsThreadsBackend({ threads: 1 });
    const prog = await t.compile(K);
    const U = compile(K).uniformTable([{ lr: 0.1, beta: 0.9 }]);
    await expect(t.run(prog, { bindings: {}, uniforms: U, rowOf: null, groups: [0, 1], length: 32 })).rejects.toThrow(
      /field p is not bound/,
    );
    const js = new JsBackend();
    const bind = Object.fromEntries(['p', 'g', 'm_scale'].map((k) => [k, js.alloc('f32', 32)]));
    bind.m = js.alloc('i8', 32);
    await expect(t.run(prog, { bindings: bind, uniforms: U, rowOf: null, groups: [0, 1], length: 32 })).rejects.toThrow(
      /field p was not allocated by this backend/,
    );
    expect(() => new JsThreadsBackend({ threads: 0 })).toThrow(/threads must be a positive integer, got 0/);
    t.dispose();
    await expect(t.compile(K)).rejects.toThrow(/after dispose/);
  });
});
