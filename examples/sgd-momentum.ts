// SGD with momentum written as an update expression, compiled to one fused JavaScript kernel, run
// over 1M f32 elements and checked against a plain loop.
// Run: npx tsx examples/sgd-momentum.ts

import { dsl } from '../index.ts';
import { compile, kernel } from '../compiler/index.ts';
const { add, field, mul, sub, uniform } = dsl;

const p = field('p', 'f32'),
  g = field('g', 'f32'),
  m = field('m', 'f32');
const m1 = add(mul(uniform('mu'), m), g); // m ← μ·m + g
const sgdMomentum = kernel({
  name: 'sgd-momentum',
  outputs: [
    { field: 'p', storage: 'f32', axis: 'element', value: sub(p, mul(uniform('lr'), m1)) }, // θ ← θ − η·m
    { field: 'm', storage: 'f32', axis: 'element', value: m1 },
  ],
});

export function run(n = 1 << 20, steps = 10) {
  const k = compile(sgdMomentum, { target: 'js' });
  const P = Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
    M = new Float32Array(n);
  const G = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.1);
  const refP = Float32Array.from(P),
    refM = new Float32Array(n);
  const h = { lr: 0.01, mu: 0.9 };
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) k.run({ fields: { p: P, g: G, m: M }, uniforms: h });
  const ms = (performance.now() - t0) / steps;
  const lr = Math.fround(h.lr),
    mu = Math.fround(h.mu);
  for (let s = 0; s < steps; s++)
    for (let i = 0; i < n; i++) {
      refM[i] = Math.fround(Math.fround(mu * refM[i]!) + G[i]!);
      refP[i] = Math.fround(refP[i]! - Math.fround(lr * refM[i]!));
    }
  let maxDiff = 0;
  for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(P[i]! - refP[i]!), Math.abs(M[i]! - refM[i]!));
  return { maxDiff, ms, mparamPerS: n / ms / 1e3, source: k.source };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = run();
  console.log(r.source.split('\n').slice(-22).join('\n'));
  console.log(
    `1M elements: max |kernel − plain loop| = ${r.maxDiff}, ${r.ms.toFixed(2)} ms/step, ${r.mparamPerS.toFixed(0)} Mparam/s`,
  );
}
