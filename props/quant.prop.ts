// Group quantization (spec §2, §0): round-trip bounds, zeros, the variance rule, tail groups,
// companding vs linear on heavy tails, scale flush, fp16 compatibility, bad input.
// The reference quantizer below is written from the spec in plain JS (Math.fround, float64
// rounding for the fp16 cast), not with the DSL.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { dequantize, quantize, type QuantizeOptions } from '../runtime/codecs.ts';
import { quantCodec } from '../dsl/quant.ts';
import { quant } from './bounds.ts';
import { checkNoNaNSpreading, checkRoundTripBound, checkZeroPreservation } from './checkers.ts';
import { heavyTailed, heavyTailedNonneg, normal, prng, studentTArray } from './f32.ts';

const fr = Math.fround;
const RUNS = 10_000;
const modes = {
  'signed linear': { signed: true },
  'signed softsign': { signed: true, softsign: true },
  'unsigned linear': { signed: false },
  'unsigned sqrt': { signed: false, sqrt: true },
} as const;
const scales = ['bf16', 'fp16', 'f32'] as const;

function exponentOf(a: number): number {
  let e = Math.floor(Math.log2(a));
  while (2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  return e;
}
/** fp16 RNE of a positive f32, by float64 arithmetic (value, not bits). */
function fp16Value(s: number): number {
  const spacing = 2 ** (Math.max(exponentOf(s), -14) - 10);
  const q = s / spacing,
    f = Math.floor(q),
    d = q - f;
  const v = (d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f) * spacing;
  return v >= 65520 ? Infinity : v;
}
function fp16Bits(v: number): number {
  if (v === Infinity) return 0x7c00;
  if (v < 2 ** -14) return v / 2 ** -24;
  const e = exponentOf(v);
  return ((e + 15) << 10) | (v / 2 ** (e - 10) - 1024);
}
function fp16FromBits(h: number): number {
  const F = (h >> 10) & 31,
    m = h & 1023;
  return F === 31 ? Infinity : F === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (F - 15);
}
/** The smallest bf16 ≥ s (s ≥ 2^−126). */
function bf16Up(s: number): number {
  const spacing = 2 ** (exponentOf(s) - 7);
  return Math.ceil(s / spacing) * spacing;
}
/** The scale each mode decodes with, from the group's absmax of a. */
function decodeScale(scale: (typeof scales)[number], absmax: number): number {
  if (scale === 'fp16') return fp16Value(Math.max(absmax, fr(1e-12)));
  const s = Math.max(absmax, 2 ** -126);
  return scale === 'bf16' ? bf16Up(s) : s;
}

/** The reference algorithm (spec §2, fp16 scales): codes and fp16 scale bits. */
function referenceQuantize(x: Float32Array, o: { signed: boolean; sqrt?: boolean; softsign?: boolean }, G = 32) {
  const Qm = o.signed ? 127 : 255;
  const codes = new Int32Array(x.length),
    scaleBits = new Uint16Array(Math.ceil(x.length / G));
  for (let g = 0; g * G < x.length; g++) {
    const a = Array.from(x.subarray(g * G, (g + 1) * G), (v) => (o.sqrt ? fr(Math.sqrt(v)) : v));
    const s = Math.max(...a.map(Math.abs), fr(1e-12));
    a.forEach((v, i) => {
      const u = fr(v / s);
      const y = o.softsign ? fr(fr(2 * u) / fr(1 + Math.abs(u))) : u;
      codes[g * G + i] = Math.floor(fr(fr(y * Qm) + 0.5));
    });
    scaleBits[g] = fp16Bits(fp16Value(s));
  }
  return { codes, scaleBits };
}

const signedData = () => heavyTailed({ minLog10: -6, maxLog10: 3 });
const nonnegData = () => heavyTailedNonneg({ minLog10: -4, maxLog10: 2 });
/** fp16 scales overflow to Inf at absmax ≥ 65520 (the reference; tested on its own below): keep below. */
const belowFp16Max = (a: fc.Arbitrary<Float32Array>) => a.map((x) => x.map((v) => Math.max(-6e4, Math.min(6e4, v))));

describe.each(Object.entries(modes))('%s', (_, mode: QuantizeOptions) => {
  const data = (scale: (typeof scales)[number] = 'bf16') =>
    (scale === 'fp16' ? belowFp16Max : (a: fc.Arbitrary<Float32Array>) => a)(mode.signed ? signedData() : nonnegData());
  const Qm = mode.signed ? 127 : 255;

  test.each(scales)('zeros decode to exactly zero (%s scales, 10^4 cases)', (scale) => {
    checkZeroPreservation(quantCodec({ ...mode, scale }), { data: data(scale), numRuns: RUNS });
  });

  test.each(scales)('per-element round-trip error within the spec §2 bound (%s scales, 10^4 cases)', (scale) => {
    let specForm = 0;
    checkRoundTripBound(
      quantCodec({ ...mode, scale }),
      (c) => {
        const amax = mode.sqrt ? fr(Math.sqrt(c.absmax)) : c.absmax;
        const sd = decodeScale(scale, amax); // the scale decode multiplies by
        // fp16 compatibility: codes are made against the f32 absmax sc, decoded with sd = fp16(sc);
        // that adds |u|·|sc − sd| (sd may flush to 0). Elsewhere sc = sd.
        const sc = scale === 'fp16' ? Math.max(amax, fr(1e-12)) : sd;
        const a = mode.sqrt ? Math.sqrt(c.x) : Math.abs(c.x),
          u = a / sc;
        const extra = u * Math.abs(sc - sd) + (scale === 'fp16' ? sc * quant.scaleSlack : 0);
        if (mode.sqrt) {
          if (scale !== 'fp16') return quant.sqrt(c.x, sd);
          const da = sd / 510 + extra + (a + sd) * sd * quant.scaleSlack;
          return da * (2 * a + da);
        }
        if (!mode.softsign) return quant.linear(sd, Qm) + extra;
        const uHat = sd === 0 ? 0 : Math.abs(c.decoded) / sd;
        if (Math.abs(c.x - c.decoded) > quant.softsign(sd, u) + extra) specForm++;
        return quant.softsign(sd, Math.max(u, uHat)) + extra;
      },
      { data: data(scale), numRuns: RUNS },
    );
    if (mode.softsign)
      console.log(
        `softsign/${scale}: elements beyond the first-order form s(1+|u|)²/(4·127) (within the mean-value form): ${specForm}`,
      );
  });

  test('NaN in a group: that group stays defined, no other group changes (10^4 cases)', () => {
    for (const scale of scales)
      checkNoNaNSpreading(quantCodec({ ...mode, scale }), { data: data(scale), numRuns: RUNS });
  });

  test('fp16 compatibility: codes and scales equal the reference algorithm on fixed vectors', () => {
    const rand = prng(7);
    const vectors: Float32Array[] = [];
    for (const n of [5, 12, 16, 17, 32, 17 * 32, 1024 * 16]) {
      vectors.push(new Float32Array(n));
      vectors.push(new Float32Array(n).fill(mode.signed ? 127 : 255));
      vectors.push(new Float32Array(n).map(() => rand() * 0.01));
      vectors.push(new Float32Array(n).map((_, i) => normal(rand) * 10 ** ((i % 7) - 4)));
      for (let seed = 0; seed < 10; seed++)
        vectors.push(new Float32Array(n).map(() => (mode.signed ? normal(rand) : Math.abs(normal(rand)))));
    }
    vectors.push(Float32Array.of(1e-9, -2e-8, 3e-10, 7e4, 65519, 65520)); // fp16 flush and overflow
    for (const x of vectors) {
      const input = mode.signed ? x : x.map(Math.abs);
      const ref = referenceQuantize(input, mode as typeof mode & { signed: boolean });
      const got = quantize(input, { ...mode, scale: 'fp16' });
      expect(Array.from(got.codes)).toEqual(Array.from(ref.codes));
      expect(Array.from(got.scales)).toEqual(Array.from(ref.scaleBits));
    }
  });

  test.each(scales)(
    'tail groups: tail error ≤ max(2 × interior max, 1e−6), last scale near the tail absmax (%s)',
    (scale) => {
      const opts: QuantizeOptions = { ...mode, scale };
      const rand = prng(3);
      for (const n of [33, 65, 100, 999, 1000, 1025, 2000, 4097]) {
        const x = new Float32Array(n).map(() => 5 * normal(rand)).map((v) => (mode.signed ? v : Math.abs(v)));
        const q = quantize(x, opts),
          y = dequantize(q, opts);
        const tail = Math.floor((n - 1) / 32) * 32;
        let interior = 0,
          tailErr = 0,
          tailMax = 0;
        x.forEach((v, i) => {
          const e = Math.abs(y[i]! - v);
          if (i < tail) interior = Math.max(interior, e);
          else {
            tailErr = Math.max(tailErr, e);
            tailMax = Math.max(tailMax, mode.sqrt ? Math.sqrt(v) : Math.abs(v));
          }
        });
        expect(tailErr).toBeLessThanOrEqual(Math.max(quant.tailFactor * interior, quant.tailFloor));
        const bits = q.scales[q.scales.length - 1]!;
        const last =
          scale === 'f32'
            ? bits
            : scale === 'bf16'
              ? new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!
              : fp16FromBits(bits);
        const rel = last / fr(tailMax) - 1;
        // fp16: within 0.3% (RNE, 2^−11); bf16: rounded up, within 2^−7; f32: exact.
        if (scale === 'fp16') expect(Math.abs(rel)).toBeLessThanOrEqual(quant.tailScaleRel);
        else if (scale === 'bf16') expect(rel >= 0 && rel <= 2 ** -7).toBe(true);
        else expect(rel).toBe(0);
      }
    },
  );
});

const fromBf16Value = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
const f32Bits = (a: number) => new Uint32Array(new Float32Array([a]).buffer)[0]!;
const f32FromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0]!;

