// The gpu.js legalization rules (compiler/render/gpujs/legalize.ts) keep every value bit for bit
// under the oracle: integer × 2^k is a left shift by k, and a u32 ÷ 2^k a logical right shift by k.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as ir from '../compiler/ir/ir.ts';
import { legalize } from '../compiler/render/gpujs/legalize.ts';
import { rewrite } from '../compiler/ir/rewrite.ts';
import { evaluate } from '../compiler/ir/semantics.ts';

const env = (v: number) => ({ load: () => v, uniform: () => 0 });

describe('gpu.js legalization rules preserve meaning', () => {
  it.each(['i32', 'u32'] as const)('%s × 2^k (either side) and u32 ÷ 2^k', (t) => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 31 }),
        fc.boolean(),
        (raw, k, left) => {
          const x = ir.load('x', t === 'i32' ? 'i32' : 'u32');
          const c = ir.constant(t, 2 ** k);
          const exprs = [left ? ir.binary('mul', t, c, x) : ir.binary('mul', t, x, c)];
          if (t === 'u32') exprs.push(ir.binary('div', t, x, c));
          const v = ir.toType(t, raw);
          for (const e of exprs) {
            const [after] = rewrite([e], legalize);
            expect(
              after!.op === 'binary' && (after!.fn === 'shl' || after!.fn === 'shr'),
              `rule fired for ${e.op}`,
            ).toBe(true);
            expect(Object.is(evaluate(after!, env(v)), evaluate(e, env(v))), `x = ${v}, k = ${k}`).toBe(true);
          }
        },
      ),
    );
  });
});
