// Exact-mode f32 arithmetic in WGSL (render.ts, option exact): the JS backend's correctly rounded
// ÷ and √ and unfused products, built from fma on a device whose fma is fused (probed at backend
// creation). All helpers read `P.never`, a uniform that is 0 at run time.
//
// - keep(x): a product's bits xor P.never. An integer op the shader compiler cannot see through,
//   so the product is never contracted with a following add into an fma (a select on P.never was
//   not enough on the H200: the compiler moved the add into both arms and contracted one).
// - div_rcp(a, b, R): a / b for a divisor fixed per thread (bias corrections, group scales), from
//   R.r = RN(1/b) computed once: q0 = |a|·r, then two residual steps q ← fma(fma(−q, b, |a|), r, q).
//   The first leaves q within 1 ulp of |a|/b; given r = RN(1/b), the second is then exactly
//   RN(|a|/b) (Markstein's theorem; each residual is exact in that range). |a| and a sign xor keep
//   ±0 right. 1 mul + 4 fma + 3 integer ops, no hardware division.
// - div_cr(a, b): per-element divisors: the driver's 1/b (a few ulp), one residual step (now
//   within 1 ulp), then one exact residual picks between q and its neighbour toward the quotient
//   (ties to even).
// - sqrt_cr(x): inverseSqrt y, s = x·y refined by fma(x − s², y/2, s), then the neighbour test
//   (√ has no ties).
// Each applies only where every residual is exact and normal (the exponent ranges below: no
// subnormal, zero, Inf or NaN anywhere); elsewhere the 3-candidate helpers div_exact / sqrt_exact
// of ops.ts give the result (their special cases return the driver's value). That fallback branch
// is inlined at every ÷ and √ of every element; bench/gpu.ts's diagnostic rows (VARIANTS=1) show
// what it costs (docs/bench-gpu.md). A two-pass variant (a fast pass without the branches, redone
// with them for a subgroup that needed them) was tried and ran slower than the inlined branches.

