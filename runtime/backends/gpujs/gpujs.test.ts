// The gpu.js backend against the oracle (compiler/ir/interpret.ts), kernel by kernel, bit for bit
// where the operation is exact. Modes: cpu and webasm always, webgpu where an adapter answers (see testModes). The modes
// that cannot run here must fail with a clear error.

import { describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { GpujsBackend } from './gpujs.ts';
import { both, testModes } from '../../../test/gpujs-harness.ts';
import { adamw } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { OracleBackend } from '../../../test/oracle.ts';
import type { Backend } from '../backend.ts';
import { createOptimizer } from '../../optimizer.ts';
import { prng } from '../../../props/prng.ts';
import { onBackend, onOracle } from '../../../test/harness.ts';
import type { GpujsMode } from './device.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';

const modes: GpujsMode[] = await testModes();

const mismatches = (a: FieldArray, b: FieldArray): number[] => {
  const bad: number[] = [];
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad.push(i);
  return bad;
};

/** n f32 values of random sign and magnitude 2^−spread … 2^spread. */
function randomF32(n: number, seed: number, spread = 8): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * spread * 2 - spread));
}

describe.each(modes)('gpu.js %s mode', (mode) => {
  let backend: GpujsBackend;
  const get = async () => (backend ??= await GpujsBackend.create(mode));

  it('f32 arithmetic, uniforms and a partial launch match the JS kernel bit for bit', async () => {
    const a = d.field('a', 'f32'),
      b = d.field('b', 'f32');
    const k = kernel({
      name: 'arith',
      groupSize: 4,
      outputs: [
        {
          field: 'a',
          storage: 'f32',
          axis: 'element',
          value: d.add(d.mul(a, d.uniform('s')), d.div(b, d.add(d.abs(a), 1))),
        },
        {
          field: 'c',
          storage: 'f32',
          axis: 'element',
          value: d.select(d.lt(a, b), d.sqrt(d.abs(b)), d.min(a, d.neg(b))),
        },
      ],
    });
    const n = 37;
    const data = { a: randomF32(40, 1), b: randomF32(40, 2), c: new Float32Array(40) };
    const r = await both(await get(), k, data, { s: 0.3 }, n, [2, 8]);
    expect(mismatches(r.want.a!, r.got.a!)).toEqual([]);
    expect(mismatches(r.want.c!, r.got.c!)).toEqual([]);
  });

  it('bf16 encode (bitcast, shifts, masks, integer add) matches bit for bit', async () => {
    const x = d.field('x', 'f32');
    const bits = d.asU32(x);
    const rne = d.shr(d.add(bits, d.add(0x7fff, d.and(d.shr(bits, 16), 1))), 16);
    const back = d.asF32(d.shl(d.field('w', 'u16'), 16));
    const k = kernel({
      name: 'bf16',
      groupSize: 32,
      outputs: [
        { field: 'w', storage: 'u16', axis: 'element', value: rne },
        { field: 'y', storage: 'f32', axis: 'element', value: back },
        { field: 'u', storage: 'u32', axis: 'element', value: d.asU32(x) },
      ],
    });
    const n = 200;
    const xs = randomF32(n, 3, 60);
    xs.set([0, -0, Infinity, -Infinity, NaN, 1e-40, -3e-39, 3.4028234663852886e38, 2 ** -126, 1.5, -2.75]);
    const w = Uint16Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 16);
    const r = await both(await get(), k, { x: xs, w, y: new Float32Array(n), u: new Uint32Array(n) }, {}, n);
    // lavapipe flushes subnormals to zero and drops the sign of zero (docs/gpujs.md): only there.
    const ok = (i: number) => mode === 'webgpu' && Math.abs(xs[i]!) < 2 ** -126;
    expect(mismatches(r.want.w!, r.got.w!).filter((i) => !ok(i))).toEqual([]);
    expect(mismatches(r.want.u!, r.got.u!).filter((i) => !ok(i))).toEqual([]);
    expect(mismatches(r.want.y!, r.got.y!)).toEqual([]);
  });
});

