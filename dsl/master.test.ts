import { expect, test } from 'vitest';
import { evaluate } from '../compiler/ir/semantics.ts';
import type { Expr } from './ops.ts';
import { field } from './ops.ts';
import { correctionMax, f32Codec, masterCodec } from './master.ts';

const run = (e: Expr, env: Record<string, number>) => evaluate(e, { load: (f) => env[f]!, uniform: () => 0 });

test('fields follow the options', () => {
  expect(masterCodec({ narrow: 'bf16', bits: 24 }).fields).toEqual([
    { name: '', storage: 'u16', axis: 'element' },
    { name: 'ecc', storage: 'i8', axis: 'element' },
  ]);
  expect(masterCodec({ narrow: 'fp16', bits: 32 }).fields[1]!.storage).toBe('i16');
  expect(masterCodec({ narrow: 'bf16', bits: null }).fields).toHaveLength(1);
  expect(f32Codec.fields).toEqual([{ name: '', storage: 'f32', axis: 'element' }]);
  expect(correctionMax(24)).toBe(127);
});

test('bad options throw naming the option', () => {
  expect(() => masterCodec({ narrow: 'fp8' as 'bf16', bits: 24 })).toThrow(/narrow/);
  expect(() => masterCodec({ narrow: 'bf16', bits: 16 as 24 })).toThrow(/bits must be 24, 32 or null, got 16/);
});

test('encode then decode: 1 + 2^−9 (a quarter bf16 ulp) is exact with int8; q = 32 (=127/4, away from zero)', () => {
  const c = masterCodec({ narrow: 'bf16', bits: 24 });
  const theta = 1 + 2 ** -9;
  const [h, q] = c.encode(field('theta', 'f32')).map((e) => run(e, { theta }));
  expect(h).toBe(0x3f80);
  expect(q).toBe(64); // r = e/S = 2^−9 / 2^−8 = ½ → ⌊½·127 + ½⌋ = 64
  const back = run(c.decode([field('h', 'u16'), field('q', 'i8')]), { h: h!, q: q! });
  expect(Math.abs(back - theta)).toBeLessThanOrEqual(2 ** -8 / (2 * 127));
});

test('f32Codec is the identity', () => {
  const v = field('v', 'f32');
  expect(f32Codec.decode([v])).toBe(v);
  expect(f32Codec.encode(v)).toEqual([v]);
});