test('variance rule: with √-companded codes the entries with √v < s/510 get code 1 (v > 0) or 0 (v = 0); no nonzero v decodes to 0 unless its square underflows (10^4 cases)', () => {
  let floored = 0;
  const G = 32,
    opts = { signed: false, sqrt: true } as const;
  fc.assert(
    fc.property(heavyTailedNonneg({ minLog10: -20, maxLog10: 3 }), (x) => {
      const q = quantize(x, opts),
        y = dequantize(q, opts);
      for (let g = 0; g * G < x.length; g++) {
        const group = x.subarray(g * G, (g + 1) * G);
        // The codes were made with the stored scale: the absmax of √v rounded up to bf16.
        const s = fromBf16Value(q.scales[g]!);
        expect(s).toBe(bf16Up(Math.max(Math.max(...Array.from(group, (w) => fr(Math.sqrt(w)))), 2 ** -126)));
        group.forEach((v, j) => {
          const i = g * G + j,
            small = Math.sqrt(v) < s / 510;
          // Round half up, except that a nonzero √v never stores 0 (dsl/quant.ts says why).
          const want = v === 0 ? 0 : small ? 1 : undefined;
          if (want !== undefined ? q.codes[i] !== want : q.codes[i]! < 1)
            throw new Error(`v = ${v} (√v = ${Math.sqrt(v)}, s/510 = ${s / 510}) has code ${q.codes[i]}`);
          // A nonzero code decodes to 0 only if (code/255 · s)², computed in f32, underflows: the
          // square rounds to 0 at 2^-150 and below (2^-150 itself is a tie, to even: 0), so the
          // test squares the f32 product and rounds as the codec does, not in doubles.
          const t = fr(fr(q.codes[i]! / 255) * s);
          if (v !== 0 && y[i] === 0 && fr(t * t) !== 0)
            throw new Error(`v = ${v} has code ${q.codes[i]} but decodes to 0`);
          if (small && v !== 0) {
            floored++;
            expect(y[i]).toBe(fr(t * t));
          }
        });
      }
    }),
    { numRuns: RUNS },
  );
  console.log(`variance rule: ${floored} nonzero entries below s/510 stored as code 1, none as 0`);
  expect(floored).toBeGreaterThan(0);
});

