// Limits that must fail loudly, not overflow the stack or run on garbage: a rule set that never
// settles, and run arguments (rowOf, group ranges) that do not describe the launch.
import { describe, expect, it } from 'vitest';
import * as d from '../dsl/ops.ts';
import { compile } from './render/js/compile.ts';
import { kernel } from './ir/kernel.ts';
import type { Rule } from './ir/rewrite.ts';
import { MAX_NESTING, rewrite, RewriteLimitError } from './ir/rewrite.ts';
import { interpret } from './ir/interpret.ts';
import { KernelError, MAX_KERNEL_NODES } from './ir/kernel.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { defineOptimizer } from '../optim/define.ts';

describe('rewrite step limit', () => {
  const x = d.field('a', 'f32'),
    y = d.field('b', 'f32');
  it('a rule that flips a + b forever throws RewriteLimitError at the default limit (it overflowed the stack)', () => {
    const flip: Rule = (e) => (e.op === 'binary' && e.fn === 'add' ? d.add(e.b, e.a) : undefined);
    expect(() => rewrite([d.add(x, y)], { binary: [flip] })).toThrow(RewriteLimitError);
  });

  it('a rule that grows its own input throws RewriteLimitError at the default limit', () => {
    const grow: Rule = (e) => (e.op === 'unary' && e.fn === 'abs' ? d.abs(d.add(e, 1)) : undefined);
    expect(() => rewrite([d.abs(x)], { unary: [grow] })).toThrow(/nested more than 1000 deep/);
  });

  it('a small explicit limit counts firings exactly', () => {
    let fired = 0;
    const flip: Rule = (e) => (e.op === 'binary' && e.fn === 'mul' ? (fired++, d.mul(e.b, e.a)) : undefined);
    expect(() => rewrite([d.mul(x, y)], { binary: [flip] }, 7)).toThrow(/more than 7 rule firings/);
    expect(fired).toBe(8);
  });

  it('a legitimate chain of replacements deeper than the expression is not cut short', () => {
    // neg applied 3000 times to x: children settle before parents, so nothing nests deeply.
    let e = x;
    for (let i = 0; i < 3000; i++) e = d.neg(e);
    const negneg: Rule = (n) =>
      n.op === 'unary' && n.fn === 'neg' && n.x.op === 'unary' && n.x.fn === 'neg' ? n.x.x : undefined;
    expect(rewrite([e], { unary: [negneg] })[0]).toBe(x);
    // A countdown rule that replaces a node MAX_NESTING − 1 times in a row still settles.
    const down: Rule = (n) =>
      n.op === 'unary' && n.fn === 'abs' && n.x.op === 'const' && n.x.value > 0
        ? d.abs(d.constant('i32', n.x.value - 1))
        : undefined;
    expect(rewrite([d.abs(d.constant('i32', MAX_NESTING - 1))], { unary: [down] })[0]).toBe(
      d.abs(d.constant('i32', 0)),
    );
  });
});

