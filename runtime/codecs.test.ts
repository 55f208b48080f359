import { expect, test } from 'vitest';
import {
  computeErrorBits,
  dequantize,
  fromBf16,
  fromFp16,
  quantize,
  reconstructFp32,
  toBf16,
  toFp16,
} from './codecs.ts';

test('array functions return the documented types and lengths', () => {
  const x = Float32Array.of(1, -2.5, 0.1, 3e-3, 70);
  expect(toBf16(x)).toBeInstanceOf(Uint16Array);
  expect(fromBf16(toBf16(x))).toBeInstanceOf(Float32Array);
  expect(Array.from(fromFp16(toFp16(x)).slice(0, 2))).toEqual([1, -2.5]);
  const h = toBf16(x);
  expect(computeErrorBits(x, h, { narrow: 'bf16', masterWeightBits: 24 })).toBeInstanceOf(Int8Array);
  const q16 = computeErrorBits(x, h, { narrow: 'bf16', masterWeightBits: 32 });
  expect(q16).toBeInstanceOf(Int16Array);
  const back = reconstructFp32(h, q16, { narrow: 'bf16', masterWeightBits: 32 });
  back.forEach((v, i) => expect(Math.abs(v - x[i]!)).toBeLessThanOrEqual(Math.abs(x[i]!) * 2 ** -23));
  const q = quantize(x, { signed: true, softsign: true, groupSize: 2 });
  expect(q.codes).toBeInstanceOf(Int8Array);
  expect(q.scales).toBeInstanceOf(Uint16Array);
  expect(q.scales.length).toBe(3);
  expect(quantize(x, { signed: false, sqrt: true, scale: 'f32' }).scales).toBeInstanceOf(Float32Array);
  expect(dequantize(q, { signed: true, softsign: true, groupSize: 2 })).toHaveLength(5);
  expect(toBf16(new Float32Array(0))).toHaveLength(0);
});

test('bad input: RangeErrors naming the arrays or option, TypeErrors for the wrong array type', () => {
  const x = new Float32Array(4),
    h = new Uint16Array(4);
  expect(() => computeErrorBits(x, new Uint16Array(5), { narrow: 'bf16', masterWeightBits: 24 })).toThrow(
    /computeErrorBits: fp32 has 4 elements but narrow has 5/,
  );
  expect(() => computeErrorBits(x, h, { narrow: 'fp8' as 'bf16', masterWeightBits: 24 })).toThrow(
    /narrow must be 'bf16' or 'fp16', got fp8/,
  );
  expect(() => computeErrorBits(x, h, { narrow: 'bf16', masterWeightBits: 16 as 24 })).toThrow(
    /masterWeightBits must be 24 or 32, got 16/,
  );
  expect(() => reconstructFp32(h, new Int16Array(4), { narrow: 'bf16', masterWeightBits: 24 })).toThrow(TypeError);
  const q = quantize(new Float32Array(40), { signed: false });
  expect(() => dequantize(q, { signed: true })).toThrow(/codes must be an Int8Array/);
  expect(() => dequantize({ codes: q.codes, scales: new Uint16Array(1) }, { signed: false })).toThrow(RangeError);
});
