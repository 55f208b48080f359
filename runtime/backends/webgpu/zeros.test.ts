// Signed zeros, NaN and Inf where a driver may assume none exist (WGSL lets it): each case is one
// the oracle and lavapipe once disagreed on, stored by the backend and compared bit for bit
// (test/harness.ts prints −0 as "-0"). The renderer's defences are in compiler/render/wgsl:
// f32_bits for literals, | P.never on values the driver could compute (render.ts `fixed`, bool
// and integer casts to f32, a select of the bits of ±0 made a float).
import { describe, expect, test } from 'vitest';
import * as d from '../../../dsl/ops.ts';
import { kernel } from '../../../compiler/ir/kernel.ts';
import { caseOf, differences, onBackend, onOracle } from '../../../test/harness.ts';
import { findAdapter } from './device.ts';
import { WebGpuBackend } from './webgpu.ts';

const adapter = await findAdapter();

describe.runIf(adapter !== null)('signed zeros, NaN and Inf on WebGPU', () => {
  test('−0, 0·x, x/0, f32 → bool of NaN and bitcasts of NaN store what the oracle stores (lavapipe got each wrong once)', async () => {
    const gpu = await WebGpuBackend.create();
    const a = d.field('a', 'f32'),
      nz = d.constant('f32', -0),
      z = d.constant('f32', 0);
    const k = kernel({
      name: 'edges',
      groupSize: 1,
      outputs: [
        { field: 'z', storage: 'f32', axis: 'element', value: nz },
        { field: 'm', storage: 'f32', axis: 'element', value: d.mul(nz, a) },
        { field: 'p', storage: 'f32', axis: 'element', value: d.mul(z, a) },
        { field: 'r', storage: 'f32', axis: 'element', value: d.div(a, z) },
        {
          field: 'b',
          storage: 'u32',
          axis: 'element',
          value: d.select(d.cast('bool', a), d.constant('u32', 1), d.constant('u32', 0)),
        },
        {
          field: 'q',
          storage: 'u32',
          axis: 'group',
          value: d.bitcast(
            'u32',
            d.groupMax(d.bitcast('f32', d.select(d.isNan(a), d.constant('i32', -1), d.constant('i32', 0)))),
          ),
        },
      ],
    });
    const n = 6,
      c = caseOf(
        k,
        {
          a: Float32Array.from([0, -0, NaN, 1, -Infinity, 2 ** -140]),
          z: new Float32Array(n),
          m: new Float32Array(n),
          p: new Float32Array(n),
          r: new Float32Array(n),
          b: new Uint32Array(n),
          q: new Uint32Array(n),
        },
        n,
      );
    const got = await onBackend(gpu, c),
      want = onOracle(c);
    expect(differences(got, want).first).toEqual([]);
    expect(Object.is(got.arrays.z![0], -0) && Object.is(got.arrays.m![0], -0)).toBe(true);
    expect([...got.arrays.b!]).toEqual([0, 0, 1, 1, 1, 1]);
    expect(got.arrays.q![2]).toBe(0x7fc00000);
    gpu.dispose();
  });

  // ne(true, isFinite(0)) is decided false: the casts render as values the driver computes at compile
  // time, and lavapipe folded +0 · −1 (or · −2^−149, CI's counterexample) to +0. The last is
  // decided by the driver alone: f32(b) of a run-time bool b is never −1 (CI's second counterexample).
  const never = () => d.ne(d.constant('bool', 1), d.isFinite(d.groupMax(d.abs(d.constant('f32', 0)))));
  const runtimeBool = () => d.lt(d.constant('f32', 0), d.field('y', 'f32', 'group'));
  test.each([
    ['a bool cast to f32', () => d.cast('f32', never())],
    ['a bool cast to u32, then to f32', () => d.cast('f32', d.cast('u32', never()))],
    ['eq(−1, f32(b)) cast to f32', () => d.cast('f32', d.eq(d.constant('f32', -1), d.cast('f32', runtimeBool())))],
  ])('a +0 decided at compile time (%s) times −1 stores −0, as the oracle does', async (_, decide) => {
    const gpu = await WebGpuBackend.create();
    const decided = decide();
    const k = kernel({
      name: 'decided',
      groupSize: 2,
      outputs: [
        { field: 'y', storage: 'f32', axis: 'group', value: d.mul(decided, d.groupMax(d.constant('f32', -1))) },
      ],
    });
    const c = caseOf(k, { y: new Float32Array(2) }, 4);
    const got = await onBackend(gpu, c),
      want = onOracle(c);
    expect(differences(got, want).first).toEqual([]);
    expect(Object.is(got.arrays.y![0], -0)).toBe(true);
    gpu.dispose();
  });

  // conformance-kernels (webgpu, seed 45882071): an integer the driver can prove is 0
  // ((−40 >> 1) / 1199693204), made a float, times a run-time −2^−149: lavapipe folded 0.0 · x
  // to +0; the oracle stores −0.
  test('an integer 0 the driver can prove, made a float, times −2^−149 stores −0', async () => {
    const gpu = await WebGpuBackend.create();
    const s = d.field('s', 'f32', 'group');
    // true ≠ (true ∨ b) is false for every b: the IR keeps it, the driver does not.
    const never = d.ne(d.constant('bool', 1), d.or(d.constant('bool', 1), d.lt(d.groupMax(d.constant('f32', 108)), s)));
    const k1 = d.select(never, d.constant('u32', 490635256), d.constant('u32', 1));
    const zero = d.cast('f32', d.div(d.shr(d.constant('i32', -40), k1), d.constant('i32', 1199693204)));
    const k = kernel({
      name: 'int-zero',
      groupSize: 1,
      outputs: [{ field: 'n', storage: 'f32', axis: 'group', value: d.mul(zero, s) }],
    });
    const c = caseOf(k, { s: Float32Array.from([0, -(2 ** -149), 0]), n: new Float32Array(3) }, 3);
    const got = await onBackend(gpu, c),
      want = onOracle(c);
    expect(differences(got, want).first).toEqual([]);
    expect(Object.is(got.arrays.n![1], -0)).toBe(true);
    gpu.dispose();
  });

  // conformance-kernels (webgpu-driver, seed 761467407): a select of −0's bits, made a float, then
  // abs: the driver knows one arm is +0 and moved the sum into the select, folding +0 + (−0) to −0.
  test.each([
    ['exact', true],
    ['exact: false', false],
  ])('abs of a select of −0 bits plus −0 stores +0 (%s)', async (_, exact) => {
    const gpu = await WebGpuBackend.create({ exact });
    const y = d.field('y', 'f32', 'group');
    const bits = d.select(
      d.lt(d.groupMax(d.constant('f32', 72)), y),
      d.constant('u32', 1928113968),
      d.constant('u32', 0x80000000),
    );
    const k = kernel({
      name: 'zero-arm',
      groupSize: 1,
      outputs: [
        { field: 'y', storage: 'f32', axis: 'group', value: d.add(d.groupMax(d.abs(d.bitcast('f32', bits))), y) },
      ],
    });
    const c = caseOf(k, { y: Float32Array.from([-0, -0, 1, -0]) }, 4);
    const got = await onBackend(gpu, c),
      want = onOracle(c);
    expect(differences(got, want).first).toEqual([]);
    expect(Object.is(got.arrays.y![0], 0)).toBe(true);
    gpu.dispose();
  });
});
