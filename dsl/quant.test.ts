import { expect, test } from 'vitest';
import { linearCodec, momentumCodec, quantCodec, varianceCodec } from './quant.ts';

test('fields: int8/uint8 codes and a group scale in the chosen storage', () => {
  expect(momentumCodec().fields).toEqual([
    { name: '', storage: 'i8', axis: 'element' },
    { name: 'scale', storage: 'u16', axis: 'group' },
  ]);
  expect(varianceCodec('f32').fields[1]!.storage).toBe('f32');
  expect(varianceCodec().fields[0]!.storage).toBe('u8');
  expect(linearCodec(false, 'fp16').name).toBe('qu8-fp16');
  expect(momentumCodec().name).toBe('qi8-softsign-bf16');
  expect(varianceCodec().name).toBe('qu8-sqrt-bf16');
});

test('bad options throw naming the option', () => {
  expect(() => quantCodec({ signed: true, scale: 'fp8' as 'bf16' })).toThrow(
    /scale must be 'bf16', 'fp16' or 'f32', got fp8/,
  );
  expect(() => quantCodec({ signed: 'yes' as unknown as boolean })).toThrow(/signed must be a boolean/);
});
