// Limits that must fail loudly, not overflow the stack or run on garbage: a rule set that never
// settles, and run arguments (rowOf, group ranges) that do not describe the launch.
import { describe, expect, it } from 'vitest';
import * as d from '../dsl/ops.ts';
import { compile } from './render/js/compile.ts';
import { kernel } from './ir/kernel.ts';
import type { Rule } from './ir/rewrite.ts';
import { MAX_NESTING, rewrite, RewriteLimitError } from './ir/rewrite.ts';

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
