// Rewrites that make a kernel cheaper or possible to render for gpu.js, as rules (data) for
// compiler/ir/rewrite.ts. Each is exact under semantics.ts: integer multiplication by 2^k wraps the
// same way as a left shift by k, and a u32 divided by 2^k truncates the same way as a logical
// right shift by k. (i32 division rounds toward zero, an arithmetic shift toward −∞: not rewritten.)

import * as ir from '../../ir/ir.ts';
import type { RuleSet } from '../../ir/rewrite.ts';

const log2Of = (e: ir.Expr): number | undefined => {
  if (e.op !== 'const' || (e.type !== 'i32' && e.type !== 'u32')) return undefined;
  const v = e.value >>> 0;
  return v !== 0 && (v & (v - 1)) === 0 ? 31 - Math.clz32(v) : undefined;
};

export const legalize: RuleSet = {
  binary: [
    (n) => {
      const e = n as ir.Binary;
      if (e.fn === 'mul' && (e.type === 'i32' || e.type === 'u32')) {
        const kb = log2Of(e.b),
          ka = log2Of(e.a);
        if (kb !== undefined) return ir.binary('shl', e.type, e.a, ir.constant('u32', kb));
        if (ka !== undefined) return ir.binary('shl', e.type, e.b, ir.constant('u32', ka));
      }
      if (e.fn === 'div' && e.type === 'u32') {
        const k = log2Of(e.b);
        if (k !== undefined) return ir.binary('shr', 'u32', e.a, ir.constant('u32', k));
      }
      return undefined;
    },
  ],
};
