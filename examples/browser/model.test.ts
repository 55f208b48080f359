// The page's hand-written backward pass against finite differences of its forward pass, on every
// weight of a small model. Weights are bf16, so each one is moved by whole bf16 steps (w± stay
// representable) and the central difference is divided by the actual distance between them.

import { describe, expect, it } from 'vitest';
import type { Weights } from './model.ts';
import { CONTEXT, bf16Bits, bf16Value, initialWeights, lossAndGradients, sample, shapes } from './model.ts';
import { prng } from '../../props/prng.ts';

const s = { vocab: 6, embed: 3, hidden: 5 };
const batch = 7;

function bf16Weights(seed: number): Record<keyof Weights, Uint16Array> {
  const w = initialWeights(s, seed);
  // Biases start at 0; give them values so their gradients meet non-trivial activations too.
  w.b1 = w.b1.map((_, i) => 0.1 * (i - 2) + 0.03);
  w.b2 = w.b2.map((_, i) => 0.05 * i + 0.01);
  w.W2 = w.W2.map((x) => x * 50);
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, Uint16Array.from(v, (x) => bf16Bits(x))])) as Record<
    keyof Weights,
    Uint16Array
  >;
}

describe('names model (examples/browser/model.ts)', () => {
  it('every gradient matches a central difference of the loss within bf16 rounding', () => {
    const w = bf16Weights(3);
    const r = prng(11);
    const x = Int32Array.from({ length: batch * CONTEXT }, () => Math.floor(r() * s.vocab));
    const y = Int32Array.from({ length: batch }, () => Math.floor(r() * s.vocab));
    const grads = Object.fromEntries(
      Object.entries(shapes(s)).map(([k, sh]) => [k, new Uint16Array(sh.reduce((a, b) => a * b, 1))]),
    ) as unknown as Weights;
    lossAndGradients(s, w, x, y, batch, grads);
    const scratch = Object.fromEntries(
      Object.entries(shapes(s)).map(([k, sh]) => [k, new Uint16Array(sh.reduce((a, b) => a * b, 1))]),
    ) as unknown as Weights;
    let checked = 0;
    for (const name of Object.keys(w) as (keyof Weights)[]) {
      const t = w[name];
      for (let i = 0; i < t.length; i++) {
        const bits = t[i]!;
        const up = bits + (bf16Value(bits) < 0 ? -2 : 2),
          down = bits + (bf16Value(bits) < 0 ? 2 : -2);
        const at = (b: number) => {
          t[i] = b;
          return lossAndGradients(s, w, x, y, batch, scratch);
        };
        const numeric = (at(up) - at(down)) / (bf16Value(up) - bf16Value(down));
        t[i] = bits;
        const analytic = bf16Value(grads[name][i]!);
        expect(Math.abs(numeric - analytic), `${name}[${i}]: ${analytic} vs ${numeric}`).toBeLessThanOrEqual(
          0.02 * Math.abs(numeric) + 2e-4,
        );
        checked++;
      }
    }
    expect(checked).toBe(Object.values(shapes(s)).reduce((a, sh) => a + sh.reduce((x, y) => x * y, 1), 0));
  });

  it('samples names from the vocabulary, ending at "."', () => {
    const names = sample(s, bf16Weights(5), '.abcde', 1, 20);
    expect(names).toHaveLength(20);
    for (const n of names) expect(n).toMatch(/^[a-e]{0,16}$/);
  });
});
