// 32-bit integer operations legalized for gpu.js, where every value is an f32: an integer is a
// Pair of exact 16-bit halves (two's complement bits for i32), and every step below keeps each
// intermediate an integer below 2^24, so the results are bit-exact on every gpu.js mode. Integer
// division is a 32-step long division (a u32 divided by a power of two is a shift instead: a rule
// in legalize.ts).

import type { Emit, Pair } from './emit.ts';

const H = 65536;

export function pairConst(e: Emit, bits: number): Pair {
  const u = bits >>> 0;
  return { h: e.lit(Math.floor(u / H)), l: e.lit(u % H) };
}

/** A narrow stored integer (i8, i16, u8, u16: exact in f32) as a Pair. */
export function pairFromSmall(e: Emit, v: string, signed: boolean): Pair {
  if (!signed) return { h: '0', l: v };
  const neg = e.let(`${v} < 0 ? 1 : 0`);
  return { h: e.let(`${neg} * 65535`), l: e.let(`${v} + ${neg} * 65536`) };
}

/** The low `bits` bits of a Pair as a stored narrow integer (signed: two's complement). */
export function pairToSmall(e: Emit, x: Pair, bits: 8 | 16, signed: boolean): string {
  const low = bits === 16 ? x.l : e.let(e.mod(x.l, 8));
  if (!signed) return low;
  return e.let(`${low} >= ${2 ** (bits - 1)} ? ${low} - ${2 ** bits} : ${low}`);
}

export function add(e: Emit, a: Pair, b: Pair): Pair {
  const s = e.let(`${a.l} + ${b.l}`);
  const c = e.let(`${s} >= 65536 ? 1 : 0`);
  const hs = e.let(`${a.h} + ${b.h} + ${c}`);
  return { l: e.let(`${s} - ${c} * 65536`), h: e.let(`${hs} >= 65536 ? ${hs} - 65536 : ${hs}`) };
}

export function sub(e: Emit, a: Pair, b: Pair): Pair {
  const s = e.let(`${a.l} - ${b.l}`);
  const c = e.let(`${s} < 0 ? 1 : 0`);
  const hs = e.let(`${a.h} - ${b.h} - ${c}`);
  return { l: e.let(`${s} + ${c} * 65536`), h: e.let(`${hs} < 0 ? ${hs} + 65536 : ${hs}`) };
}

/** (x·y) mod 2^16 for 16-bit x, y: split x into bytes so each partial product stays below 2^24. */
function mulLow16(e: Emit, x: string, y: string): string {
  const x1 = e.let(e.shiftDown(x, 8)),
    x0 = e.let(`${x} - ${x1} * 256`);
  const m0 = e.let(e.mod(`(${x0} * ${y})`, 16));
  const m1 = e.let(e.mod(`(${x1} * ${y})`, 8));
  return e.let(e.mod(`(${m0} + ${m1} * 256)`, 16));
}

/** Wrapping 32-bit multiplication (Math.imul). */
export function mul(e: Emit, a: Pair, b: Pair): Pair {
  const a1 = e.let(e.shiftDown(a.l, 8)),
    a0 = e.let(`${a.l} - ${a1} * 256`);
  const p0 = e.let(`${a0} * ${b.l}`),
    p1 = e.let(`${a1} * ${b.l}`); // each < 2^24
  const u = e.let(e.shiftDown(p1, 8)),
    w = e.let(`${p1} - ${u} * 256`);
  const low = e.let(`${p0} + ${w} * 256`); // < 2^24: al·bl = low + u·2^16
  const cl = e.let(e.shiftDown(low, 16));
  const cross = e.let(`${cl} + ${u} + ${mulLow16(e, a.h, b.l)} + ${mulLow16(e, a.l, b.h)}`);
  return { l: e.let(`${low} - ${cl} * 65536`), h: e.let(e.mod(cross, 16)) };
}

export function not(e: Emit, x: Pair): Pair {
  return { h: e.let(`65535 - ${x.h}`), l: e.let(`65535 - ${x.l}`) };
}

export const neg = (e: Emit, x: Pair): Pair => sub(e, { h: '0', l: '0' }, x);

/** The high half read as a signed 16-bit number (the sign of an i32). */
export const signedHigh = (e: Emit, x: Pair): string => e.let(`${x.h} >= 32768 ? ${x.h} - 65536 : ${x.h}`);

/** a < b (or a <= b) as 0/1. */
export function less(e: Emit, a: Pair, b: Pair, signed: boolean, orEqual: boolean): string {
  const ah = signed ? signedHigh(e, a) : a.h,
    bh = signed ? signedHigh(e, b) : b.h;
  return e.let(`(${ah} < ${bh} || (${ah} == ${bh} && ${a.l} ${orEqual ? '<=' : '<'} ${b.l})) ? 1 : 0`);
}

export const equal = (e: Emit, a: Pair, b: Pair): string => e.let(`(${a.h} == ${b.h} && ${a.l} == ${b.l}) ? 1 : 0`);