test.each(['bf16', 'fp16'] as const)(
  'variance rule at the threshold (%s scales): exact, except the reference f32 ⌊t + ½⌋ in fp16 mode',
  (scale) => {
    // Groups whose max is v = s² with s a bf16 (exact square, exact root, stored as is), plus the
    // f32 values a of √v nearest the first rounding threshold (±8 ulps): s/510 between codes 0 and
    // 1 in fp16 mode; in ours, where a nonzero √v stores at least 1, 3s/510 between 1 and 2.
    const rand = prng(9),
      opts = { signed: false, sqrt: true, scale } as const,
      low = scale === 'fp16' ? 0 : 1;
    let wrong = 0,
      wrongT = 0,
      far = 0,
      tried = 0;
    for (let k = 0; k < 2000; k++) {
      const s = fromBf16Value(((Math.floor(rand() * 28) + 110) << 7) | Math.floor(rand() * 128)); // s² stays fp16-normal
      const at = ((2 * low + 1) * s) / 510;
      const mid = f32Bits(fr(at));
      const x = new Float32Array(32);
      x[0] = s * s;
      for (let j = 1; j < 18; j++) x[j] = fr(f32FromBits(mid + j - 9) ** 2);
      const q = quantize(x, opts);
      for (let j = 1; j < 18; j++) {
        const a = fr(Math.sqrt(x[j]!));
        tried++;
        expect([low, low + 1]).toContain(q.codes[j]);
        if (a < at !== (q.codes[j] === low)) {
          wrong++;
          // fp16 mode: only the f32 just below s/510 (see below); ours: within an ulp either side.
          const near =
            scale === 'fp16' ? a < at && f32Bits(a) + 1 >= f32Bits(at) : Math.abs(f32Bits(a) - f32Bits(at)) <= 1;
          if (!near) far++;
        }
        // The codec's own t in f32, rounded half up exactly: (a/s)·255 in fp16 mode (the
        // reference's division), (a·(1/s))·255 with our scales (dsl/quant.ts).
        const u = scale === 'fp16' ? fr(a / s) : fr(a * fr(1 / s));
        if (fr(u * 255) < low + 0.5 !== (q.codes[j] === low)) wrongT++;
      }
    }
    console.log(
      `variance threshold, ${scale} scales: ${wrong} of ${tried} f32 values within ±8 ulps of ${low ? '3s' : 's'}/510 on the other side (${wrongT} by the codec's f32 t)`,
    );
    // The reference's ⌊t + ½⌋ in f32 sends t = ½ − 2^−25 to 1, so in fp16 mode the f32 just below
    // the threshold can get code 1; our modes round half up exactly.
    // At 3s/510 the f32 quotient a/s and the product by 255 round: values within an ulp of the
    // threshold may land on either side, but t itself is rounded half up exactly.
    if (scale === 'bf16') expect(wrongT).toBe(0);
    expect(far).toBe(0);
  },
);

