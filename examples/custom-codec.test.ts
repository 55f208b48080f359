// The example codec checked with the same property checkers a user would call (props/).
import { expect, test } from 'vitest';
import { checkNoNaNSpreading, checkRoundTripBound, checkZeroPreservation, runCodec } from '../props/checkers.ts';
import { heavyTailed } from '../props/f32.ts';
import { fp8e4m3Codec } from './custom-codec.ts';

/** The smallest bf16 ≥ s (s a positive normal f32), computed in float64. */
function bf16Up(s: number): number {
  let e = Math.floor(Math.log2(s));
  while (2 ** e > s) e--;
  while (2 ** (e + 1) <= s) e++;
  const spacing = 2 ** (e - 7);
  return Math.ceil(s / spacing) * spacing;
}

test('fp8 e4m3 with a bf16 group scale: within 2^−4 relative (2^−10·scale absolute below 2^−6·scale), 10^4 cases', () => {
  checkRoundTripBound(
    fp8e4m3Codec,
    (c) => {
      const s = bf16Up(Math.max(Math.fround(c.absmax / 448), 2 ** -126));
      return Math.max(Math.abs(c.x) / 16, s / 1024) * (1 + 2 ** -20);
    },
    { data: heavyTailed({ minLog10: -30, maxLog10: 30 }), numRuns: 10_000 },
  );
});

test('fp8 e4m3: zeros stay zero and a NaN stays in its group (10^4 cases each)', () => {
  checkZeroPreservation(fp8e4m3Codec, { data: heavyTailed(), numRuns: 10_000 });
  checkNoNaNSpreading(fp8e4m3Codec, { data: heavyTailed(), numRuns: 10_000 });
});

test('fp8 e4m3: every one of the 256 codes decodes to its value (scale 1)', () => {
  const r = runCodec(fp8e4m3Codec, 32);
  const codes = new Uint8Array(256).map((_, i) => i);
  const y = r.decode({ v: codes, v_scale: new Uint16Array(8).fill(0x3f80) }, 256);
  for (let c = 0; c < 256; c++) {
    const E = (c >> 3) & 15,
      M = c & 7,
      sign = c & 0x80 ? -1 : 1;
    const want = (c & 0x7f) === 0x7f ? NaN : sign * (E === 0 ? M * 2 ** -9 : (1 + M / 8) * 2 ** (E - 7));
    expect(y[c]).toBe(want);
  }
  // Encoding those values back gives the same codes (with a group whose absmax is 448: scale 1).
  const x = Float32Array.from(y, (v) => (Number.isNaN(v) ? 0 : v));
  for (let g = 0; g < 8; g++) x[g * 32 + 31] = g < 4 ? 448 : -448; // pin every group's scale to 1
  const back = r.encode(x).v as Uint8Array;
  for (let c = 0; c < 256; c++)
    if (c % 32 !== 31 && (c & 0x7f) !== 0x7f) expect(back[c], `code ${c}`).toBe(c === 0x80 ? 0x80 : c);
});
