// Random kernels for the backend conformance suite, from a seed (printed with every failure):
// element and group fields of every storage, uniforms, every exact op (f32 ÷, √, exp2 and log2
// are left to the optimizer runs, which allow their ULPs), casts, groupMax (nested sometimes),
// group outputs, counters. No f32 → integer bitcasts: a NaN's payload is the one thing backends
// may legitimately choose differently, and only such a bitcast could observe it.

import type { Expr, Storage, Type } from '../compiler/ir/ir.ts';
import { loadType } from '../compiler/ir/ir.ts';
import type { FieldRef, Kernel, Output } from '../compiler/ir/kernel.ts';
import { elementwise, kernel } from '../compiler/ir/kernel.ts';
import * as d from '../dsl/ops.ts';
import { prng } from '../props/f32.ts';

/** The suite's PRNG: mulberry32, the same one the properties use. */
export const rng = prng;

const STORAGES: Storage[] = ['f32', 'i32', 'u32', 'u16', 'i16', 'u8', 'i8'];

export interface RandomKernel { readonly kernel: Kernel; readonly fields: readonly FieldRef[]; readonly uniforms: readonly string[] }

export function randomKernel(seed: number): RandomKernel {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const groupSize = pick([1, 3, 8, 32, 32, 32, 64]);
  const fields: FieldRef[] = [];
  const nElem = 1 + Math.floor(r() * 4);
  for (let i = 0; i < nElem; i++) fields.push({ field: `e${i}`, storage: pick(STORAGES), axis: 'element' });
  if (r() < 0.6) fields.push({ field: 'gr', storage: pick(['f32', 'u16', 'u8', 'i32'] as Storage[]), axis: 'group' });
  const uniforms = ['a', 'b'];
  const pool: Expr[] = [...fields.map((f) => d.field(f.field, f.storage, f.axis)), d.uniform('a'), d.uniform('b'), d.constant('f32', 0.5), d.constant('i32', -3), d.constant('u32', 7)];
  const ofType = (t: Type): Expr[] => pool.filter((e) => e.type === t);
  const some = (t: Type): Expr => {
    const xs = ofType(t);
    if (xs.length) return pick(xs.slice(-6).concat(xs));
    if (t === 'bool') return d.lt(some('f32'), some('f32'));
    return d.cast(t, some(t === 'f32' ? 'i32' : 'f32'));
  };
  const steps = 6 + Math.floor(r() * 14);
  for (let s = 0; s < steps; s++) {
    const t = pick(['f32', 'f32', 'i32', 'u32', 'bool'] as Type[]);
    const kind = r();
    let e: Expr;
    if (t === 'bool') e = pick([d.lt, d.le, d.eq, d.ne])(some('f32'), some('f32'));
    else if (kind < 0.45) {
      const fs = t === 'f32' ? [d.add, d.sub, d.mul, d.min, d.max] : [d.add, d.sub, d.mul, d.div, d.min, d.max, d.and, d.or, d.xor];
      e = pick(fs)(some(t), some(t));
    } else if (kind < 0.6) {
      e = t === 'f32' ? pick([d.neg, d.abs, d.floor, d.ceil, d.trunc, d.roundEven, d.roundAway, d.sign])(some(t))
        : t === 'i32' ? pick([d.neg, d.abs, d.sign, d.not])(some(t)) : d.not(some(t));
    } else if (kind < 0.7) e = d.select(pick([some('bool'), d.isNan(some('f32')), d.isFinite(some('f32'))]), some(t), some(t));
    else if (kind < 0.8) e = d.cast(t, some(pick(['f32', 'i32', 'u32', 'bool'] as Type[])));
    else if (kind < 0.87 && t !== 'f32') e = pick([d.shl, d.shr])(some(t), some('u32'));
    else if (kind < 0.92 && t !== 'f32') e = d.bitcast(t, some(t === 'i32' ? 'u32' : 'i32'));
    else e = t === 'f32' ? d.groupMax(some('f32')) : d.cast(t, d.groupMax(some('f32')));
    pool.push(e);
  }
  const memo = new Map<Expr, boolean>();
  const outputs: Output[] = [];
  for (const f of fields) {
    if (r() < 0.3 && outputs.length > 0) continue;
    const want = loadType(f.storage);
    const cands = ofType(want).filter((e) => f.axis === 'element' || !elementwise(e, memo));
    let value = cands.length ? pick(cands.slice(-4)) : undefined;
    if (!value && f.axis === 'group') value = d.cast(want, d.groupMax(some('f32')));
    outputs.push({ ...f, value: value ?? d.cast(want, some('f32')) });
  }
  const counters = r() < 0.5 ? [{ name: 'count', value: some('bool') }] : [];
  return { kernel: kernel({ name: `random${seed}`, groupSize, outputs, counters }), fields, uniforms };
}

/** Field data: mostly ordinary values, with ±0, NaN, ±Inf and integer extremes mixed in. */
export function randomData(storage: Storage, n: number, r: () => number): Float32Array | Int32Array | Uint32Array | Uint16Array | Int16Array | Uint8Array | Int8Array {
  const special = [0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, -2.5];
  switch (storage) {
    case 'f32': return Float32Array.from({ length: n }, () => (r() < 0.1 ? special[Math.floor(r() * special.length)]! : (r() - 0.5) * 2 ** Math.floor(r() * 20 - 8)));
    case 'i32': return Int32Array.from({ length: n }, () => (r() < 0.1 ? [-2147483648, 2147483647, 0, -1][Math.floor(r() * 4)]! : Math.floor((r() - 0.5) * 2 ** Math.floor(r() * 32))));
    case 'u32': return Uint32Array.from({ length: n }, () => Math.floor(r() * 2 ** Math.floor(r() * 33)));
    case 'u16': return Uint16Array.from({ length: n }, () => Math.floor(r() * 65536));
    case 'i16': return Int16Array.from({ length: n }, () => Math.floor(r() * 65536) - 32768);
    case 'u8': return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
    case 'i8': return Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
  }
}