test('fp16 scales overflow like the reference: absmax ≥ 65520 stores Inf, codes still made against the f32 absmax', () => {
  const x = Float32Array.of(65520, 1, 0, -70000);
  const q = quantize(x, { signed: true, scale: 'fp16' });
  expect(q.scales[0]).toBe(0x7c00);
  const y = dequantize(q, { signed: true, scale: 'fp16' });
  expect(Array.from(y)).toEqual([Infinity, NaN, NaN, -Infinity]); // code 0 · Inf = NaN, as the reference decodes
  const b = quantize(x, { signed: true, scale: 'bf16' });
  expect(Array.from(dequantize(b, { signed: true, scale: 'bf16' })).every(Number.isFinite)).toBe(true);
});

test('heavy tails (Student-t, ν = 3): companding beats linear in NMSE for m and v (ratios printed)', () => {
  const nmse = (x: Float32Array, y: Float32Array) => {
    let num = 0,
      den = 0;
    x.forEach((v, i) => {
      num += (v - y[i]!) ** 2;
      den += v * v;
    });
    return num / den;
  };
  const m = studentTArray(21, 1 << 20, 3, -3),
    g = studentTArray(22, 1 << 20, 3, -3),
    v = g.map((w) => fr(w * w));
  const rt = (x: Float32Array, o: QuantizeOptions) => dequantize(quantize(x, o), o);
  for (const scale of scales) {
    const mLin = nmse(m, rt(m, { signed: true, scale })),
      mSoft = nmse(m, rt(m, { signed: true, softsign: true, scale }));
    const vLin = nmse(v, rt(v, { signed: false, scale })),
      vSqrt = nmse(v, rt(v, { signed: false, sqrt: true, scale }));
    console.log(
      `${scale} scales, NMSE  m: linear ${mLin.toExponential(2)} softsign ${mSoft.toExponential(2)} (ratio ${(mLin / mSoft).toFixed(2)})  v: linear ${vLin.toExponential(2)} sqrt ${vSqrt.toExponential(2)} (ratio ${(vLin / vSqrt).toFixed(2)})`,
    );
    expect(mSoft).toBeLessThan(mLin);
    expect(vSqrt).toBeLessThan(vLin);
  }
});

