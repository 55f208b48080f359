// Kernel validation: every mistake a renderer would otherwise trip over later is a KernelError
// when the kernel is built, naming the kernel, the field and what is wrong.
import { describe, expect, it } from 'vitest';
import * as d from '../../dsl/ops.ts';
import { fieldsRead, groupLevels, kernel } from './kernel.ts';

const x = d.field('x', 'f32');
const out = (value = x) => [{ field: 'y', storage: 'f32' as const, axis: 'element' as const, value }];

describe('kernel validation', () => {
  it('groupSize must be a positive integer', () => {
    for (const g of [0, -4, 2.5, NaN])
      expect(() => kernel({ name: 'k', groupSize: g, outputs: out() })).toThrow(
        `kernel k: groupSize must be a positive integer, got ${g}`,
      );
  });

  it('a counter of f32 values is rejected; bool and integer counters are fine', () => {
    expect(() => kernel({ name: 'k', outputs: out(), counters: [{ name: 'sum', value: x }] })).toThrow(
      'kernel k: counter sum must count a bool or an integer, got f32',
    );
    expect(
      kernel({
        outputs: out(),
        counters: [
          { name: 'nan', value: d.isNan(x) },
          { name: 'q', value: d.field('q', 'u8') },
        ],
      }).counters,
    ).toHaveLength(2);
  });

  it('a field read with one storage and written with another is rejected', () => {
    expect(() =>
      kernel({
        name: 'k',
        outputs: [{ field: 'q', storage: 'u16', axis: 'element', value: d.add(d.field('q', 'u8'), 1) }],
      }),
    ).toThrow('kernel k: field q is read as u8/element but written as u16/element');
  });

  it('a field read as two storages, or on two axes, is rejected', () => {
    expect(() => kernel({ name: 'k', outputs: out(d.add(x, d.field('x', 'f32', 'group'))) })).toThrow(
      /kernel k: field x is read both as f32\/(element|group) and as f32\/(group|element)/,
    );
    expect(() =>
      kernel({
        name: 'k',
        outputs: [
          { field: 'y', storage: 'u32', axis: 'element', value: d.add(d.field('q', 'u8'), d.field('q', 'u16')) },
        ],
      }),
    ).toThrow(/field q is read both as/);
  });

  it('a group output may read element fields only inside groupMax', () => {
    expect(() =>
      kernel({ name: 'k', outputs: [{ field: 's', storage: 'f32', axis: 'group', value: d.mul(x, 2) }] }),
    ).toThrow('kernel k: group output s reads an element field outside groupMax');
    expect(
      kernel({ outputs: [{ field: 's', storage: 'f32', axis: 'group', value: d.mul(d.groupMax(d.abs(x)), 2) }] })
        .outputs,
    ).toHaveLength(1);
  });

  it('a windowed field must be an element field the kernel reads and never writes', () => {
    expect(() => kernel({ name: 'k', outputs: out(), windowed: ['g'] })).toThrow(
      'kernel k: windowed field g must be a read-only element field the kernel reads',
    );
    expect(() =>
      kernel({
        name: 'k',
        outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.neg(x) }],
        windowed: ['x'],
      }),
    ).toThrow(/windowed field x/);
    expect(() =>
      kernel({
        name: 'k',
        outputs: [{ field: 't', storage: 'f32', axis: 'group', value: d.field('s', 'f32', 'group') }],
        windowed: ['s'],
      }),
    ).toThrow(/windowed field s/);
    expect(kernel({ outputs: out(d.add(x, d.field('g', 'f32'))), windowed: ['g'] }).windowed).toEqual(['g']);
  });

  it('fields are listed once each in first-use order, and groupMax levels nest', () => {
    const m1 = d.groupMax(d.abs(x));
    const m2 = d.groupMax(d.div(x, m1));
    const k = kernel({ outputs: out(d.add(d.mul(x, m2), d.field('z', 'f32'))) });
    expect(fieldsRead(k).map((f) => f.field)).toEqual(['x', 'z']);
    expect(groupLevels(k)).toEqual([[m1], [m2]]);
  });
});
