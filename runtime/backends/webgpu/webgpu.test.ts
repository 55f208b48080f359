// The WebGPU backend's own behaviour (agreement with JS is test/conformance.test.ts's job):
// the OSR workaround, clear errors, a lost device, and the WGSL renderer's exact literals.
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import * as d from '../../../dsl/ops.ts';
import { kernel } from '../../../compiler/ir/kernel.ts';
import { compile } from '../../../compiler/render/js/compile.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import { wgslLiteral } from '../../../compiler/render/wgsl/ops.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import { findAdapter } from './device.ts';
import { WebGpuBackend } from './webgpu.ts';
import { flashKernel } from '../../webgpu-flash.ts';

const hasAdapter = (await findAdapter()) !== null;

describe('WGSL renderer', () => {
  test('literals are exact: −0, NaN, Inf, subnormals, i32 MIN', () => {
    expect(wgslLiteral(-0, 'f32')).toBe('bitcast<f32>(0x80000000u)');
    expect(wgslLiteral(NaN, 'f32')).toBe('f32_bits(0x7fc00000u)');
    expect(wgslLiteral(-Infinity, 'f32')).toBe('f32_bits(0xff800000u)');
    expect(wgslLiteral(2 ** -140, 'f32')).toBe('bitcast<f32>(0x200u)');
    expect(wgslLiteral(Math.fround(0.1), 'f32')).toBe(`${Math.fround(0.1)}f`);
    expect(wgslLiteral(-2147483648, 'i32')).toBe('bitcast<i32>(0x80000000u)');
    expect(wgslLiteral(4294967295, 'u32')).toBe('4294967295u');
  });

  test('FlashAdamW: 8 elements a thread, 16-byte accesses for bf16 fields, tables for the 8-bit decodes, no barriers', () => {
    const w = renderWgsl(prepare(flashKernel({ optimizer: 'adamw' })), { subgroupMinSize: 32 });
    expect([w.threadsPerGroup, w.elementsPerThread]).toEqual([4, 8]);
    expect(w.fields.filter((f) => f.storage === 'u16' && f.axis === 'element').every((f) => f.access === 'vec4')).toBe(true);
    const w16 = renderWgsl(prepare(flashKernel({ optimizer: 'adamw' })), { subgroupMinSize: 32, elementsPerThread: 16 });
    expect(w16.fields.filter((f) => f.axis === 'element').every((f) => f.access === 'vec4')).toBe(true);
    expect(w.tables!.length).toBe(3 * 256);
    expect(w.source).toContain('subgroupShuffleXor');
    expect(w.source).not.toContain('Barrier');
  });

  test('without subgroups a group is one invocation', () => {
    const w = renderWgsl(prepare(flashKernel({ optimizer: 'sgd' })), {});
    expect([w.threadsPerGroup, w.elementsPerThread]).toEqual([1, 32]);
    expect(w.source).not.toContain('subgroup');
  });
});

describe.runIf(hasAdapter)('WebGPU backend', () => {
  test('a 500 ms busy loop after device creation does not kill the process (OSR off), 4 runs', () => {
    for (let i = 0; i < 4; i++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'runtime/backends/webgpu/osr.child.ts'], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }, stdio: ['ignore', 'pipe', 'ignore'] });
      expect(out).toMatch(/^ok /m);
    }
  });

  test('errors name what failed', async () => {
    const gpu = await WebGpuBackend.create();
    const k = kernel({ name: 'scale', outputs: [{ field: 'x', storage: 'u16', axis: 'element', value: d.add(d.field('x', 'u16'), d.field('y', 'u16')) }] });
    const prog = await gpu.compile(k);
    const x = gpu.alloc('u16', 64);
    const U = compile(k).uniformTable([{}]);
    await expect(gpu.run(prog, { bindings: { x }, uniforms: U, rowOf: null, groups: [0, 2], length: 64 })).rejects.toThrow(/field y is not bound/);
    await expect(gpu.run(prog, { bindings: { x, y: gpu.alloc('f32', 64) }, uniforms: U, rowOf: null, groups: [0, 2], length: 64 })).rejects.toThrow(/field y is u16, bound to a f32 buffer/);
    await expect(gpu.run(prog, { bindings: { x, y: gpu.alloc('u16', 10) }, uniforms: U, rowOf: null, groups: [0, 2], length: 64 })).rejects.toThrow(/field y has 10 entries, needs 64/);
    await expect(gpu.write(x, new Float32Array(4))).rejects.toThrow(/u16 buffer needs a Uint16Array/);
    gpu.dispose();
  });

  test('sub-word writes and reads at odd offsets keep the neighbours', async () => {
    const gpu = await WebGpuBackend.create();
    const b = gpu.alloc('i8', 11);
    await gpu.write(b, Int8Array.from({ length: 11 }, (_, i) => i - 5));
    await gpu.write(b, Int8Array.of(-100, 100), 3);
    expect([...(await gpu.read(b, 1, 6))]).toEqual([-4, -3, -100, 100, 0, 1]);
    gpu.dispose();
  });

  test('a lost device is a clear error, not a hang', async () => {
    const gpu = await WebGpuBackend.create();
    const k = kernel({ name: 'inc', outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }] });
    const prog = await gpu.compile(k);
    const x = gpu.alloc('f32', 64);
    gpu.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await expect(gpu.run(prog, { bindings: { x }, uniforms: compile(k).uniformTable([{}]), rowOf: null, groups: [0, 2], length: 64 })).rejects.toThrow(/device was lost/);
    await expect(gpu.read(x)).rejects.toThrow(/device was lost/);
  });
});