export function choose(e: Emit, c: string, a: Pair, b: Pair): Pair {
  return { h: e.let(`${c} != 0 ? ${a.h} : ${b.h}`), l: e.let(`${c} != 0 ? ${a.l} : ${b.l}`) };
}

export type Bitwise = 'and' | 'or' | 'xor';

/** One 16-bit half of a bitwise op with a constant: masks of contiguous bits need no loop. */
function halfWithConst(e: Emit, op: Bitwise, x: string, c: number): string | undefined {
  const lowMask = (c + 1) & c ? -1 : Math.log2(c + 1); // c = 2^k − 1
  const highMask = c > 0 && ((H - c) & (H - c - 1)) === 0 ? Math.log2(H - c) : -1; // c = 2^16 − 2^k
  if (op === 'and') {
    if (c === 0) return '0';
    if (c === 0xffff) return x;
    if (lowMask > 0) return e.let(e.mod(x, lowMask));
    if (highMask > 0) return e.let(`${x} - ${e.mod(x, highMask)}`);
  } else if (op === 'or') {
    if (c === 0) return x;
    if (c === 0xffff) return '65535';
    if (lowMask > 0) return e.let(`${x} - ${e.mod(x, lowMask)} + ${c}`);
    if (highMask > 0) return e.let(`${e.mod(x, highMask)} + ${c}`);
  } else {
    if (c === 0) return x;
    if (c === 0xffff) return e.let(`65535 - ${x}`);
  }
  return undefined;
}

/** and/or/xor on Pairs: constant masks directly, anything else bit by bit (16 steps per half). */
export function bitwise(e: Emit, op: Bitwise, a: Pair, b: Pair, bConst?: number): Pair {
  const halves: (string | undefined)[] =
    bConst === undefined
      ? [undefined, undefined]
      : [halfWithConst(e, op, a.h, (bConst >>> 16) & 0xffff), halfWithConst(e, op, a.l, bConst & 0xffff)];
  if (halves[0] !== undefined && halves[1] !== undefined) return { h: halves[0], l: halves[1] };
  const combine =
    op === 'and'
      ? (x: string, y: string) => `${x} * ${y}`
      : op === 'or'
        ? (x: string, y: string) => `Math.max(${x}, ${y})`
        : (x: string, y: string) => `Math.abs(${x} - ${y})`;
  const loop = (x: string, y: string): string => {
    const r = e.mut('0'),
      p = e.mut('1'),
      xs = e.mut(x),
      ys = e.mut(y);
    e.line('for (let k = 0; k < 16; k++) {');
    e.line(`  let xb = ${xs} - Math.floor(${xs} * 0.5) * 2;`);
    e.line(`  let yb = ${ys} - Math.floor(${ys} * 0.5) * 2;`);
    e.line(`  ${r} = ${r} + ${p} * ${combine('xb', 'yb')};`);
    e.line(`  ${xs} = Math.floor(${xs} * 0.5);`);
    e.line(`  ${ys} = Math.floor(${ys} * 0.5);`);
    e.line(`  ${p} = ${p} * 2;`);
    e.line('}');
    return r;
  };
  return { h: halves[0] ?? loop(a.h, b.h), l: halves[1] ?? loop(a.l, b.l) };
}

/** Shift left / logical right / arithmetic right by s (a Pair; taken mod 32, as WGSL does). */
export function shift(e: Emit, dir: 'shl' | 'shr', x: Pair, s: Pair, arithmetic: boolean, sConst?: number): Pair {
  if (sConst !== undefined) return shiftConst(e, dir, x, sConst & 31, arithmetic);
  // A variable amount: compute both the < 16 and the ≥ 16 case with runtime powers of two, pick one.
  const n = e.let(e.mod(s.l, 5));
  const big = e.let(`${n} >= 16 ? 1 : 0`);
  const t = e.let(`${n} - ${big} * 16`); // 0..15
  const p = e.pow2(t),
    pInv = e.pow2(`(-${t})`); // 2^t and 2^−t, exact
  const q = e.let(`65536 * ${pInv}`),
    qInv = e.let(`${p} * ${e.lit(2 ** -16)}`); // 2^(16−t), 2^(t−16)
  // v mod m and ⌊v / m⌋ by multiplying with the exact reciprocal (no division a GPU may approximate)
  const modBy = (v: string, m: string, mInv: string) => `(${v} - Math.floor(${v} * ${mInv}) * ${m})`;
  if (dir === 'shl') {
    // small: l' = (l mod 2^(16−t))·2^t, h' = (h mod 2^(16−t))·2^t + ⌊l / 2^(16−t)⌋; big: h' = (l mod 2^(16−t))·2^t, l' = 0
    const lo = e.let(`${modBy(x.l, q, qInv)} * ${p}`);
    const hi = e.let(`${modBy(x.h, q, qInv)} * ${p} + Math.floor(${x.l} * ${qInv})`);
    return { h: e.let(`${big} > 0.5 ? ${lo} : ${hi}`), l: e.let(`${big} > 0.5 ? 0 : ${lo}`) };
  }
  const fill = arithmetic ? e.let(`${x.h} >= 32768 ? 1 : 0`) : '0';
  const hs = e.let(`Math.floor(${x.h} * ${pInv}) + ${fill} * (65536 - ${q})`);
  const ls = e.let(`Math.floor(${x.l} * ${pInv}) + ${modBy(x.h, p, pInv)} * ${q}`);
  return { h: e.let(`${big} > 0.5 ? ${fill} * 65535 : ${hs}`), l: e.let(`${big} > 0.5 ? ${hs} : ${ls}`) };
}

