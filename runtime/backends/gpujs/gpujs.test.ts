// The gpu.js backend against the JS backend, kernel by kernel, bit for bit where the operation is
// exact. Modes: cpu and webasm always, webgpu where an adapter answers (see testModes). The modes
// that cannot run here must fail with a clear error.

import { describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { compile } from '../../../compiler/render/js/compile.ts';
import { GpujsBackend } from './gpujs.ts';
import { both, testModes } from '../../../test/gpujs-harness.ts';
import { bench } from '../../../test/gpujs-bench.ts';
import { flashAdamW } from '../../gpujs-flashadamw.ts';
import { JsBackend } from '../js/js.ts';
import type { GpujsMode } from './device.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';

const modes: GpujsMode[] = await testModes();

const mismatches = (a: FieldArray, b: FieldArray): number[] => {
  const bad: number[] = [];
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad.push(i);
  return bad;
};

function randomF32(n: number, seed: number, spread = 8): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 2 ** Math.floor(next() * spread * 2 - spread));
}

describe.each(modes)('gpu.js %s mode', (mode) => {
  let backend: GpujsBackend;
  const get = async () => (backend ??= await GpujsBackend.create(mode));

  it('f32 arithmetic, uniforms and a partial launch match the JS kernel bit for bit', async () => {
    const a = d.field('a', 'f32'), b = d.field('b', 'f32');
    const k = kernel({ name: 'arith', groupSize: 4, outputs: [
      { field: 'a', storage: 'f32', axis: 'element', value: d.add(d.mul(a, d.uniform('s')), d.div(b, d.add(d.abs(a), 1))) },
      { field: 'c', storage: 'f32', axis: 'element', value: d.select(d.lt(a, b), d.sqrt(d.abs(b)), d.min(a, d.neg(b))) },
    ] });
    const n = 37;
    const data = { a: randomF32(40, 1), b: randomF32(40, 2), c: new Float32Array(40) };
    const r = await both(await get(), k, data, { s: 0.3 }, n, [2, 8]);
    expect(mismatches(r.js.a!, r.gpu.a!)).toEqual([]);
    expect(mismatches(r.js.c!, r.gpu.c!)).toEqual([]);
  });

  it('bf16 encode (bitcast, shifts, masks, integer add) matches bit for bit', async () => {
    const x = d.field('x', 'f32');
    const bits = d.asU32(x);
    const rne = d.shr(d.add(bits, d.add(0x7fff, d.and(d.shr(bits, 16), 1))), 16);
    const back = d.asF32(d.shl(d.field('w', 'u16'), 16));
    const k = kernel({ name: 'bf16', groupSize: 32, outputs: [
      { field: 'w', storage: 'u16', axis: 'element', value: rne },
      { field: 'y', storage: 'f32', axis: 'element', value: back },
      { field: 'u', storage: 'u32', axis: 'element', value: d.asU32(x) },
    ] });
    const n = 200;
    const xs = randomF32(n, 3, 60);
    xs.set([0, -0, Infinity, -Infinity, NaN, 1e-40, -3e-39, 3.4028234663852886e38, 2 ** -126, 1.5, -2.75]);
    const w = Uint16Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 16);
    const r = await both(await get(), k, { x: xs, w, y: new Float32Array(n), u: new Uint32Array(n) }, {}, n);
    // lavapipe flushes subnormals to zero and drops the sign of zero (docs/gpujs.md): only there.
    const ok = (i: number) => mode === 'webgpu' && Math.abs(xs[i]!) < 2 ** -126;
    expect(mismatches(r.js.w!, r.gpu.w!).filter((i) => !ok(i))).toEqual([]);
    expect(mismatches(r.js.u!, r.gpu.u!).filter((i) => !ok(i))).toEqual([]);
    expect(mismatches(r.js.y!, r.gpu.y!)).toEqual([]);
  });
});

