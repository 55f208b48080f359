// Error bounds as data: what each codec promises, in one place, so a test, a doc and a user's own
// suite all read the same numbers. Each bound cites where it comes from.

/** f32 ulp of x: 2^(max(⌊log2|x|⌋, −126) − 23) (spec §1). */
export function ulp32(x: number): number {
  const a = Math.abs(x);
  if (a === 0) return 2 ** -149;
  return 2 ** (Math.max(Math.floor(Math.log2(a)), -126) - 23);
}

export const narrowTypes = {
  bf16: { mantissa: 7, bias: 127, max: 3.3895313892515355e38 },
  fp16: { mantissa: 10, bias: 15, max: 65504 },
} as const;
export type NarrowName = keyof typeof narrowTypes;

export const master = {
  /** Correction magnitude Q per master width. */
  Q: { 24: 127, 32: 32767 } as const,
  /** Relative slack on the absolute bound (the worst case measured 0.99998 of it, spec §1). */
  absSlack: 1e-6,
  /**
   * |θ̂ − θ| ≤ S/(2Q) + ½·ulp32(θ), S = 2^L half a narrow ULP of the stored narrow value
   * (spec §1), for finite θ whose cast is finite.
   */
  absolute(S: number, Q: number, theta: number): number {
    return (S / (2 * Q) + 0.5 * ulp32(theta) + this.codeRounding(S, Q)) * (1 + this.absSlack);
  },
  /**
   * The spec's bound misses one term: the code q = ⌊|r|·Q + ½⌋ is taken from the f32 product r·Q
   * (spec §1 step 7, as the reference computes it), which is rounded by up to ½·ulp32(Q), so q can
   * be off by that fraction of a quantum S/Q. In the normal range ½·ulp32(θ) hides it; where the
   * narrow value is 0 or subnormal and θ is far smaller than S it does not. Measured: fp16 + int16,
   * θ = 1.6130380364742791e−9 (n = 0, q = 1774) has error 4.54858e−13 against the spec's
   * 4.54817e−13 (over by 9.2e−5 relative, far past the 1e−6 slack); this term covers it.
   */
  codeRounding(S: number, Q: number): number {
    return (S / Q) * 0.5 * ulp32(Q);
  },
  /** Relative bound in the narrow-normal range (spec §1). */
  relative(M: number, Q: number): number {
    return (2 ** -(M + 1) / (2 * Q)) * (1 + 2 ** -(M + 1)) + 2 ** -24;
  },
  /** Issue 3: max relative error of bf16 + int8 over 10^6 random values (spec table: 1.54e−5). */
  maxRelBf16Int8: 1.6e-5,
} as const;

export const quant = {
  /** Slack for f32 rounding in encode and decode, relative to the group scale. */
  scaleSlack: 2 ** -20,
  /** Linear codes: |x − x̂| ≤ s/(2·Qm). */
  linear(s: number, Qm: number): number {
    return s / (2 * Qm) + s * this.scaleSlack;
  },
  /**
   * Softsign codes (spec §2): |x − x̂| ≤ s·(1+|u|)²/(4·127), u = x/s. By the mean value theorem
   * the exact factor is (1+|ξ|)² for some ξ between u and û; `uMax` = max(|u|, |û|) makes the
   * bound rigorous, and it equals the spec's form when û is not further from 0 than u.
   */
  softsign(s: number, uMax: number): number {
    return (s * (1 + uMax) ** 2) / (4 * 127) + s * this.scaleSlack;
  },
  /**
   * √-companded unsigned codes (spec §2): |v − v̂| ≤ √v·s/255 + (s/510)², s the scale of √v. Our
   * scales (bf16, f32) store a nonzero √v below s/510 as code 1, not 0 (dsl/quant.ts): there
   * v̂ = (s/255)², so |v − v̂| ≤ (s/255)².
   */
  sqrt(v: number, s: number): number {
    const floored = v > 0 && Math.sqrt(v) < s / 510 ? (s / 255) ** 2 : 0;
    return Math.max((Math.sqrt(v) * s) / 255 + (s / 510) ** 2, floored) + (Math.sqrt(v) + s) * s * this.scaleSlack;
  },
  /** Tail groups (reference test_compression): tail max error ≤ max(2 × interior max, 1e−6). */
  tailFactor: 2,
  tailFloor: 1e-6,
  /** Last stored scale within 0.3% of the tail absmax (reference, fp16 scales). */
  tailScaleRel: 3e-3,
} as const;

/** Allowed exception counts of the reference's test_ecc_invariants (spec §5), per (sign, exponent). */
export const eccInvariantExceptions: Record<NarrowName, { normal: number[]; subnormal: number[] }> = {
  //          #1 #2  #3  #4    #5       #6       #7
  bf16: { normal: [0, 0, 32, 32, 0, 0, 32129], subnormal: [0, 0, 0, 0, 8192, 25, 24319] },
  fp16: { normal: [0, 0, 0, 0, 0, 0, 235656], subnormal: [0, 0, 8192, 16383, 7656268, 7602176, 123952] },
};
