// Conversions between f32 values and 32-bit integer Pairs, by exponent arithmetic: gpu.js has no
// typed-array views or bitcasts, so the bits of an f32 are computed from its value (exponent by
// log2 then corrected exactly against a power of two built bit by bit, mantissa by exact scaling)
// and an f32 is rebuilt from bits the same way. Exact for every finite value, ±∞ and NaN (NaN
// reads as the canonical 0x7fc00000, as JS typed arrays give). Subnormals are exact where the
// device keeps them (cpu, webasm); a device that flushes subnormals to zero reads them as ±0.
// −0 is told from +0 by 1/x < 0 where the device keeps IEEE infinities (cpu, webasm); for webgpu,
// whose shader compiler here (lavapipe) treats ∞ as poison and ignores the sign of zero, every zero
// reads as +0 (`signedZeros: false`), which at least makes +0 exact.

import type { Emit, Pair } from './emit.ts';
import { neg } from './ints.ts';

const MAX_F32 = 3.4028234663852886e38;

/** The bits of an f32 (f32 → u32/i32 bitcast). */
export function bitsOf(e: Emit, x: string): Pair {
  // |x| clamped to the largest finite f32: no ±∞ enters the arithmetic below (a fast-math shader
  // compiler may treat an infinite operand as poison even in the branch a select discards).
  const a = e.let(`Math.min(Math.abs(${x}), ${e.lit(MAX_F32)})`);
  const sign = e.let(e.signedZeros ? `(${x} < 0 || (${x} == 0 && 1 / ${x} < 0)) ? 32768 : 0` : `${x} < 0 ? 32768 : 0`);
  // Normal numbers: a = 2^k · (1 + m/2^23); log2 gives k up to ±1, the comparisons fix it exactly.
  const k0 = e.let(`Math.min(127, Math.max(-126, Math.floor(Math.log2(Math.max(${a}, ${e.lit(2 ** -126)})))))`);
  const p0 = e.pow2(k0);
  const down = e.let(`${p0} > ${a} ? 1 : 0`);
  const k1 = e.let(`${k0} - ${down}`);
  const p1 = e.let(`${down} > 0.5 ? ${p0} * 0.5 : ${p0}`);
  const up = e.let(`(${k1} < 127 && ${a} >= ${p1} * 2) ? 1 : 0`);
  const k = e.let(`${k1} + ${up}`);
  const p = e.let(`${up} > 0.5 ? ${p1} * 2 : ${p1}`);
  const mNormal = e.let(`(${a} / ${p} - 1) * 8388608`);
  // Zero and subnormals: the mantissa is a·2^149, scaled in two exact steps by constants the
  // shader compiler cannot fold into one (2^149 overflows f32).
  const sub = e.let(`${a} < ${e.lit(2 ** -126)} ? 1 : 0`);
  const m = e.let(`${sub} > 0.5 ? ${a} * ${e.opaque(2 ** 126)} * ${e.opaque(2 ** 23)} : ${mNormal}`);
  const biased = e.let(`${sub} > 0.5 ? 0 : ${k} + 127`);
  const mh = e.let(e.shiftDown(m, 16));
  const nan = e.let(`${e.nan(x)} ? 1 : 0`);
  const inf = e.let(`Math.abs(${x}) > ${e.lit(MAX_F32)} ? 1 : 0`);
  const h = e.let(`${nan} > 0.5 ? 32704 : (${inf} > 0.5 ? ${sign} + 32640 : ${sign} + ${biased} * 128 + ${mh})`);
  const l = e.let(`(${nan} > 0.5 || ${inf} > 0.5) ? 0 : ${m} - ${mh} * 65536`);
  return { h, l };
}

/** The f32 with these bits (u32/i32 → f32 bitcast). */
export function floatOf(e: Emit, x: Pair): string {
  const s = e.let(`${x.h} >= 32768 ? 1 : 0`);
  const hm = e.let(`${x.h} - ${s} * 32768`);
  const E = e.let(e.shiftDown(hm, 7));
  const m = e.let(`(${hm} - ${E} * 128) * 65536 + ${x.l}`); // < 2^23
  const frac = e.let(`${m} * ${e.lit(2 ** -23)}`);
  const normal = e.let(`(1 + ${frac}) * ${e.pow2(`(${E} - 127)`)}`);
  const subnormal = e.let(`${frac} * ${e.opaque(2 ** -126)}`);
  const special = e.let(`${m} == 0 ? ${e.lit(Infinity)} : ${e.lit(NaN)}`);
  const mag = e.let(`${E} == 255 ? ${special} : (${E} == 0 ? ${subnormal} : ${normal})`);
  return e.let(`${s} > 0.5 ? -${mag} : ${mag}`);
}

/** f32 → u32/i32 conversion: truncate toward zero, saturate, NaN → 0. */
export function toInt(e: Emit, x: string, signed: boolean): Pair {
  const lo = signed ? -(2 ** 31) : 0,
    hiLimit = signed ? 2 ** 31 : 2 ** 32;
  // Values at or past the top saturate below (`over`), NaN becomes 0, and the clamp keeps ±∞ out.
  const safe = e.let(`${e.nan(x)} ? 0 : Math.min(${e.lit(hiLimit)}, Math.max(${e.lit(lo)}, ${x}))`);
  // |t| < 2^32 is an exact integer in f32; split it, then negate the Pair if t < 0.
  const t = e.let(`${safe} < 0 ? Math.ceil(${safe}) : Math.floor(${safe})`);
  const a = e.let(`Math.abs(${t})`);
  const ah = e.let(e.shiftDown(a, 16));
  const mag: Pair = { h: ah, l: e.let(`${a} - ${ah} * 65536`) };
  const over = e.let(`${x} >= ${e.lit(hiLimit)} ? 1 : 0`);
  const maxH = signed ? 32767 : 65535;
  if (!signed) return { h: e.let(`${over} > 0.5 ? 65535 : ${mag.h}`), l: e.let(`${over} > 0.5 ? 65535 : ${mag.l}`) };
  const n = neg(e, mag);
  const isNeg = e.let(`${t} < 0 ? 1 : 0`);
  return {
    h: e.let(`${over} > 0.5 ? ${maxH} : (${isNeg} > 0.5 ? ${n.h} : ${mag.h})`),
    l: e.let(`${over} > 0.5 ? 65535 : (${isNeg} > 0.5 ? ${n.l} : ${mag.l})`),
  };
}

/** u32/i32 → f32 conversion: one correctly rounded addition of exact parts. */
export function toFloat(e: Emit, x: Pair, signed: boolean): string {
  const h = signed ? e.let(`${x.h} >= 32768 ? ${x.h} - 65536 : ${x.h}`) : x.h;
  return e.f(`${h} * 65536 + ${x.l}`);
}