test('scale flush: bf16 scales keep every nonzero group down to 1e−30; fp16 flushes below ~3e−8 (the reference)', () => {
  const rand = prng(5),
    G = 32,
    groups = 20_000;
  const x = new Float32Array(groups * G);
  const absmax = new Float64Array(groups);
  for (let g = 0; g < groups; g++) {
    const scale = 10 ** (-30 + 33 * rand());
    for (let i = 0; i < G; i++) x[g * G + i] = normal(rand) * scale;
    absmax[g] = Math.max(...Array.from(x.subarray(g * G, (g + 1) * G), Math.abs));
  }
  const allZero = (y: Float32Array, g: number) => y.subarray(g * G, (g + 1) * G).every((v) => v === 0);
  const counts: Record<string, number> = {};
  for (const scale of ['bf16', 'fp16'] as const) {
    const y = dequantize(quantize(x, { signed: true, softsign: true, scale }), { signed: true, softsign: true, scale });
    let flushed = 0,
      flushedAbove = 0;
    for (let g = 0; g < groups; g++)
      if (allZero(y, g)) {
        flushed++;
        if (absmax[g]! >= 3e-8) flushedAbove++;
      }
    counts[scale] = flushed;
    if (scale === 'bf16') expect(flushed).toBe(0);
    else {
      // fp16: every group with absmax < 2^−25 (half the smallest subnormal) stores scale 0 → all zeros.
      const below = Array.from(absmax).filter((a) => a < 2 ** -25).length;
      expect(flushed).toBe(below);
      expect(flushedAbove).toBe(0);
    }
  }
  console.log(
    `groups decoding to all zeros out of ${groups} (absmax log-uniform in [1e−30, 1e3]): bf16 ${counts.bf16}, fp16 ${counts.fp16}`,
  );
});

test('mismatched lengths throw a RangeError naming the arrays', () => {
  const q = quantize(new Float32Array(70), { signed: true });
  expect(q.scales.length).toBe(3);
  expect(() => dequantize({ codes: q.codes, scales: q.scales.subarray(0, 2) }, { signed: true })).toThrow(
    /codes has 70 .* scales has 2/,
  );
  expect(() => dequantize({ codes: q.codes, scales: q.scales }, { signed: true, groupSize: 16 })).toThrow(RangeError);
  expect(() => quantize(new Float32Array(4), { signed: true, groupSize: 0 })).toThrow(/groupSize/);
});

test('bf16 scales stay finite at the top of the f32 range: an absmax above 2^126 saturates there, no Inf, no NaN', () => {
  // The scale is capped at 2^126 so that its reciprocal, which the codes are made with, is a normal
  // f32 (dsl/quant.ts); states beyond ≈ 8.5e37 saturate at ±2^126 instead of overflowing.
  const x = Float32Array.of(3.4e38, -3.4e38, 1e38, 0, -1, 2 ** 126);
  for (const mode of [{ signed: true }, { signed: true, softsign: true }] as const) {
    const q = quantize(x, mode);
    expect(q.scales[0]).toBe(0x7e80);
    const y = dequantize(q, mode);
    expect(Array.from(y).every(Number.isFinite)).toBe(true);
    expect([y[0], y[1], y[2], y[5]]).toEqual([2 ** 126, -(2 ** 126), 2 ** 126, 2 ** 126]);
  }
  // Just under the cap nothing saturates: the scale is the absmax rounded up, as everywhere.
  const under = Float32Array.of(2 ** 125 * 1.5, 1);
  const q = quantize(under, { signed: true });
  expect(dequantize(q, { signed: true })[0]).toBe(2 ** 125 * 1.5);
});