describe.each(modes)('gpu.js %s mode, group axis and rows', (mode) => {
  it('a quantizing kernel (groupMax, group output, two uniform rows, partial groups) matches bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const g = d.field('g', 'f32'),
      m = d.mul(d.f32(d.field('m', 'i8')), d.field('m_scale', 'f32', 'group'));
    const beta = d.uniform('beta');
    const m2 = d.add(d.mul(beta, m), d.mul(d.sub(1, beta), g));
    const scale = d.max(d.groupMax(d.abs(m2)), 1e-12);
    const k = kernel({
      name: 'quant',
      groupSize: 8,
      outputs: [
        { field: 'm', storage: 'i8', axis: 'element', value: d.i32(d.roundAway(d.mul(d.div(m2, scale), 127))) },
        { field: 'm_scale', storage: 'f32', axis: 'group', value: scale },
      ],
      counters: [{ name: 'big', value: d.gt(d.abs(g), 1) }],
    });
    const n = 61,
      G = 8,
      nG = Math.ceil(n / G);
    const gs = randomF32(n, 9, 4);
    const codes = Int8Array.from({ length: n }, (_, i) => ((i * 37) % 255) - 127);
    const scales = Float32Array.from({ length: nG }, (_, i) => 0.01 * (i + 1));
    const rows = [{ beta: 0.9 }, { beta: 0.5 }];
    const rowOf = Uint32Array.from({ length: nG }, (_, i) => i % 2);
    const c = { k, n, arrays: { g: gs, m: codes, m_scale: scales }, rows, rowOf, range: [1, nG] as const };
    const want = onOracle(c),
      got = await onBackend(b, c);
    expect(got.counters).toEqual(want.counters);
    expect(mismatches(want.arrays.m!, got.arrays.m!)).toEqual([]);
    expect(mismatches(want.arrays.m_scale!, got.arrays.m_scale!)).toEqual([]);
    expect(b.launches).toBe(1);
    expect(b.calls).toBe(4); // groupMax, m, m_scale, counter
  });

  it('bitcasts round-trip every exponent, both signs, boundary mantissas', async () => {
    const b = await GpujsBackend.create(mode);
    const xs: number[] = [];
    const u = new Uint32Array(1),
      f = new Float32Array(u.buffer);
    for (let e = 0; e < 255; e++)
      for (const m of [0, 1, 0x400000, 0x7fffff, 0x123457])
        for (const s of [0, 1]) {
          u[0] = (s << 31) | (e << 23) | m;
          xs.push(f[0]!);
        }
    const x = d.field('x', 'f32');
    const k = kernel({
      name: 'bits',
      groupSize: 32,
      outputs: [
        { field: 'u', storage: 'u32', axis: 'element', value: d.asU32(x) },
        { field: 'y', storage: 'f32', axis: 'element', value: d.asF32(d.asU32(x)) },
        { field: 'i', storage: 'i32', axis: 'element', value: d.i32(x) },
      ],
    });
    const n = xs.length;
    const r = await both(
      b,
      k,
      { x: Float32Array.from(xs), u: new Uint32Array(n), y: new Float32Array(n), i: new Int32Array(n) },
      {},
      n,
    );
    const flushed = (i: number) => mode === 'webgpu' && Math.abs(xs[i]!) < 2 ** -126;
    for (const fld of ['u', 'y', 'i'])
      expect(
        mismatches(r.want[fld]!, r.got[fld]!).filter((i) => !flushed(i)),
        fld,
      ).toEqual([]);
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

/** FlashAdamW (the shipped kernel, through createOptimizer) after `steps` steps on `backend`: every stored field. */
async function adamwSteps(backend: Backend, n: number, steps: number) {
  const opt = await createOptimizer(adamw({ lr: 1e-3 }), { w: uniformF32(n, 1, 2) }, { backend });
  for (let t = 0; t < steps; t++) await opt.step({ w: uniformF32(n, 10 + t, 0.02) });
  const fields = Object.fromEntries(
    await Promise.all(opt.fields.map(async (f) => [f.name, await opt.readField(f.name)] as const)),
  );
  return { opt, fields };
}

describe.each(modes)('gpu.js %s mode, FlashAdamW through createOptimizer', (mode) => {
  it('three steps leave every stored field bit-identical to the oracle, one launch each, 4 bytes a value held', async () => {
    const want = await adamwSteps(new OracleBackend(), 1000, 3);
    const b = await GpujsBackend.create(mode);
    const got = await adamwSteps(b, 1000, 3);
    for (const f of Object.keys(want.fields)) expect(mismatches(want.fields[f]!, got.fields[f]!), f).toEqual([]);
    expect(b.launches - got.opt.layout.tensors.length).toBe(3); // one import launch per tensor, then one per step
    // Every field is an f32 array on the gpu.js side: p, p_ecc, g, m, v at 4 bytes each, the two
    // scales at 4 per group of 32, the group → row table (u32: two 16-bit halves) at 8 per group,
    // and the one nonFinite counter (8 bytes, as any u32).
    expect(b.bytesHeld()).toBe(got.opt.layout.length * (5 * 4 + (2 * 4 + 8) / 32) + 8);
  });
});

describe('gpu.js webasm mode on its worker pool', () => {
  it('FlashAdamW through createOptimizer is bit-identical to the oracle', async () => {
    const want = await adamwSteps(new OracleBackend(), 3000, 2);
    const b = await GpujsBackend.create('webasm', { threads: true });
    const got = await adamwSteps(b, 3000, 2);
    for (const f of Object.keys(want.fields)) expect(mismatches(want.fields[f]!, got.fields[f]!), f).toEqual([]);
    b.dispose();
  });
});

describe.runIf(modes.includes('webgpu'))('gpu.js webgpu mode and V8 on-stack replacement', () => {
  it('a hot loop beside the live device does not kill the process (--no-use-osr is set)', async () => {
    const b = await GpujsBackend.create('webgpu');
    const k = kernel({
      name: 'osr',
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }],
    });
    for (let round = 0; round < 3; round++) {
      const r = await both(b, k, { x: new Float32Array(64) }, {}, 64);
      expect(mismatches(r.want.x!, r.got.x!)).toEqual([]);
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
    const k = kernel({
      name: 'short',
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }],
    });
    const prog = await b.compile(k);
    const x = b.alloc('f32', 10);
    await expect(
      b.run(prog, { bindings: { x }, uniforms: new Float32Array(1), rowOf: null, groups: [0, 1], length: 20 }),
    ).rejects.toThrow(/field x has 10 entries, needs 20/);
    await expect(
      b.run(prog, { bindings: {}, uniforms: new Float32Array(1), rowOf: null, groups: [0, 1], length: 10 }),
    ).rejects.toThrow(/field x is not bound/);
  });
});