describe.each(modes)('gpu.js %s mode, group axis and rows', (mode) => {
  it('a quantizing kernel (groupMax, group output, two uniform rows, partial groups) matches bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const g = d.field('g', 'f32'), m = d.mul(d.f32(d.field('m', 'i8')), d.field('m_scale', 'f32', 'group'));
    const beta = d.uniform('beta');
    const m2 = d.add(d.mul(beta, m), d.mul(d.sub(1, beta), g));
    const scale = d.max(d.groupMax(d.abs(m2)), 1e-12);
    const k = kernel({ name: 'quant', groupSize: 8, outputs: [
      { field: 'm', storage: 'i8', axis: 'element', value: d.i32(d.roundAway(d.mul(d.div(m2, scale), 127))) },
      { field: 'm_scale', storage: 'f32', axis: 'group', value: scale },
    ], counters: [{ name: 'big', value: d.gt(d.abs(g), 1) }] });
    const n = 61, G = 8, nG = Math.ceil(n / G);
    const gs = randomF32(n, 9, 4);
    const codes = Int8Array.from({ length: n }, (_, i) => ((i * 37) % 255) - 127);
    const scales = Float32Array.from({ length: nG }, (_, i) => 0.01 * (i + 1));
    const js = compile(k);
    const rows = [{ beta: 0.9 }, { beta: 0.5 }];
    const rowOf = Uint32Array.from({ length: nG }, (_, i) => i % 2);
    const jf = { g: gs.slice(), m: codes.slice(), m_scale: scales.slice() };
    const jc = js.run({ fields: jf, uniforms: rows, rowOf, groups: [1, nG], length: n }).counters;
    const prog = await b.compile(k);
    const bufs = { g: b.alloc('f32', n), m: b.alloc('i8', n), m_scale: b.alloc('f32', nG) };
    await b.write(bufs.g, gs); await b.write(bufs.m, codes); await b.write(bufs.m_scale, scales);
    const R = b.alloc('u32', nG); await b.write(R, rowOf);
    const counts = await b.run(prog, { bindings: bufs, uniforms: js.uniformTable(rows), rowOf: R, groups: [1, nG], length: n });
    expect(counts).toEqual([jc.big]);
    expect(mismatches(jf.m, await b.read(bufs.m))).toEqual([]);
    expect(mismatches(jf.m_scale, await b.read(bufs.m_scale))).toEqual([]);
    expect(b.launches).toBe(1);
    expect(b.calls).toBe(4); // groupMax, m, m_scale, counter
  });

  it('bitcasts round-trip every exponent, both signs, boundary mantissas', async () => {
    const b = await GpujsBackend.create(mode);
    const xs: number[] = [];
    const u = new Uint32Array(1), f = new Float32Array(u.buffer);
    for (let e = 0; e < 255; e++) for (const m of [0, 1, 0x400000, 0x7fffff, 0x123457]) for (const s of [0, 1]) { u[0] = (s << 31) | (e << 23) | m; xs.push(f[0]!); }
    const x = d.field('x', 'f32');
    const k = kernel({ name: 'bits', groupSize: 32, outputs: [
      { field: 'u', storage: 'u32', axis: 'element', value: d.asU32(x) },
      { field: 'y', storage: 'f32', axis: 'element', value: d.asF32(d.asU32(x)) },
      { field: 'i', storage: 'i32', axis: 'element', value: d.i32(x) },
    ] });
    const n = xs.length;
    const r = await both(b, k, { x: Float32Array.from(xs), u: new Uint32Array(n), y: new Float32Array(n), i: new Int32Array(n) }, {}, n);
    const flushed = (i: number) => mode === 'webgpu' && Math.abs(xs[i]!) < 2 ** -126;
    for (const fld of ['u', 'y', 'i']) expect(mismatches(r.js[fld]!, r.gpu[fld]!).filter((i) => !flushed(i)), fld).toEqual([]);
  });
});

describe('gpu.js modes that cannot run here', () => {
  it.each(['headlessgl', 'webgl', 'webgl2'] as const)('%s fails with the reason', async (mode) => {
    await expect(GpujsBackend.create(mode)).rejects.toThrow(new RegExp(`mode ${mode} is not available here: it needs`));
  });
  it('an unknown mode is refused by name', async () => {
    await expect(GpujsBackend.create('metal' as GpujsMode)).rejects.toThrow(/unknown mode metal/);
  });
});

describe.each(modes)('gpu.js %s mode, a FlashAdamW step (runtime/gpujs-flashadamw.ts)', (mode) => {
  it('three steps leave every field bit-identical to the JS backend', async () => {
    const ref = await bench(new JsBackend(), 1000, 2);
    const b = await GpujsBackend.create(mode);
    const r = await bench(b, 1000, 2, ref.result);
    for (const f of Object.keys(ref.result)) expect(mismatches(ref.result[f]!, r.result[f]!), f).toEqual([]);
    expect(b.launches).toBe(3);
    expect(r.row.deviceBytesPerParam).toBeCloseTo(20.25, 1); // five f32 arrays + two f32 scales per 32
  });
});

