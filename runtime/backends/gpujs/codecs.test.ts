// The project's codecs (dsl/master.ts, dsl/quant.ts) through gpu.js: a kernel decodes a stored
// value, moves it (x·a + g) and encodes it again, with the codec's group scale where it has one.
// Every mode must store exactly what the oracle (compiler/ir/interpret.ts) stores (the values stay in the normal range,
// where lavapipe's fast-math differences do not arise; docs/gpujs.md).

import { describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import type { Codec } from '../../../dsl/codec.ts';
import { decodeStored, encodeStored, storedName } from '../../../dsl/codec.ts';
import { masterCodec } from '../../../dsl/master.ts';
import * as d from '../../../dsl/ops.ts';
import { momentumCodec, varianceCodec } from '../../../dsl/quant.ts';
import { both, testModes } from '../../../test/gpujs-harness.ts';
import { GpujsBackend } from './gpujs.ts';
import { prng } from '../../../props/prng.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor } from '../../../compiler/ir/kernel.ts';

const modes = await testModes();
const codecs: Codec[] = [
  masterCodec({ narrow: 'bf16', bits: 24 }),
  masterCodec({ narrow: 'bf16', bits: 32 }),
  masterCodec({ narrow: 'fp16', bits: 24 }),
  masterCodec({ narrow: 'fp16', bits: 32 }),
  momentumCodec('bf16'),
  momentumCodec('fp16'),
  momentumCodec('f32'),
  varianceCodec('bf16'),
  varianceCodec('fp16'),
];

function data(c: Codec, n: number, G: number): Record<string, FieldArray> {
  const out: Record<string, FieldArray> = {};
  const rnd = prng(12345);
  for (const f of c.fields) {
    const len = f.axis === 'group' ? Math.ceil(n / G) : n;
    const a = new arrayFor[f.storage](len);
    for (let i = 0; i < len; i++) {
      // Stored words of normal-range values (bf16/fp16 exponents 100–150 / 5–25), codes anywhere.
      if (f.storage === 'u16')
        a[i] =
          ((f.axis === 'group' || c.name.includes('bf16') ? (110 + rnd() * 30) | 0 : (8 + rnd() * 15) | 0) <<
            (c.name.includes('fp16') ? 10 : 7)) |
          (rnd() * 128) |
          0;
      else if (f.storage === 'f32') a[i] = rnd() * 2;
      else a[i] = Math.floor(rnd() * 2 ** 16) - 2 ** 15;
    }
    out[storedName('x', f)] = a;
  }
  out.g = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * (i % 5 === 0 ? 1e-3 : 1e-1));
  return out;
}

describe.each(modes)('gpu.js %s mode: the project codecs', (mode) => {
  it.each(codecs.map((c) => [c.name, c] as const))('%s: decode, update, encode', async (_name, c) => {
    const G = 32,
      n = 300;
    const x = d.add(d.mul(decodeStored('x', c), d.uniform('a')), d.field('g', 'f32'));
    const k = kernel({ name: `codec-${c.name}`, groupSize: G, outputs: encodeStored('x', c, x) });
    const b = await GpujsBackend.create(mode);
    const r = await both(b, k, data(c, n, G), { a: 0.75 }, n);
    let same = 0,
      total = 0;
    for (const f of Object.keys(r.got))
      for (let i = 0; i < r.got[f]!.length; i++) {
        total++;
        if (Object.is(r.got[f]![i], r.want[f]![i])) same++;
      }
    expect(same, `${mode}, codec ${c.name}: ${same} of ${total} stored values identical`).toBe(total);
  });
});
