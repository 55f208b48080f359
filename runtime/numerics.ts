// Numerics: the errors a step can raise about its inputs.
//
// The numerics check (spec §4.4): a weight of magnitude ~maxabs stored with `bits` bits of
// precision (bf16 + int8 correction: 24) has a resolution of ULP = 2^(⌊log2 maxabs⌋ − m), with
// m = bits − 1 − 8 mantissa bits. An update much smaller than that is rounded away. The reference
// intends to raise when lr·k < 0.49·ULP but adds log2(0.49) on the wrong side, so its threshold is
// ≈ 2.04·ULP; we implement the intended 0.49·ULP.

export class NumericsError extends Error {}

/** A step refused because gradients hold NaN or ±Inf (onNonFinite: 'error'); `counts` by tensor. */
export class NonFiniteError extends Error {
  readonly counts: Readonly<Record<string, number>>;
  constructor(counts: ReadonlyMap<string, number>) {
    const list = [...counts].map(([n, c]) => `${JSON.stringify(n)}: ${c}`).join(', ');
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    super(
      `step: ${total} non-finite gradient element(s) (${list}), in the gradient's storage; the step was not taken and the optimizer is unchanged`,
    );
    this.counts = Object.fromEntries(counts);
  }
}

/** NaN and ±Inf elements of a gradient as stored: f32 values, or bf16 words (exponent all ones). */
export function countNonFinite(g: ArrayLike<number>): number {
  let c = 0;
  if (g instanceof Uint16Array) {
    for (let i = 0; i < g.length; i++) if ((g[i]! & 0x7f80) === 0x7f80) c++;
  } else for (let i = 0; i < g.length; i++) if (!Number.isFinite(g[i]!)) c++;
  return c;
}

/** A message when lr·k is below 0.49 ULP of the largest weight, else undefined. */
export function numericsProblem(name: string, maxAbs: number, lr: number, k: number, bits: number): string | undefined {
  if (!(lr > 0) || !(maxAbs > 0) || !Number.isFinite(maxAbs)) return undefined;
  const mantissa = bits - 1 - 8;
  const ulp = 2 ** (Math.floor(Math.log2(maxAbs)) - mantissa);
  if (lr * k >= 0.49 * ulp) return undefined;
  return `numerics: tensor ${name} has max |w| ${maxAbs.toPrecision(4)}, whose ${bits}-bit resolution is ${ulp.toExponential(3)}; an update of lr·${k} = ${(lr * k).toExponential(3)} is below 0.49 of it and would be rounded away (raise lr, use more master bits, or disable checkNumerics)`;
}