describe('gpu.js webasm mode on its worker pool', () => {
  it('a FlashAdamW step is bit-identical to the JS backend', async () => {
    const ref = await bench(new JsBackend(), 3000, 2);
    const b = await GpujsBackend.create('webasm', { threads: true });
    const r = await bench(b, 3000, 2, ref.result);
    for (const f of Object.keys(ref.result)) expect(mismatches(ref.result[f]!, r.result[f]!), f).toEqual([]);
    b.dispose();
  });
});

describe.runIf(modes.includes('webgpu'))('gpu.js webgpu mode and V8 on-stack replacement', () => {
  it('a hot loop beside the live device does not kill the process (--no-use-osr is set)', async () => {
    const b = await GpujsBackend.create('webgpu');
    const k = kernel({ name: 'osr', outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }] });
    for (let round = 0; round < 3; round++) {
      const r = await both(b, k, { x: new Float32Array(64) }, {}, 64);
      expect(mismatches(r.js.x!, r.gpu.x!)).toEqual([]);
      let s = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < 300) for (let i = 0; i < 1e5; i++) s += Math.sqrt(i) * 1e-9;
      expect(s).toBeGreaterThan(0);
    }
  });
});

describe('gpu.js launch checks', () => {
  it('a field shorter than the launch needs is refused by name', async () => {
    const b = await GpujsBackend.create('cpu');
    const k = kernel({ name: 'short', outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }] });
    const prog = await b.compile(k);
    const x = b.alloc('f32', 10);
    await expect(b.run(prog, { bindings: { x }, uniforms: new Float32Array(1), rowOf: null, groups: [0, 1], length: 20 })).rejects.toThrow(/field x has 10 entries, needs 20/);
    await expect(b.run(prog, { bindings: {}, uniforms: new Float32Array(1), rowOf: null, groups: [0, 1], length: 10 })).rejects.toThrow(/field x is not bound/);
  });
});

describe('gpu.js shared values (compiler/render/gpujs/share.ts)', () => {
  it('FlashAdamW shares its costly f32 values across output passes, with or without sharing bit-identical', async () => {
    const ref = await bench(new JsBackend(), 700, 1);
    for (const share of [true, false]) {
      const b = await GpujsBackend.create('webasm', { share });
      const r = await bench(b, 700, 1, ref.result);
      for (const f of Object.keys(ref.result)) expect(mismatches(ref.result[f]!, r.result[f]!), `${f}, share ${share}`).toEqual([]);
      const plan = (await b.compile(flashAdamW())).source;
      expect((plan.match(/\/\/ pass flashAdamW\.shared/g) ?? []).length, `share ${share}`).toBe(share ? 3 : 0);
    }
  });
});

describe.each(modes)('gpu.js %s mode, integer division', (mode) => {
  it('u32 and i32 division (÷0, MIN ÷ −1, signs, large values) match bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const vals = [0, 1, -1, 2, 3, 7, -7, 65535, 65536, 2 ** 31 - 1, -(2 ** 31), 123456789, -987654321, 0x7fff, 2 ** 24 + 1];
    const as: number[] = [], bs: number[] = [];
    for (const x of vals) for (const y of vals) { as.push(x); bs.push(y); }
    const n = as.length;
    const k = kernel({ name: 'idiv', outputs: [
      { field: 'qi', storage: 'i32', axis: 'element', value: d.div(d.field('a', 'i32'), d.field('b', 'i32')) },
      { field: 'qu', storage: 'u32', axis: 'element', value: d.div(d.u32(d.field('a', 'i32')), d.u32(d.field('b', 'i32'))) },
    ] });
    const r = await both(b, k, { a: Int32Array.from(as), b: Int32Array.from(bs), qi: new Int32Array(n), qu: new Uint32Array(n) }, {}, n);
    expect(mismatches(r.js.qi!, r.gpu.qi!)).toEqual([]);
    expect(mismatches(r.js.qu!, r.gpu.qu!)).toEqual([]);
  });
});
