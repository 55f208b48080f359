// `flashoptim/props`: the arbitraries, bounds and property checkers our own suite uses, for
// users testing their own codecs, rules or optimizers from their vitest suites (fast-check).

export {
  anyF32,
  finiteF32,
  f32InBinades,
  heavyTailed,
  heavyTailedNonneg,
  studentTArray,
  f32FromBits,
  bitsOfF32,
} from './f32.ts';
export { prng, uniformF32 } from './prng.ts';
export { runCodec, checkRoundTripBound, checkZeroPreservation, checkNoNaNSpreading, groupAbsmax } from './checkers.ts';
export type { CodecRunner, CheckOptions, ElementContext } from './checkers.ts';
export { ulp32, master, quant, narrowTypes } from './bounds.ts';
export { exprArbitraries, envArbitrary, f32Value, i32Value, u32Value } from './expr.ts';