describe('gpu.js shared values (compiler/render/gpujs/share.ts)', () => {
  it('FlashAdamW shares its costly f32 values across output passes, with or without sharing bit-identical', async () => {
    const want = await adamwSteps(new OracleBackend(), 700, 1);
    for (const share of [true, false]) {
      const b = await GpujsBackend.create('webasm', { share });
      const got = await adamwSteps(b, 700, 1);
      for (const f of Object.keys(want.fields))
        expect(mismatches(want.fields[f]!, got.fields[f]!), `${f}, share ${share}`).toEqual([]);
      const shared = (got.opt.source.match(/\/\/ pass adamw\.shared/g) ?? []).length;
      if (share) expect(shared).toBeGreaterThan(0);
      else expect(shared).toBe(0);
    }
  });
});

describe.each(modes)('gpu.js %s mode, integer division', (mode) => {
  it('u32 and i32 division (÷0, MIN ÷ −1, signs, large values) match bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const vals = [
      0,
      1,
      -1,
      2,
      3,
      7,
      -7,
      65535,
      65536,
      2 ** 31 - 1,
      -(2 ** 31),
      123456789,
      -987654321,
      0x7fff,
      2 ** 24 + 1,
    ];
    const as: number[] = [],
      bs: number[] = [];
    for (const x of vals)
      for (const y of vals) {
        as.push(x);
        bs.push(y);
      }
    const n = as.length;
    const k = kernel({
      name: 'idiv',
      outputs: [
        { field: 'qi', storage: 'i32', axis: 'element', value: d.div(d.field('a', 'i32'), d.field('b', 'i32')) },
        {
          field: 'qu',
          storage: 'u32',
          axis: 'element',
          value: d.div(d.u32(d.field('a', 'i32')), d.u32(d.field('b', 'i32'))),
        },
      ],
    });
    const r = await both(
      b,
      k,
      { a: Int32Array.from(as), b: Int32Array.from(bs), qi: new Int32Array(n), qu: new Uint32Array(n) },
      {},
      n,
    );
    expect(mismatches(r.want.qi!, r.got.qi!)).toEqual([]);
    expect(mismatches(r.want.qu!, r.got.qu!)).toEqual([]);
  });
});
