// The reference's test_ecc_invariants (spec §5): for every one of the 2^23 mantissas of a (sign,
// exponent), seven implications between the errors without correction (e0), with int8 (e8) and
// with int16 (e16), each allowed at most the reference's exception count. The codec kernels run
// over whole 2^23-element typed arrays (no per-value fast-check: that would take hours).
// CI: six exponents per narrow type (normal range, narrow-subnormal edge, fp32/narrow subnormals).
// FLASHOPTIM_FULL_SWEEP=1: every exponent the reference sweeps.
import { describe, expect, test } from 'vitest';
import { computeErrorBits, fromBf16, fromFp16, reconstructFp32, toBf16, toFp16 } from '../runtime/codecs.ts';
import { eccInvariantExceptions, type NarrowName } from './bounds.ts';

const FULL = process.env.FLASHOPTIM_FULL_SWEEP === '1';
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
// f32 exponent −127 stands for the f32 subnormals (biased exponent field 0), as in the reference.
const exponents: Record<NarrowName, number[]> = FULL
  ? { bf16: range(-127, 127), fp16: range(-30, 15) }
  : { bf16: [-127, -126, -1, 0, 60, 127], fp16: [-30, -24, -15, -14, 0, 15] };
/** Where the reference's "subnormal" exception counts apply. */
const subnormal = (t: NarrowName, e: number) => (t === 'bf16' ? e === -127 : e <= -15);

const N = 1 << 23;
const x = new Float32Array(N);
const xBits = new Uint32Array(x.buffer);

/** Counts of violations of implications #1..#7 over every mantissa of one (sign, exponent). */
function sweep(t: NarrowName, sign: 0 | 1, e: number): number[] {
  const high = ((sign << 31) | ((e === -127 ? 0 : e + 127) << 23)) >>> 0;
  for (let m = 0; m < N; m++) xBits[m] = (high | m) >>> 0;
  const h = t === 'bf16' ? toBf16(x) : toFp16(x);
  const n = t === 'bf16' ? fromBf16(h) : fromFp16(h);
  const opts8 = { narrow: t, masterWeightBits: 24 } as const,
    opts16 = { narrow: t, masterWeightBits: 32 } as const;
  const y8 = reconstructFp32(h, computeErrorBits(x, h, opts8), opts8);
  const y16 = reconstructFp32(h, computeErrorBits(x, h, opts16), opts16);
  const c = [0, 0, 0, 0, 0, 0, 0];
  const fr = Math.fround,
    R8 = fr(1 / 127),
    R16 = fr(1 / 32767);
  for (let i = 0; i < N; i++) {
    const v = x[i]!,
      nv = n[i]!;
    if (nv === Infinity || nv === -Infinity) continue; // the reference masks infs after the cast
    // Errors and relative errors in f32, as the reference computes them with torch.
    const e0 = Math.abs(fr(nv - v)),
      e8 = Math.abs(fr(y8[i]! - v)),
      e16 = Math.abs(fr(y16[i]! - v));
    const a = Math.abs(v),
      r0 = fr(e0 / a),
      r8 = fr(e8 / a),
      r16 = fr(e16 / a);
    if (e0 === 0 && e8 !== 0) c[0]!++;
    if (e0 === 0 && e16 !== 0) c[1]!++;
    if (e8 === 0 && e16 !== 0) c[2]!++;
    if (!(e16 <= e8)) c[3]!++;
    if (r0 >= R8 && !(r8 < R8)) c[4]!++;
    if (r0 >= R16 && !(r16 < R16)) c[5]!++;
    if (r0 >= R16 && r0 < R8 && !(e16 < e8)) c[6]!++;
  }
  return c;
}

describe.each(['bf16', 'fp16'] as const)(
  `%s: ECC invariants over all 2^23 mantissas (${FULL ? 'full sweep' : 'CI exponents'})`,
  (t) => {
    const rows: string[] = [];
    const worst = [0, 0, 0, 0, 0, 0, 0];
    test.each(
      exponents[t].flatMap(
        (e) =>
          [
            [e, 0],
            [e, 1],
          ] as [number, 0 | 1][],
      ),
    )('exponent %i, sign %i', (e, sign) => {
      const counts = sweep(t, sign, e);
      const allowed = eccInvariantExceptions[t][subnormal(t, e) ? 'subnormal' : 'normal'];
      counts.forEach((c, i) => {
        worst[i] = Math.max(worst[i]!, c);
      });
      if (counts.some((c) => c > 0)) rows.push(`${sign ? '-' : '+'}2^${e}: ${counts.join(' ')}`);
      counts.forEach((c, i) =>
        expect(
          c,
          `${t} exponent ${e} sign ${sign}: implication #${i + 1} has ${c} exceptions, allowed ${allowed[i]}`,
        ).toBeLessThanOrEqual(allowed[i]!),
      );
    });
    test('report', () => {
      console.log(
        `${t} ECC invariant exceptions (#1..#7) where nonzero:\n  ${rows.join('\n  ') || 'none'}\n  max per implication: ${worst.join(' ')}`,
      );
    });
  },
);
