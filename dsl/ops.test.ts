// The DSL's type checking: an ill-typed expression throws when it is built, with a message that
// names the op and the operand types; literals lift to the other operand's type or fail loudly.
import { describe, expect, it } from 'vitest';
import * as d from './ops.ts';

const f = d.field('a', 'f32'),
  i = d.field('c', 'i8'),
  u = d.field('h', 'u16'),
  b = d.lt(f, 1);

describe('ill-typed expressions throw when built', () => {
  it('arithmetic on mixed or non-numeric types', () => {
    expect(() => d.add(f, u)).toThrow(new TypeError('add: operand types (f32, u32) are not allowed'));
    expect(() => d.mul(i, u)).toThrow('mul: operand types (i32, u32) are not allowed');
    expect(() => d.sub(b, b)).toThrow('sub: operand types (bool, bool) are not allowed');
    expect(() => d.min(f, true)).toThrow('min: operand types (f32, bool literal) are not allowed');
  });

  it('unary ops outside their types', () => {
    expect(() => d.sqrt(i)).toThrow('sqrt: operand types (i32) are not allowed');
    expect(() => d.neg(u)).toThrow('neg: operand types (u32) are not allowed');
    expect(() => d.isNan(u)).toThrow('isNan: operand types (u32) are not allowed');
    expect(() => d.not(f)).toThrow('not: operand types (f32) are not allowed');
    expect(() => d.roundEven(b)).toThrow('roundEven: operand types (bool) are not allowed');
  });

  it('comparisons and logic', () => {
    expect(() => d.lt(b, b)).toThrow('lt: operand types (bool, bool) are not allowed');
    expect(() => d.and(f, f)).toThrow('and: operand types (f32, f32) are not allowed');
    expect(() => d.eq(f, i)).toThrow('eq: operand types (f32, i32) are not allowed');
    expect(d.eq(b, true).type).toBe('bool');
  });

  it('shifts need an i32/u32 value and a u32 amount', () => {
    expect(() => d.shl(f, 3)).toThrow('shl: operand types (f32, number literal) are not allowed');
    expect(() => d.shr(u, i)).toThrow('shr: operand types (u32, i32) are not allowed');
    expect(d.shr(i, 3).type).toBe('i32');
  });

  it('select needs a bool condition and branches of one type', () => {
    expect(() => d.select(f, 1, 2)).toThrow(
      'select: operand types (f32, number literal, number literal) are not allowed',
    );
    expect(() => d.select(b, f, u)).toThrow('select: operand types (f32, u32) are not allowed');
    expect(d.select(b, u, 7).type).toBe('u32');
  });

  it('bitcasts and group maxima', () => {
    expect(() => d.asU32(b)).toThrow('bitcast: operand types (bool) are not allowed');
    expect(() => d.groupMax(u)).toThrow('groupMax: operand types (u32) are not allowed');
    expect(d.asF32(u).type).toBe('f32');
    expect(d.asU32(u)).toBe(u); // same type: no node
  });
});

describe('literals', () => {
  it('lift to the other operand type, f32 when there is none', () => {
    expect(d.add(u, 3).type).toBe('u32');
    expect(d.add(3, i).type).toBe('i32');
    expect(d.add(2, 3).type).toBe('f32');
    expect(d.and(true, b).type).toBe('bool');
  });
  it('a fractional literal where an integer is expected, or a number where a bool is, throws', () => {
    expect(() => d.add(u, 0.5)).toThrow(new TypeError('the number 0.5 is not an integer, but a u32 is expected'));
    expect(() => d.and(b, 1)).toThrow('cannot use the number 1 where a bool is expected');
  });
  it('any 32-bit pattern lifts (u32 and i32 spellings alike)', () => {
    expect(d.and(u, 0xffffffff)).toBe(d.and(u, d.constant('u32', 0xffffffff)));
    expect(d.and(u, -1)).toBe(d.and(u, d.constant('u32', 0xffffffff)));
    expect(d.and(i, 0x80000000)).toBe(d.and(i, d.constant('i32', -(2 ** 31))));
  });
  it('a literal wider than 32 bits throws, naming the number and the type (2^32 used to become 0)', () => {
    expect(() => d.and(u, 2 ** 32)).toThrow(
      new RangeError('the number 4294967296 does not fit in 32 bits, but a u32 is expected'),
    );
    expect(() => d.add(i, -(2 ** 31) - 1)).toThrow(
      'the number -2147483649 does not fit in 32 bits, but a i32 is expected',
    );
    expect(() => d.shl(u, 2 ** 40)).toThrow(RangeError);
  });
  it('f32 literals are unrestricted (they round, they do not wrap)', () => {
    expect(d.add(f, 2 ** 40).type).toBe('f32');
    expect((d.add(f, 0.1) as { b: { value: number } }).b.value).toBe(Math.fround(0.1));
  });
});

describe('hash-consing through the builders', () => {
  it('equal structure is the same node; −0, +0 and NaN constants are three nodes', () => {
    expect(d.mul(f, d.uniform('lr'))).toBe(d.mul(f, d.uniform('lr')));
    const zero = d.constant('f32', 0),
      negZero = d.constant('f32', -0),
      nan = d.constant('f32', NaN);
    expect(new Set([zero, negZero, nan]).size).toBe(3);
    expect(d.add(f, -0)).not.toBe(d.add(f, 0));
    expect(d.constant('f32', NaN)).toBe(nan);
  });
});
