// Test support for the gpu.js backend: `both` runs a kernel on the JS kernel and on a gpu.js
// backend from the same inputs; `randomKernel` makes random well-typed kernels: a seeded generator (so a failing seed
// reproduces) over every IR op except exp2, log2 and rsqrt, with inputs that include the awkward
// f32 values (±0, ±∞, NaN, subnormals, powers of two, halves for rounding ties).

import { compile } from '../compiler/render/js/compile.ts';
import type { Expr, Storage } from '../compiler/ir/ir.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fields, kernel } from '../compiler/ir/kernel.ts';
import type { GpujsMode } from '../runtime/backends/gpujs/device.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import * as d from '../dsl/ops.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

type T = 'f32' | 'i32' | 'u32' | 'bool';

class Rng {
  constructor(private s: number) {}
  next(): number { this.s = (Math.imul(this.s ^ (this.s >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0; return ((this.s ^ (this.s >>> 13)) >>> 0) / 2 ** 32; }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<X>(xs: readonly X[]): X { return xs[this.int(xs.length)]!; }
}

const SPECIAL = [0, -0, 0.5, -0.5, 1.5, 2.5, -2.5, 1, -1, 3, 1e-40, -1e-39, Infinity, -Infinity, NaN, 2 ** 24 + 2, 3.4e38, 2 ** -126, 0.49999997];

function f32Value(r: Rng, awkward: boolean): number {
  if (awkward && r.int(6) === 0) return r.pick(SPECIAL);
  return (r.next() - 0.5) * 2 ** (r.int(40) - 20);
}

const inputs: { field: string; storage: Storage }[] = [
  { field: 'x', storage: 'f32' }, { field: 'y', storage: 'f32' }, { field: 'c', storage: 'i8' },
  { field: 'w', storage: 'u16' }, { field: 'q', storage: 'u8' }, { field: 's', storage: 'i16' },
  { field: 'k', storage: 'i32' }, { field: 'h', storage: 'u32' },
];

export function randomKernel(seed: number, awkward = true): {
  k: Kernel; data: Record<string, FieldArray>; uniforms: Record<string, number>; n: number; groups: [number, number];
} {
  const r = new Rng(seed);
  const G = r.pick([1, 3, 4, 32]);
  const n = 1 + r.int(96);
  const nGroups = Math.ceil(n / G);
  const ofType = (t: T) => inputs.filter((i) => (i.storage === 'f32' ? 'f32' : i.storage === 'i8' || i.storage === 'i16' || i.storage === 'i32' ? 'i32' : 'u32') === t);
  let maxBudget = 2;

  const gen = (t: T, depth: number): Expr => {
    if (depth <= 0 || r.int(5) === 0) return leaf(t);
    const a = () => gen(t, depth - 1);
    switch (t) {
      case 'f32': {
        const op = r.int(19);
        switch (op) {
          case 0: return d.add(a(), a());
          case 1: return d.sub(a(), a());
          case 2: return d.mul(a(), a());
          case 3: return d.div(a(), a());
          case 4: return d.min(a(), a());
          case 5: return d.max(a(), a());
          case 6: return d.neg(a());
          case 7: return d.sqrt(d.abs(a()));
          case 8: return r.pick([d.floor, d.ceil, d.trunc])(a());
          case 9: return r.pick([d.roundEven, d.roundAway])(a());
          case 10: return d.sign(a());
          case 11: return d.select(gen('bool', depth - 1), a(), a());
          case 12: return d.f32(gen(r.pick(['i32', 'u32'] as const), depth - 1));
          case 13: return d.asF32(gen('u32', depth - 1));
          case 14: return d.f32(gen('bool', depth - 1));
          case 15: if (maxBudget-- > 0) return d.groupMax(a()); return d.abs(a());
          default: return d.add(d.mul(a(), d.uniform('u0')), d.uniform('u1'));
        }
      }
      case 'i32': case 'u32': {
        const op = r.int(17);
        switch (op) {
          case 0: return d.add(a(), a());
          case 1: return d.sub(a(), a());
          case 2: return d.mul(a(), r.int(2) ? a() : d.constant(t, 1 << r.int(31)));
          case 3: return d.min(a(), a());
          case 4: return d.max(a(), a());
          case 5: return r.pick([d.and, d.or, d.xor])(a(), r.int(2) ? a() : d.constant(t, r.pick([0xff, 0xffff0000, 0x7fff, 0x80000000, r.int(2 ** 31)])));
          case 6: return d.shl(a(), r.int(2) ? d.constant('u32', r.int(40)) : gen('u32', depth - 1));
          case 7: return d.shr(a(), r.int(2) ? d.constant('u32', r.int(40)) : gen('u32', depth - 1));
          case 8: return d.not(a());
          case 9: return t === 'i32' ? r.pick([d.neg, d.abs, d.sign])(a()) : d.u32(gen('i32', depth - 1));
          case 10: return d.cast(t, gen('f32', depth - 1));
          // The bits of a NaN are not compared: gpu.js gives the canonical 0x7fc00000, the JS backend
          // whatever sign V8 carries (a NaN made by arithmetic on x86 has its sign bit set).
          case 11: { const x = gen('f32', depth - 1); return d.bitcast(t, d.select(d.isNan(x), 1.5, x)); }
          case 12: return d.select(gen('bool', depth - 1), a(), a());
          case 13: return r.int(2) ? d.div(a(), a()) : t === 'u32' ? d.div(a(), d.constant('u32', 1 << r.int(31))) : d.cast('i32', gen('u32', depth - 1));
          case 14: return d.cast(t, gen('bool', depth - 1));
          default: return d.add(a(), leaf(t));
        }
      }
      case 'bool': {
        const nt = r.pick(['f32', 'i32', 'u32'] as const);
        const op = r.int(8);
        switch (op) {
          case 0: return r.pick([d.lt, d.le])(gen(nt, depth - 1), gen(nt, depth - 1));
          case 1: return r.pick([d.eq, d.ne])(gen(nt, depth - 1), gen(nt, depth - 1));
          case 2: return r.pick([d.and, d.or, d.xor])(a(), a());
          case 3: return d.not(a());
          case 4: return d.isNan(gen('f32', depth - 1));
          case 5: return d.isFinite(gen('f32', depth - 1));
          case 6: return d.cast('bool', gen(nt, depth - 1));
          default: return d.eq(a(), a());
        }
      }
    }
  };
  const leaf = (t: T): Expr => {
    if (t === 'bool') return d.lt(leaf('f32'), leaf('f32'));
    if (r.int(4) === 0) return d.constant(t, t === 'f32' ? f32Value(r, awkward) : r.pick([0, 1, 7, 255, 65535, 65536, -1, 2 ** 31, r.int(2 ** 32)]));
    if (t === 'f32' && r.int(5) === 0) return d.uniform(r.pick(['u0', 'u1']));
    const f = r.pick(ofType(t));
    return d.field(f.field, f.storage);
  };

  const depth = 2 + r.int(4);
  const outputs = [
    { field: 'of', storage: 'f32' as const, axis: 'element' as const, value: gen('f32', depth) },
    { field: 'oi', storage: r.pick(['i32', 'i8', 'i16'] as const), axis: 'element' as const, value: gen('i32', depth) },
    { field: 'ou', storage: r.pick(['u32', 'u8', 'u16'] as const), axis: 'element' as const, value: gen('u32', depth) },
  ];
  maxBudget = 1;
  const gv = d.groupMax(gen('f32', depth - 1));
  const group = { field: 'og', storage: 'f32' as const, axis: 'group' as const, value: d.mul(gv, r.int(2) ? d.uniform('u0') : d.constant('f32', 0.5)) };
  const k = kernel({ name: `random${seed}`, groupSize: G, outputs: [...outputs, group], counters: [
    { name: 'nb', value: gen('bool', depth - 1) },
    { name: 'ni', value: gen(r.pick(['i32', 'u32'] as const), 1) },
  ] });

  const data: Record<string, FieldArray> = {};
  const rand32 = () => Math.floor(r.next() * 2 ** 32);
  for (const { field, storage } of inputs) {
    const len = n;
    switch (storage) {
      case 'f32': data[field] = Float32Array.from({ length: len }, () => f32Value(r, awkward)); break;
      case 'i8': data[field] = Int8Array.from({ length: len }, () => rand32()); break;
      case 'u8': data[field] = Uint8Array.from({ length: len }, () => rand32()); break;
      case 'u16': data[field] = Uint16Array.from({ length: len }, () => rand32()); break;
      case 'i16': data[field] = Int16Array.from({ length: len }, () => rand32()); break;
      case 'i32': data[field] = Int32Array.from({ length: len }, () => rand32()); break;
      case 'u32': data[field] = Uint32Array.from({ length: len }, () => rand32()); break;
    }
  }
  const arrays = { f32: Float32Array, i32: Int32Array, u32: Uint32Array, u16: Uint16Array, i16: Int16Array, u8: Uint8Array, i8: Int8Array };
  for (const o of [...outputs, group]) data[o.field] = new arrays[o.storage](o.axis === 'group' ? nGroups : n);
  const g0 = r.int(nGroups), g1 = g0 + 1 + r.int(nGroups - g0);
  return { k, data, uniforms: { u0: f32Value(r, false), u1: f32Value(r, false) }, n, groups: r.int(3) ? [0, nGroups] : [g0, g1] };
}

/** Run `k` on the JS kernel and on `b` with the same inputs; returns both sets of fields and counters. */
export async function both(b: GpujsBackend, k: Kernel, data: Record<string, FieldArray>, uniforms: Record<string, number>, n: number, groups?: [number, number]) {
  const js = compile(k);
  const jsFields = Object.fromEntries(Object.entries(data).map(([f, a]) => [f, a.slice()]));
  const jsCounts = js.run({ fields: jsFields, uniforms, length: n, groups }).counters;
  const prog = await b.compile(k);
  const bufs = Object.fromEntries(await Promise.all(fields(k).map(async (f) => {
    const buf = b.alloc(f.storage, data[f.field]!.length);
    await b.write(buf, data[f.field]!);
    return [f.field, buf] as const;
  })));
  const G = k.groupSize;
  const counts = await b.run(prog, { bindings: bufs, uniforms: js.uniformTable([uniforms]), rowOf: null, groups: groups ?? [0, Math.ceil(n / G)], length: n });
  const out: Record<string, FieldArray> = {};
  for (const f of fields(k)) { out[f.field] = await b.read(bufs[f.field]!); b.free(bufs[f.field]!); }
  return { js: jsFields, jsCounts: Object.values(jsCounts), gpu: out, counts, source: prog.source };
}


/**
 * The gpu.js modes the tests run: cpu and webasm always; webgpu when GPUJS_WEBGPU=1 (then it must
 * work), or, when GPUJS_WEBGPU is unset, whenever an adapter answers (lavapipe on CI); GPUJS_WEBGPU=0
 * leaves it out.
 */
export async function testModes(): Promise<GpujsMode[]> {
  const flag = process.env.GPUJS_WEBGPU;
  if (flag === '0') return ['cpu', 'webasm'];
  if (flag === '1') return ['cpu', 'webasm', 'webgpu'];
  const ok = await GpujsBackend.create('webgpu').then((b) => { b.dispose(); return true; }, () => false);
  if (!ok) console.log('gpu.js webgpu mode: no WebGPU adapter here, so its tests are not registered (GPUJS_WEBGPU=1 requires them)');
  return ok ? ['cpu', 'webasm', 'webgpu'] : ['cpu', 'webasm'];
}