function shiftConst(e: Emit, dir: 'shl' | 'shr', x: Pair, n: number, arithmetic: boolean): Pair {
  if (n === 0) return x;
  if (dir === 'shl') {
    if (n >= 16) return { h: e.let(`${e.mod(x.l, 32 - n)} * ${2 ** (n - 16)}`), l: '0' };
    return {
      l: e.let(`${e.mod(x.l, 16 - n)} * ${2 ** n}`),
      h: e.let(`${e.mod(x.h, 16 - n)} * ${2 ** n} + ${e.shiftDown(x.l, 16 - n)}`),
    };
  }
  const fill = arithmetic ? e.let(`${x.h} >= 32768 ? 1 : 0`) : '0';
  if (n >= 16)
    return { h: e.let(`${fill} * 65535`), l: e.let(`${e.shiftDown(x.h, n - 16)} + ${fill} * ${H - 2 ** (32 - n)}`) };
  return {
    h: e.let(`${e.shiftDown(x.h, n)} + ${fill} * ${H - 2 ** (16 - n)}`),
    l: e.let(`${e.shiftDown(x.l, n)} + ${e.mod(x.h, n)} * ${2 ** (16 - n)}`),
  };
}

/**
 * Integer division as semantics.ts has it (truncating; ÷0 and i32 MIN ÷ −1 give the dividend):
 * restoring long division, one quotient bit per step for 32 steps, on Pairs. The partial remainder
 * is doubled with its top bit kept as an overflow flag, so no value leaves 16 bits per half.
 */
export function divide(e: Emit, a: Pair, b: Pair, signed: boolean): Pair {
  const negA = signed ? e.let(`${a.h} >= 32768 ? 1 : 0`) : '0',
    negB = signed ? e.let(`${b.h} >= 32768 ? 1 : 0`) : '0';
  const na = neg(e, a),
    nb = neg(e, b);
  const x = signed ? choose(e, negA, na, a) : a,
    y = signed ? choose(e, negB, nb, b) : b; // magnitudes, as u32
  const xh = e.mut(x.h),
    xl = e.mut(x.l),
    rh = e.mut('0'),
    rl = e.mut('0'),
    qh = e.mut('0'),
    ql = e.mut('0');
  e.line('for (let k = 0; k < 32; k++) {');
  e.line(`  let bit = Math.floor(${xh} * 0.000030517578125);`); // top bit of x
  e.line(`  ${xh} = (${xh} - bit * 32768) * 2 + Math.floor(${xl} * 0.000030517578125);`);
  e.line(`  ${xl} = (${xl} - Math.floor(${xl} * 0.000030517578125) * 32768) * 2;`);
  e.line(`  let over = ${rh} >= 32768 ? 1 : 0;`);
  e.line(`  let sh = (${rh} - over * 32768) * 2 + Math.floor(${rl} * 0.000030517578125);`);
  e.line(`  let sl = (${rl} - Math.floor(${rl} * 0.000030517578125) * 32768) * 2 + bit;`);
  e.line(`  let ge = (over > 0.5 || sh > ${y.h} || (sh == ${y.h} && sl >= ${y.l})) ? 1 : 0;`);
  e.line(`  let dl = sl - ge * ${y.l};`);
  e.line('  let c = dl < 0 ? 1 : 0;');
  e.line('  let dh = sh - ge * ' + y.h + ' - c;');
  e.line(`  ${rl} = dl + c * 65536;`);
  e.line(`  ${rh} = dh < 0 ? dh + 65536 : dh;`);
  e.line(
    `  ${qh} = (${qh} - Math.floor(${qh} * 0.000030517578125) * 32768) * 2 + Math.floor(${ql} * 0.000030517578125);`,
  );
  e.line(`  ${ql} = (${ql} - Math.floor(${ql} * 0.000030517578125) * 32768) * 2 + ge;`);
  e.line('}');
  const q: Pair = { h: qh, l: ql };
  const zero = equal(e, b, { h: '0', l: '0' });
  let keep = zero;
  if (signed) {
    const minOverMinus1 = e.let(`(${a.h} == 32768 && ${a.l} == 0 && ${b.h} == 65535 && ${b.l} == 65535) ? 1 : 0`);
    keep = e.let(`Math.max(${zero}, ${minOverMinus1})`);
    const flip = e.let(`${negA} != ${negB} ? 1 : 0`);
    return choose(e, keep, a, choose(e, flip, neg(e, q), q));
  }
  return choose(e, keep, a, q);
}