describe('run arguments', () => {
  const k = kernel({
    name: 'scale',
    groupSize: 2,
    outputs: [{ field: 'p', storage: 'f32', axis: 'element', value: d.mul(d.field('p', 'f32'), d.uniform('lr')) }],
  });
  it('a rowOf shorter than the groups is an error naming its length (it read undefined rows and wrote NaN)', () => {
    const p = new Float32Array(6).fill(1);
    expect(() => compile(k).run({ fields: { p }, uniforms: [{ lr: 2 }, { lr: 3 }], rowOf: new Uint8Array(1) })).toThrow(
      'kernel scale: rowOf has 1 entries, needs 3 (one per group)',
    );
    expect([...p]).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('a rowOf naming a missing row is an error', () => {
    const p = new Float32Array(6).fill(1);
    expect(() =>
      compile(k).run({ fields: { p }, uniforms: [{ lr: 2 }, { lr: 3 }], rowOf: Uint8Array.of(0, 2, 1) }),
    ).toThrow('rowOf[1] = 2 but there are 2 uniform rows');
  });

  it('fractional or reversed group ranges are errors', () => {
    const p = new Float32Array(6).fill(1);
    expect(() => compile(k).run({ fields: { p }, uniforms: { lr: 2 }, groups: [0.5, 2] })).toThrow(
      'groups [0.5, 2) outside [0, 3)',
    );
    expect(() => compile(k).run({ fields: { p }, uniforms: { lr: 2 }, groups: [2, 1] })).toThrow(
      'groups [2, 1) outside [0, 3)',
    );
    expect([...p]).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('a valid rowOf and range run only the named groups with their rows', () => {
    const p = new Float32Array(6).fill(1);
    compile(k).run({ fields: { p }, uniforms: [{ lr: 2 }, { lr: 3 }], rowOf: Uint8Array.of(0, 1, 0), groups: [1, 3] });
    expect([...p]).toEqual([1, 1, 3, 3, 2, 2]);
  });
});

describe('names are data, never code', () => {
  it('line breaks (U+2028 included) in kernel, field and uniform names cannot escape the source comment', () => {
    const g = globalThis as { injected?: number };
    const k = kernel({
      name: 'k\nglobalThis.injected = 1;',
      outputs: [
        {
          field: 'y\rglobalThis.injected = 2;',
          storage: 'f32',
          axis: 'element',
          value: d.mul(d.uniform('lr\u2028globalThis.injected = 3;'), d.field('x', 'f32')),
        },
      ],
    });
    const y = new Float32Array(2);
    compile(k).run({
      fields: { 'y\rglobalThis.injected = 2;': y, x: Float32Array.of(1, 2) },
      uniforms: { 'lr\u2028globalThis.injected = 3;': 3 },
    });
    expect(g.injected).toBeUndefined();
    expect([...y]).toEqual([3, 6]);
  });
});

describe('deep and large expressions', () => {
  // A chain e ← e·0.5 + x, `steps` times: 2 nodes a step, each depending on the last.
  const chain = (steps: number) => {
    const x = d.field('x', 'f32');
    let e = x;
    for (let i = 0; i < steps; i++) e = d.add(d.mul(e, 0.5), x);
    return kernel({ name: 'chain', outputs: [{ field: 'y', storage: 'f32', axis: 'element', value: e }] });
  };

  it('a 9,000-step chain (18,000 nodes) compiles on both JS engines and matches the oracle (2,000 terms overflowed the stack)', async () => {
    const k = chain(9000);
    const x = Float32Array.from({ length: 40 }, (_, i) => i / 7 - 2);
    const want = new Float32Array(40);
    interpret(k, { fields: { x, y: want }, uniforms: [{}], length: 40 });
    for (const engine of ['js', 'wasm'] as const) {
      const b = new JsBackend({ engine });
      const y = b.alloc('f32', 40),
        xb = b.alloc('f32', 40);
      await b.write(xb, x);
      await b.run(await b.compile(k), {
        bindings: { x: xb, y },
        uniforms: new Float32Array(1),
        rowOf: null,
        groups: [0, 2],
        length: 40,
      });
      expect([...(await b.read(y))], engine).toEqual([...want]);
    }
  });

  it('a 2,000-term update through createOptimizer steps', async () => {
    const sum = defineOptimizer({
      name: 'sum2000',
      hyper: { lr: 0.1 },
      state: {},
      update: ({ p, g }, u) => {
        let e = g!;
        for (let i = 1; i < 2000; i++) e = d.add(e, d.mul(g!, 1 / (i + 1)));
        return { p: d.sub(p!, d.mul(u('lr'), e)) };
      },
    });
    const opt = await createOptimizer(sum(), { w: new Float32Array(64).fill(1) });
    await opt.step({ w: new Float32Array(64).fill(0.001) });
    expect((await opt.exportFp32()).w![0]).toBeLessThan(1);
  });

  it(`an expression of 10^5 nodes fails with a named limit (MAX_KERNEL_NODES = ${MAX_KERNEL_NODES}), not a stack overflow`, async () => {
    expect(() => chain(50_000)).toThrow(
      new RegExp(
        `kernel chain: 10000\\d expression nodes, more than the ${MAX_KERNEL_NODES} a kernel may have \\(MAX_KERNEL_NODES\\)`,
      ),
    );
    const big = defineOptimizer({
      name: 'big',
      hyper: { lr: 0.1 },
      state: {},
      update: ({ p, g }, u) => {
        let e = g!;
        for (let i = 0; i < 50_000; i++) e = d.add(d.mul(e, 0.5), g!);
        return { p: d.sub(p!, d.mul(u('lr'), e)) };
      },
    });
    await expect(createOptimizer(big(), { w: new Float32Array(8) })).rejects.toThrow(KernelError);
  });
});
