// Property checkers for any Codec (ours or a user's): call them from a vitest suite. Each runs the
// codec compiled exactly as an optimizer kernel would (encode with its group reduction, decode),
// and throws fast-check's report (seed, path, counterexample) when the property fails.

import fc from 'fast-check';
import type { Codec } from '../dsl/codec.ts';
import { decodeStored, encodeStored, storedName } from '../dsl/codec.ts';
import { field } from '../dsl/ops.ts';
import { compile } from '../compiler/render/js/compile.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';

export type Stored = Record<string, FieldArray>;

export interface CodecRunner {
  readonly codec: Codec;
  readonly groupSize: number;
  /** The stored fields for x, by stored name (base `v`: `v`, `v_scale`, …). */
  encode(x: Float32Array): Stored;
  /** The f32 values `stored` decodes to (n elements). */
  decode(stored: Stored, n: number): Float32Array;
  roundTrip(x: Float32Array): Float32Array;
}

/** Compile a codec's encode and decode kernels (once) and run them over arrays. */
export function runCodec(codec: Codec, groupSize = 32): CodecRunner {
  const values = codec.encode(field('x', 'f32'));
  if (values.length !== codec.fields.length)
    throw new RangeError(
      `codec ${codec.name}: encode returned ${values.length} values for ${codec.fields.length} fields`,
    );
  const enc = compile(
    kernel({
      name: `encode_${codec.name}`,
      groupSize,
      outputs: encodeStored('v', codec, field('x', 'f32')),
    }),
  );
  const dec = compile(
    kernel({
      name: `decode_${codec.name}`,
      groupSize,
      outputs: [{ field: 'y', storage: 'f32', axis: 'element', value: decodeStored('v', codec) }],
    }),
  );
  const encode = (x: Float32Array): Stored => {
    const out: Stored = {};
    for (const f of codec.fields)
      out[storedName('v', f)] = new arrayFor[f.storage](
        f.axis === 'group' ? Math.ceil(x.length / groupSize) : x.length,
      );
    enc.run({ fields: { x, ...out }, length: x.length });
    return out;
  };
  const decode = (stored: Stored, n: number): Float32Array => {
    const y = new Float32Array(n);
    dec.run({ fields: { ...stored, y }, length: n });
    return y;
  };
  return { codec, groupSize, encode, decode, roundTrip: (x) => decode(encode(x), x.length) };
}

export interface CheckOptions {
  /** Input arrays; default: f32 arrays of up to 200 values. */
  readonly data?: fc.Arbitrary<Float32Array>;
  readonly groupSize?: number;
  readonly numRuns?: number;
  readonly seed?: number;
}

const defaultData = (): fc.Arbitrary<Float32Array> =>
  fc.float32Array({ minLength: 1, maxLength: 200, noDefaultInfinity: true, noNaN: true });
const params = (o: CheckOptions) => ({ numRuns: o.numRuns ?? 1000, ...(o.seed === undefined ? {} : { seed: o.seed }) });

/** What a round-trip bound sees for element i: its value, its decode, its group's absmax. */
export interface ElementContext {
  readonly x: number;
  readonly decoded: number;
  readonly absmax: number;
  readonly index: number;
}

/** Absmax of each group of x (NaN and ±Inf ignored). */
export function groupAbsmax(x: Float32Array, G: number): Float64Array {
  const out = new Float64Array(Math.ceil(x.length / G));
  x.forEach((v, i) => {
    const a = Math.abs(v);
    if (Number.isFinite(a) && a > out[Math.floor(i / G)]!) out[Math.floor(i / G)] = a;
  });
  return out;
}

/** Every element decodes within `bound(ctx)` of its value. */
export function checkRoundTripBound(codec: Codec, bound: (c: ElementContext) => number, o: CheckOptions = {}): void {
  const r = runCodec(codec, o.groupSize);
  fc.assert(
    fc.property(o.data ?? defaultData(), (x) => {
      const y = r.roundTrip(x),
        am = groupAbsmax(x, r.groupSize);
      for (let i = 0; i < x.length; i++) {
        const c = { x: x[i]!, decoded: y[i]!, absmax: am[Math.floor(i / r.groupSize)]!, index: i };
        const err = Math.abs(c.decoded - c.x),
          b = bound(c);
        if (!(err <= b))
          throw new Error(`${codec.name}: element ${i} = ${c.x} decodes to ${c.decoded}, error ${err} > bound ${b}`);
      }
    }),
    params(o),
  );
}

/** Zeros decode to exactly zero: every zero element, and every all-zero group. */
export function checkZeroPreservation(codec: Codec, o: CheckOptions = {}): void {
  const r = runCodec(codec, o.groupSize);
  const data = (o.data ?? defaultData()).chain((x) =>
    fc.array(fc.nat({ max: x.length - 1 }), { maxLength: x.length }).map((zs) => {
      const z = x.slice();
      for (const i of zs) z[i] = 0;
      return z;
    }),
  );
  fc.assert(
    fc.property(data, fc.boolean(), (x, allZero) => {
      const input = allZero ? new Float32Array(x.length) : x;
      const y = r.roundTrip(input);
      input.forEach((v, i) => {
        if (v === 0 && y[i] !== 0) throw new Error(`${codec.name}: zero at element ${i} decodes to ${y[i]}`);
      });
    }),
    params(o),
  );
}

/** Bits of a stored field entry that are equal for equal storage (NaN payloads compared as bits). */
function sameEntry(a: FieldArray, b: FieldArray, i: number): boolean {
  return a instanceof Float32Array ? Object.is(a[i], b[i]) || (a[i] !== a[i] && b[i] !== b[i]) : a[i] === b[i];
}

/**
 * A NaN placed in one group never changes another group's stored fields or decoded values, and
 * leaves its own group defined: group-axis fields are not NaN, and the group's other (finite)
 * elements decode to finite values.
 */
export function checkNoNaNSpreading(codec: Codec, o: CheckOptions = {}): void {
  const r = runCodec(codec, o.groupSize),
    G = r.groupSize;
  const data = (o.data ?? defaultData()).chain((x) => fc.tuple(fc.constant(x), fc.nat({ max: x.length - 1 })));
  fc.assert(
    fc.property(data, ([x, at]) => {
      const poisoned = x.slice();
      poisoned[at] = NaN;
      const clean = r.encode(x),
        dirty = r.encode(poisoned);
      const g = Math.floor(at / G);
      for (const f of codec.fields) {
        const name = storedName('v', f),
          a = clean[name]!,
          b = dirty[name]!;
        for (let i = 0; i < a.length; i++) {
          const mine = f.axis === 'group' ? i === g : Math.floor(i / G) === g;
          if (!mine && !sameEntry(a, b, i))
            throw new Error(`${codec.name}: a NaN at element ${at} changed ${name}[${i}] from ${a[i]} to ${b[i]}`);
          if (mine && f.axis === 'group' && b[i] !== b[i])
            throw new Error(`${codec.name}: a NaN at element ${at} made ${name}[${i}] NaN`);
        }
      }
      const y = r.decode(dirty, x.length);
      for (let i = g * G; i < Math.min(x.length, (g + 1) * G); i++)
        if (i !== at && Number.isFinite(x[i]!) && !Number.isFinite(y[i]!))
          throw new Error(`${codec.name}: a NaN at element ${at} made element ${i} (${x[i]}) decode to ${y[i]}`);
    }),
    params(o),
  );
}
