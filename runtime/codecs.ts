// The public array functions (mirroring the reference package's): each one runs a compiled codec
// kernel on the JS backend, so they compute exactly what a fused optimizer kernel stores and reads.

import type { Codec } from '../dsl/codec.ts';
import { decodeStored, encodeStored } from '../dsl/codec.ts';
import { field } from '../dsl/ops.ts';
import { fromNarrowBits, narrowOf, toNarrowBits } from '../dsl/float.ts';
import { correctedValue, correctionMax, correctionOf } from '../dsl/master.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import { quantCodec } from '../dsl/quant.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { compile } from '../compiler/render/js/compile.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';

type NarrowName = 'bf16' | 'fp16';
/** Elementwise kernels have no group state; a group is just the unit of the outer loop. */
const ELEMENT_BLOCK = 1024;

const kernels = new Map<string, Kernel>();
function cached(key: string, make: () => Kernel): Kernel {
  let k = kernels.get(key);
  if (!k) {
    k = make();
    kernels.set(key, k);
  }
  return k;
}

function run(k: Kernel, fields: Record<string, FieldArray>, length: number): void {
  compile(k).run({ fields, length });
}

function sameLength(fn: string, a: [string, { length: number }], b: [string, { length: number }]): void {
  if (a[1].length !== b[1].length)
    throw new RangeError(`${fn}: ${a[0]} has ${a[1].length} elements but ${b[0]} has ${b[1].length}`);
}

function narrowName(fn: string, n: unknown): NarrowName {
  if (n !== 'bf16' && n !== 'fp16') throw new RangeError(`${fn}: narrow must be 'bf16' or 'fp16', got ${String(n)}`);
  return n;
}

function castTo(n: NarrowName, x: Float32Array): Uint16Array {
  const k = cached(`to-${n}`, () =>
    kernel({
      name: `to_${n}`,
      groupSize: ELEMENT_BLOCK,
      outputs: [{ field: 'h', storage: 'u16', axis: 'element', value: toNarrowBits(n, field('x', 'f32')) }],
    }),
  );
  const h = new Uint16Array(x.length);
  run(k, { x, h }, x.length);
  return h;
}

function castFrom(n: NarrowName, h: Uint16Array): Float32Array {
  const k = cached(`from-${n}`, () =>
    kernel({
      name: `from_${n}`,
      groupSize: ELEMENT_BLOCK,
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: fromNarrowBits(n, field('h', 'u16')) }],
    }),
  );
  const x = new Float32Array(h.length);
  run(k, { x, h }, h.length);
  return x;
}

/** f32 → bf16 bits, round to nearest even (NaN stays NaN, overflow to ±Inf). */
export const toBf16 = (x: Float32Array): Uint16Array => castTo('bf16', x);
export const fromBf16 = (h: Uint16Array): Float32Array => castFrom('bf16', h);
/** f32 → fp16 bits, round to nearest even with subnormals; |x| ≥ 65520 gives ±Inf. */
export const toFp16 = (x: Float32Array): Uint16Array => castTo('fp16', x);
export const fromFp16 = (h: Uint16Array): Float32Array => castFrom('fp16', h);

export interface EccOptions {
  readonly narrow: NarrowName;
  readonly masterWeightBits: 24 | 32;
}

function eccBits(fn: string, opts: EccOptions): 24 | 32 {
  const b = opts?.masterWeightBits;
  if (b !== 24 && b !== 32) throw new RangeError(`${fn}: masterWeightBits must be 24 or 32, got ${String(b)}`);
  return b;
}

/**
 * The correction of each f32 master value against its stored narrow value (spec §1): Int8Array
 * for 24-bit masters, Int16Array for 32-bit. `narrow` is used as given (normally the RNE cast).
 */
export function computeErrorBits(fp32: Float32Array, narrow: Uint16Array, opts: EccOptions): Int8Array | Int16Array {
  const n = narrowName('computeErrorBits', opts?.narrow),
    bits = eccBits('computeErrorBits', opts);
  sameLength('computeErrorBits', ['fp32', fp32], ['narrow', narrow]);
  const storage = bits === 24 ? 'i8' : 'i16';
  const k = cached(`ecc-${n}-${bits}`, () =>
    kernel({
      name: `ecc_${n}_${bits}`,
      groupSize: ELEMENT_BLOCK,
      outputs: [
        {
          field: 'q',
          storage,
          axis: 'element',
          value: correctionOf(narrowOf(n), correctionMax(bits), field('x', 'f32'), field('h', 'u16')),
        },
      ],
    }),
  );
  const q = new arrayFor[storage](fp32.length) as Int8Array | Int16Array;
  run(k, { x: fp32, h: narrow, q }, fp32.length);
  return q;
}