export const WGSL_EXACT = `
fn keep(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P.never); }
fn opaque(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P.never); }
// A fast result and whether it is the correctly rounded one.
struct Fq { q: f32, ok: bool }
// q1 = a/b within 1 ulp (one residual step), then the neighbour toward the exact quotient when
// its residual is smaller (ties to even). Also returns q1's bits for the callers' range checks.
struct Qn { q: f32, q1u: u32 }
fn div_cr_core(a: f32, b: f32) -> Qn {
  let r = 1.0f / b;
  let q0 = a * r;
  let q1 = fma(fma(-q0, b, a), r, q0);
  let e1 = fma(-q1, b, a);
  let u = bitcast<u32>(q1);
  let up = ((bitcast<u32>(e1) ^ bitcast<u32>(b) ^ u) & 0x80000000u) == 0u;
  let qn = bitcast<f32>(select(u - 1u, u + 1u, up));
  let en = fma(-qn, b, a);
  let ae = abs(e1); let an = abs(en);
  return Qn(select(q1, qn, an < ae || (an == ae && (u & 1u) == 1u)), u);
}
fn div_cr_ok(a: f32, b: f32) -> Fq {
  let c = div_cr_core(a, b);
  // |a| in [2^-77, max], |b| in [2^-125, 2^125], |q| in [2^-100, 2^126].
  let ea = extractBits(bitcast<u32>(a), 23u, 8u); let eb = extractBits(bitcast<u32>(b), 23u, 8u); let eq = extractBits(c.q1u, 23u, 8u);
  return Fq(c.q, ea - 50u <= 204u && eb - 2u <= 250u && eq - 27u <= 226u);
}
// The same where the range analysis bounds b to [2^-60, 2^60] and |a| to 2^60: only a is checked.
fn div_cr_a_ok(a: f32, b: f32) -> Fq {
  return Fq(div_cr_core(a, b).q, extractBits(bitcast<u32>(a), 23u, 8u) - 50u <= 204u);
}
struct Rcp { r: f32, lo: u32, span: u32, ok: bool }
fn rcp_of(b: f32) -> Rcp {
  let eb = extractBits(bitcast<u32>(b), 23u, 8u);
  // |a| ≥ 2^-77 and the quotient's exponent field in [27, 253]: ea in [max(50, eb − 99), min(254, eb + 125)].
  let lo = max(50u, max(eb, 99u) - 99u); let hi = min(254u, eb + 125u);
  return Rcp(div_cr(1.0f, b), lo, hi - min(hi, lo), eb >= 2u && eb <= 252u && hi >= lo);
}
fn div_rcp_ok(a: f32, b: f32, R: Rcp) -> Fq {
  let x = abs(a);
  let q0 = x * R.r;
  let q1 = fma(fma(-q0, b, x), R.r, q0);
  let q2 = fma(fma(-q1, b, x), R.r, q1);
  let ab = bitcast<u32>(a);
  return Fq(bitcast<f32>(bitcast<u32>(q2) ^ (ab & 0x80000000u)), R.ok && (extractBits(ab, 23u, 8u) - R.lo <= R.span || (ab << 1u) == 0u));
}
fn sqrt_cr_ok(x: f32) -> Fq {
  let y = inverseSqrt(x);
  let s0 = x * y;
  let s = fma(fma(-s0, s0, x), 0.5f * y, s0);
  let e = fma(-s, s, x);
  let u = bitcast<u32>(s);
  let sn = bitcast<f32>(select(u - 1u, u + 1u, e > 0.0f));
  // x in [2^-80, 2^127): s and both residuals normal.
  return Fq(select(s, sn, abs(fma(-sn, sn, x)) < abs(e)), bitcast<u32>(x) - 0x17800000u < 0x67800000u);
}
// The split kernel's fast half (render.ts): no fallback branch; a result that is not the correctly
// rounded one clears *ok, and its workgroup is redone by the fallback kernel. A zero dividend
// (m = 0 where a gradient is 0) and √±0 are exact too: ±0, the sign of a xor b's (the residuals
// would lose a −0's sign).
fn is_zero(x: f32) -> bool { return (bitcast<u32>(x) << 1u) == 0u; }
fn zero_quotient(a: f32, b: f32) -> f32 { return bitcast<f32>((bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u); }
fn div_cr_f(a: f32, b: f32, ok: ptr<function, bool>) -> f32 {
  let f = div_cr_ok(a, b); let z = is_zero(a) && extractBits(bitcast<u32>(b), 23u, 8u) - 2u <= 250u;
  *ok = *ok && (f.ok || z); return select(f.q, zero_quotient(a, b), z);
}
fn div_cr_a_f(a: f32, b: f32, ok: ptr<function, bool>) -> f32 {
  let f = div_cr_a_ok(a, b); let z = is_zero(a);
  *ok = *ok && (f.ok || z); return select(f.q, zero_quotient(a, b), z);
}
fn div_rcp_f(a: f32, b: f32, R: Rcp, ok: ptr<function, bool>) -> f32 { let f = div_rcp_ok(a, b, R); *ok = *ok && f.ok; return f.q; }
fn sqrt_cr_f(x: f32, ok: ptr<function, bool>) -> f32 {
  let f = sqrt_cr_ok(x); let z = is_zero(x);
  *ok = *ok && (f.ok || z); return select(f.q, x, z);
}
fn rcp_of_f(b: f32, ok: ptr<function, bool>) -> Rcp {
  let eb = extractBits(bitcast<u32>(b), 23u, 8u);
  // ±2^k (a zero group's scale is 2^-126): 1/b is exact, the residuals are 0, and a·(1/b) is
  // exact wherever it is normal: ea in [max(1, eb − 126), min(254, eb + 127)].
  if ((bitcast<u32>(b) & 0x7fffffu) == 0u && eb - 1u <= 252u) {
    let lo = max(eb, 127u) - 126u;
    return Rcp(bitcast<f32>((bitcast<u32>(b) & 0x80000000u) | ((254u - eb) << 23u)), lo, min(254u, eb + 127u) - lo, true);
  }
  let lo = max(50u, max(eb, 99u) - 99u); let hi = min(254u, eb + 125u);
  return Rcp(div_cr_f(1.0f, b, ok), lo, hi - min(hi, lo), eb >= 2u && eb <= 252u && hi >= lo);
}
// Each with its fallback branch to the 3-candidate helper.
fn div_cr(a: f32, b: f32) -> f32 { let f = div_cr_ok(a, b); if (f.ok) { return f.q; } return div_exact(a, b); }
fn div_cr_a(a: f32, b: f32) -> f32 { let f = div_cr_a_ok(a, b); if (f.ok) { return f.q; } return div_exact(a, b); }
fn div_rcp(a: f32, b: f32, R: Rcp) -> f32 { let f = div_rcp_ok(a, b, R); if (f.ok) { return f.q; } return div_exact(a, b); }
fn sqrt_cr(x: f32) -> f32 { let f = sqrt_cr_ok(x); if (f.ok) { return f.q; } return sqrt_exact(x); }
`;
