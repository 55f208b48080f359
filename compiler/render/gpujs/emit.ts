// The statement builder the gpu.js renderer writes kernel bodies with. gpu.js holds every value in
// f32 (the cpu mode in f64), so this file is where "exact" is decided: every helper here only
// produces values that are exact in f32 (integers below 2^24, powers of two, results of a single
// correctly rounded operation), and the cpu mode wraps each f32 operation in Math.fround.

/** A 32-bit integer value as two exact 16-bit halves: bits = h·65536 + l, both in [0, 65535]. */
export interface Pair {
  readonly h: string;
  readonly l: string;
}

export class Emit {
  readonly lines: string[] = [];
  private next = 0;

  /**
   * @param fround wrap f32 results in Math.fround (the cpu mode computes in f64)
   * @param konst  the source text that reads f32 constant `v` exactly (the kernel's constant table)
   * @param prefix variable names
   */
  constructor(
    readonly fround: boolean,
    private readonly konst: (v: number) => string,
    private readonly prefix = 't',
    /** Tell −0 from +0 (by 1/x < 0). Off for fast-math shader compilers, where 1/0 = ∞ is poison. */
    readonly signedZeros = true,
  ) {}

  /** Bind `expr` to a fresh variable; returns its name. */
  let(expr: string): string {
    const name = `${this.prefix}${this.next++}`;
    this.lines.push(`let ${name} = ${expr};`);
    return name;
  }

  /** A mutable variable (for loops and branches). */
  mut(expr: string): string {
    return this.let(expr);
  }

  line(s: string): void {
    this.lines.push(s);
  }

  /** The result of one f32 operation, rounded to f32 where the mode computes wider. */
  f(expr: string): string {
    return this.let(this.fround ? `Math.fround(${expr})` : expr);
  }

  /**
   * A literal. Integers below 2^24 and powers of two (2^−64 … 2^64) print exactly and every
   * backend parses them exactly; anything else (NaN, ±∞, −0, other fractions) is read from the
   * constant table, so no shader compiler gets to round or reinterpret it.
   */
  lit(v: number): string {
    if (Object.is(v, -0) || v !== v || !Number.isFinite(v)) return this.konst(v);
    const a = Math.abs(v);
    const pow2 = a > 0 && 2 ** Math.round(Math.log2(a)) === a && Math.abs(Math.log2(a)) <= 64;
    if ((Number.isInteger(v) && a < 2 ** 24) || pow2) return v < 0 ? `(${v})` : String(v);
    return this.konst(v);
  }

  /**
   * "x is NaN" as a condition. Not `x != x`: the Vulkan driver here (lavapipe) folds that to false;
   * a NaN fails both ordered comparisons below, which every backend here keeps.
   */
  nan(x: string): string {
    return `!(${x} < 1 || ${x} >= 1)`;
  }

  /**
   * A constant read from the table even where a literal would be exact: a fast-math shader compiler
   * may reassociate x·2^63·2^63·2^23 into x·2^149 = x·∞, but it cannot fold values it cannot see.
   */
  opaque(v: number): string {
    return this.konst(v);
  }

  /** floor(x / 2^k) for an exact integer x (scaling by a power of two is exact). */
  shiftDown(x: string, k: number): string {
    return `Math.floor(${x} * ${this.lit(2 ** -k)})`;
  }

  /** x mod 2^k in [0, 2^k) for an exact integer x. */
  mod(x: string, k: number): string {
    return `(${x} - ${this.shiftDown(x, k)} * ${this.lit(2 ** k)})`;
  }

  /** 2^e for an integer e in [−126, 127], exactly: a product of 2^±(2^b) chosen by e's bits. */
  pow2(e: string): string {
    const t = this.let(`Math.abs(${e})`);
    const neg = this.let(`${e} < 0 ? 1 : 0`);
    let r = '1';
    for (let b = 0; b < 7; b++) {
      const bit = this.let(this.mod(this.shiftDown(t, b), 1));
      const up = 2 ** (2 ** b),
        down = 2 ** -(2 ** b);
      r = this.let(`${r} * (${bit} > 0.5 ? (${neg} > 0.5 ? ${this.lit(down)} : ${this.lit(up)}) : 1)`);
    }
    return r;
  }
}