/** The f32 master value θ̂ from its narrow value and correction. */
export function reconstructFp32(
  narrow: Uint16Array,
  errorBits: Int8Array | Int16Array,
  opts: EccOptions,
): Float32Array {
  const n = narrowName('reconstructFp32', opts?.narrow),
    bits = eccBits('reconstructFp32', opts);
  sameLength('reconstructFp32', ['narrow', narrow], ['errorBits', errorBits]);
  const want = bits === 24 ? Int8Array : Int16Array;
  if (!(errorBits instanceof want))
    throw new TypeError(
      `reconstructFp32: errorBits must be an ${want.name} for ${bits}-bit masters, got ${errorBits.constructor.name}`,
    );
  const storage = bits === 24 ? 'i8' : 'i16';
  const k = cached(`rec-${n}-${bits}`, () =>
    kernel({
      name: `reconstruct_${n}_${bits}`,
      groupSize: ELEMENT_BLOCK,
      outputs: [
        {
          field: 'x',
          storage: 'f32',
          axis: 'element',
          value: correctedValue(narrowOf(n), correctionMax(bits), field('h', 'u16'), field('q', storage)),
        },
      ],
    }),
  );
  const x = new Float32Array(narrow.length);
  run(k, { x, h: narrow, q: errorBits }, narrow.length);
  return x;
}

export interface QuantizeOptions {
  readonly signed: boolean;
  readonly sqrt?: boolean;
  readonly softsign?: boolean;
  /** Elements per scale; default 32. */
  readonly groupSize?: number;
  readonly scale?: ScaleStorage;
}
export interface Quantized {
  readonly codes: Int8Array | Uint8Array;
  readonly scales: Uint16Array | Float32Array;
}

function codecFor(fn: string, opts: QuantizeOptions): { codec: Codec; G: number; key: string } {
  const G = opts?.groupSize ?? 32;
  if (!Number.isInteger(G) || G < 1)
    throw new RangeError(`${fn}: groupSize must be a positive integer, got ${String(G)}`);
  const codec = quantCodec(opts);
  return { codec, G, key: `${codec.name}/${G}` };
}

/** Group quantization (spec §2): one code per element, one scale per group of `groupSize`. */
export function quantize(x: Float32Array, opts: QuantizeOptions): Quantized {
  const { codec, G, key } = codecFor('quantize', opts);
  const k = cached(`quant-${key}`, () => {
    return kernel({
      name: `quantize_${codec.name}`,
      groupSize: G,
      outputs: encodeStored('q', codec, field('x', 'f32')),
    });
  });
  const [cf, sf] = codec.fields as [(typeof codec.fields)[0], (typeof codec.fields)[0]];
  const codes = new arrayFor[cf.storage](x.length) as Int8Array | Uint8Array;
  const scales = new arrayFor[sf.storage](Math.ceil(x.length / G)) as Uint16Array | Float32Array;
  run(k, { x, q: codes, q_scale: scales }, x.length);
  return { codes, scales };
}

/** The f32 values a quantized state stands for. */
export function dequantize(q: Quantized, opts: QuantizeOptions): Float32Array {
  const { codec, G, key } = codecFor('dequantize', opts);
  const [cf, sf] = codec.fields as [(typeof codec.fields)[0], (typeof codec.fields)[0]];
  if (!(q.codes instanceof arrayFor[cf.storage]))
    throw new TypeError(
      `dequantize: codes must be an ${arrayFor[cf.storage].name} for ${codec.name}, got ${q.codes.constructor.name}`,
    );
  if (!(q.scales instanceof arrayFor[sf.storage]))
    throw new TypeError(
      `dequantize: scales must be a ${arrayFor[sf.storage].name} for ${codec.name}, got ${q.scales.constructor.name}`,
    );
  const groups = Math.ceil(q.codes.length / G);
  if (q.scales.length !== groups)
    throw new RangeError(
      `dequantize: codes has ${q.codes.length} elements (${groups} groups of ${G}) but scales has ${q.scales.length}`,
    );
  const k = cached(`dequant-${key}`, () =>
    kernel({
      name: `dequantize_${codec.name}`,
      groupSize: G,
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: decodeStored('q', codec) }],
    }),
  );
  const x = new Float32Array(q.codes.length);
  run(k, { x, q: q.codes, q_scale: q.scales }, x.length);
  return x;
}
