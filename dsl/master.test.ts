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

// Spec §1 computed in f64, independently of the IR: the decode is n + fl32(q/Q)·2^L rounded once
// (in f64 the sum is exact: at most 8 + 24 significant bits 34 binades apart); the encode is
// r = (θ − n)/2^L exactly, then ⌊|r|·Q + ½⌋ in f32 with r's sign. Every bf16 exponent field and
// sign, with edge mantissas: the codec forms the sum in n's binade moved to [1, 2) for fields 2–254
// and falls back to the plain sum below and at 255, so each branch and both edges are here.
test('bf16 decode and encode: spec §1 in f64 at every exponent field, both signs, edge mantissas', () => {
  const f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  const bf = (h: number) => ((u[0] = h << 16), f[0]!);
  for (const bits of [24, 32] as const) {
    const Q = correctionMax(bits),
      c = masterCodec({ narrow: 'bf16', bits });
    const decode = c.decode([field('h', 'u16'), field('q', bits === 24 ? 'i8' : 'i16')]);
    const [encH, encQ] = c.encode(field('theta', 'f32'));
    for (let F = 0; F < 256; F++)
      for (const sign of [0, 0x8000])
        for (const m of [0, 1, 0x3f, 0x40, 0x7e, 0x7f]) {
          const h = sign | (F << 7) | m,
            n = bf(h),
            L = Math.max(F, 1) - 127 - 8;
          for (const q of [-Q, -64, -1, 0, 1, 63, Q]) {
            const want = Math.fround(n + Math.fround(q / Q) * 2 ** L);
            expect(run(decode, { h, q }), `h ${h.toString(16)} q ${q}`).toBe(want);
            if (!Number.isFinite(want) || F === 255) continue;
            // Re-encoding: n again where want rounds back to it, and q from e/2^L (spec steps 2–7).
            const theta = want;
            const h2 = run(encH!, { theta }),
              r = Math.max(-1, Math.min(1, (theta - bf(h2)) / 2 ** (Math.max((h2 >> 7) & 0xff, 1) - 135)));
            const q2 = Math.sign(r) * Math.floor(Math.fround(Math.fround(Math.abs(r) * Q) + 0.5));
            expect(run(encQ!, { theta }), `θ ${theta} (h ${h.toString(16)} q ${q})`).toBe(q2 === 0 ? 0 : q2);
          }
        }
  }
});
