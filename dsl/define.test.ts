import { expect, test } from 'vitest';
import { defineCodec } from './define.ts';
import { add, constant, f32, field, groupMax, mul, u32 } from './ops.ts';

const ok = {
  fields: [{ name: '', storage: 'f32', axis: 'element' }] as const,
  decode: ([x]: readonly ReturnType<typeof field>[]) => x!,
  encode: (v: ReturnType<typeof field>) => [v],
};

test('a valid codec passes through, group inferred', () => {
  const c = defineCodec({ name: 'plain', ...ok });
  expect(c.group).toBe(false);
  expect(c.fields).toEqual(ok.fields);
  const g = defineCodec({
    name: 'scaled',
    fields: [
      { name: '', storage: 'f32', axis: 'element' },
      { name: 'scale', storage: 'f32', axis: 'group' },
    ],
    decode: ([x, s]) => mul(x!, s!),
    encode: (v) => [v, groupMax(v)],
  });
  expect(g.group).toBe(true);
});

test('clear errors naming the codec and the field', () => {
  expect(() => defineCodec({ ...ok, name: 'a', fields: [] })).toThrow(
    /defineCodec\(a\): fields must be a non-empty array/,
  );
  expect(() =>
    defineCodec({ ...ok, name: 'b', fields: [{ name: '', storage: 'f16' as 'f32', axis: 'element' }] }),
  ).toThrow(/field 0 \(""\): storage must be one of/);
  expect(() =>
    defineCodec({ ...ok, name: 'c', fields: [{ name: '', storage: 'f32', axis: 'row' as 'group' }] }),
  ).toThrow(/axis must be 'element' or 'group', got "row"/);
  expect(() =>
    defineCodec({
      ...ok,
      name: 'd',
      fields: [
        { name: '', storage: 'f32', axis: 'element' },
        { name: '', storage: 'u8', axis: 'element' },
      ],
    }),
  ).toThrow(/used twice/);
  expect(() => defineCodec({ ...ok, name: 'e', fields: [{ name: 'scale', storage: 'f32', axis: 'group' }] })).toThrow(
    /at least one element-axis field/,
  );
  expect(() => defineCodec({ ...ok, name: 'f', decode: () => u32(constant('f32', 1)) })).toThrow(
    /decode must return an f32 expression, got a u32 expression/,
  );
  expect(() => defineCodec({ ...ok, name: 'g', encode: (v) => [v, v] })).toThrow(/encode must return 1 expressions/);
  expect(() =>
    defineCodec({ ...ok, name: 'h', fields: [{ name: '', storage: 'u8', axis: 'element' }], decode: ([x]) => f32(x!) }),
  ).toThrow(/field "" \(u8\) must be a u32, got a f32 expression/);
  expect(() =>
    defineCodec({
      name: 'i',
      fields: [
        { name: '', storage: 'f32', axis: 'element' },
        { name: 'scale', storage: 'f32', axis: 'group' },
      ],
      decode: ([x]) => x!,
      encode: (v) => [v, add(v, 1)],
    }),
  ).toThrow(/group field "scale" depends on the element value outside groupMax/);
  expect(() =>
    defineCodec({
      ...ok,
      name: 'j',
      group: false,
      fields: [
        { name: '', storage: 'f32', axis: 'element' },
        { name: 's', storage: 'f32', axis: 'group' },
      ],
      encode: (v) => [v, groupMax(v)],
    }),
  ).toThrow(/group is false/);
});
