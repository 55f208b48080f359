import { describe, expect, test } from 'vitest';
import { evaluate } from '../compiler/ir/semantics.ts';
import { field } from './ops.ts';
import { fromBf16Bits, fromFp16Bits, pow2, toBf16Bits, toBf16BitsUp, toFp16Bits } from './float.ts';
import { constant } from './ops.ts';

/** Evaluate a one-input expression with the semantic oracle. */
const at = (e: ReturnType<typeof field>, x: number) => evaluate(e, { load: () => x, uniform: () => 0 });
const x = field('x', 'f32'),
  h = field('h', 'u16');

describe('narrow casts (oracle)', () => {
  test.each([
    [1, 0x3f80, 0x3c00],
    [-2, 0xc000, 0xc000],
    [0, 0, 0],
    [-0, 0x8000, 0x8000],
    [65504, 0x4780, 0x7bff],
    [65520, 0x4780, 0x7c00],
    [2 ** -24, 0x3380, 0x0001],
    [2 ** -25, 0x3300, 0x0000],
    [1 + 2 ** -8, 0x3f80, 0x3c04],
    [1 + 3 * 2 ** -8, 0x3f82, 0x3c0c],
    [1 + 2 ** -11, 0x3f80, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3f80, 0x3c02],
    [Infinity, 0x7f80, 0x7c00],
    [-Infinity, 0xff80, 0xfc00],
  ])('%f → bf16 %i, fp16 %i', (v, b, f) => {
    expect(at(toBf16Bits(x), v)).toBe(b);
    expect(at(toFp16Bits(x), v)).toBe(f);
  });

  test('NaN stays NaN (quiet, sign kept)', () => {
    expect(at(toBf16Bits(x), NaN) & 0x7fc0).toBe(0x7fc0);
    expect(at(toFp16Bits(x), NaN) & 0x7e00).toBe(0x7e00);
    expect(at(fromBf16Bits(h), 0x7fc0)).toBeNaN();
    expect(at(fromFp16Bits(h), 0xfe00)).toBeNaN();
  });

  test('decode: bf16 and fp16 bit patterns, subnormals included', () => {
    expect(at(fromBf16Bits(h), 0x3f80)).toBe(1);
    expect(at(fromBf16Bits(h), 0x0001)).toBe(2 ** -133);
    expect(at(fromFp16Bits(h), 0x3c00)).toBe(1);
    expect(at(fromFp16Bits(h), 0x0001)).toBe(2 ** -24);
    expect(at(fromFp16Bits(h), 0x83ff)).toBe(-1023 * 2 ** -24);
    expect(at(fromFp16Bits(h), 0x7bff)).toBe(65504);
  });

  test('bf16 rounded up never goes below the value', () => {
    for (const v of [1, 1 + 2 ** -20, 3.14159, 1e-30, 2 ** -126]) {
      const up = at(fromBf16Bits(constant('u32', at(toBf16BitsUp(x), Math.fround(v)))), 0);
      expect(up).toBeGreaterThanOrEqual(Math.fround(v));
      expect(up / Math.fround(v)).toBeLessThanOrEqual(1 + 2 ** -7);
    }
  });

  test('powers of two through the exponent bits', () => {
    const k = field('k', 'i32');
    expect(at(pow2(k), -126)).toBe(2 ** -126);
    expect(at(pow2(k), 127)).toBe(2 ** 127);
  });
});
