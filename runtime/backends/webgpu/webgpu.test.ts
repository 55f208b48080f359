// The WebGPU backend's own behaviour (agreement with the oracle is test/conformance-*.test.ts's job):
// the WGSL renderer's shape and literals (signed zeros and NaN: zeros.test.ts), the OSR workaround,
// options, clear errors (another backend's buffers included), the pipeline cache, kernel timing
// and a lost device.
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import * as d from '../../../dsl/ops.ts';
import { kernel } from '../../../compiler/ir/kernel.ts';
import { prepare, uniformTable } from '../../../compiler/ir/pipeline.ts';
import { wgslLiteral } from '../../../compiler/render/wgsl/ops.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import { adamw, sgd } from '../../../optim/index.ts';
import { fusedKernel } from '../../../optim/storage.ts';
import { JsBackend } from '../js/js.ts';
import { findAdapter } from './device.ts';
import type { Program } from '../backend.ts';
import type { GpuBuffer, WebGpuOptions } from './webgpu.ts';
import { WebGpuBackend } from './webgpu.ts';
import { checkOnDevice } from './options.ts';

const adapter = await findAdapter();
const hasAdapter = adapter !== null;
const hasTimestamps = adapter?.features.has('timestamp-query') === true;
if (hasAdapter && !hasTimestamps)
  console.log(
    `webgpu.test: adapter ${adapter.info.description} has no 'timestamp-query': only the refusal of timestamps: true is tested`,
  );

const inc = kernel({
  name: 'inc',
  outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }],
});
/** A launch of `p` over the first n elements, every group, one row of uniforms. */
const launchOf = (p: Program, bindings: Record<string, GpuBuffer>, n: number) => ({
  bindings,
  uniforms: uniformTable(p.prepared, [{}]),
  rowOf: null,
  groups: [0, Math.ceil(n / 32)] as const,
  length: n,
});

describe('WGSL renderer', () => {
  test('literals are exact: −0, NaN, Inf, subnormals, i32 MIN', () => {
    expect(wgslLiteral(-0, 'f32')).toBe('f32_bits(0x80000000u)');
    expect(wgslLiteral(NaN, 'f32')).toBe('f32_bits(0x7fc00000u)');
    expect(wgslLiteral(-Infinity, 'f32')).toBe('f32_bits(0xff800000u)');
    expect(wgslLiteral(2 ** -140, 'f32')).toBe('bitcast<f32>(0x200u)');
    expect(wgslLiteral(Math.fround(0.1), 'f32')).toBe(`${Math.fround(0.1)}f`);
    expect(wgslLiteral(-2147483648, 'i32')).toBe('bitcast<i32>(0x80000000u)');
    expect(wgslLiteral(4294967295, 'u32')).toBe('4294967295u');
  });

  test('AdamW (fusedKernel, default storage): 8 elements a thread, 16-byte accesses for bf16 fields, tables for the 8-bit decodes, no barriers', () => {
    const p = prepare(fusedKernel(adamw()));
    const w = renderWgsl(p, { subgroupMinSize: 32 });
    expect([w.threadsPerGroup, w.elementsPerThread]).toEqual([4, 8]);
    expect(w.fields.filter((f) => f.storage === 'u16' && f.axis === 'element').map((f) => [f.field, f.access])).toEqual(
      [
        ['g', 'vec4'],
        ['p', 'vec4'],
      ],
    );
    const w16 = renderWgsl(p, { subgroupMinSize: 32, elementsPerThread: 16 });
    expect(w16.fields.filter((f) => f.axis === 'element').every((f) => f.access === 'vec4')).toBe(true);
    // The correction q/Q·2^-8 (one table for both of its forms, dsl/master.ts), m and v.
    expect(w.tables!.length).toBe(3 * 256);
    expect(w.source).toContain('subgroupShuffleXor');
    expect(w.source).not.toContain('Barrier');
  });

  test('without subgroups a group is one invocation', () => {
    const w = renderWgsl(prepare(fusedKernel(sgd({ momentum: 0.9 }))), {});
    expect([w.threadsPerGroup, w.elementsPerThread]).toEqual([1, 32]);
    expect(w.source).not.toContain('subgroup');
  });

  test('exact mode (fused fma) spells ÷, √ and guarded products with the exact helpers; exact: false does not', () => {
    const p = prepare(fusedKernel(adamw()));
    const main = (s: string) => s.slice(s.indexOf('@compute'));
    const body = (o: Parameters<typeof renderWgsl>[1]) => main(renderWgsl(p, { subgroupMinSize: 32, ...o }).source);
    const split = renderWgsl(p, { subgroupMinSize: 32, fusedFma: true, split: true });
    const exact = body({ fusedFma: true }),
      fast = main(split.source),
      fallback = main(split.fallback!.source),
      driver = body({ fusedFma: true, exact: false }),
      unfused = body({ fusedFma: false });
    for (const h of ['rcp_of(', 'div_cr', 'sqrt_cr(', 'keep(']) expect(exact, h).toContain(h);
    // 1/scale (the 8-bit encodes) is the per-thread reciprocal itself, RN(1/b): no second division.
    expect(exact).toMatch(/let g\d+ = rc\d+\.r;/);
    expect(exact).not.toMatch(/div_rcp\(1f,/);
    expect(renderWgsl(p, { subgroupMinSize: 32, fusedFma: true }).fallback).toBeNull();
    // split: true, the fast half reports a result that is not the correctly rounded one (`_f`, no
    // branch); its fallback half has the branches.
    for (const h of ['rcp_of_f(', 'div_cr', 'sqrt_cr_f(', 'keep(']) expect(fast, h).toContain(h);
    for (const h of ['rcp_of(', 'div_cr', 'sqrt_cr(', 'keep(']) expect(fallback, h).toContain(h);
    // The fast half stores a subgroup's scales together (the shuffles of layout.ts gatheredStore);
    // the fallback's groups store theirs alone: its unflagged groups' lanes have left, and a driver
    // may give its pipeline another subgroup size than the fast half's.
    expect(fast).toContain('subgroupShuffle(');
    expect(fallback).not.toContain('subgroupShuffle(');
    for (const h of ['div_rcp', 'div_cr', 'sqrt_cr', 'keep(']) expect(driver, h).not.toContain(h);
    // Without a fused fma the residuals are not exact: the driver's ÷ and √, products still kept.
    expect(unfused).not.toContain('rcp_of(');
    expect(unfused).toContain('keep(');
  });
});

describe.runIf(hasAdapter)('WebGPU backend', () => {
  test('a 500 ms busy loop after device creation does not kill the process (OSR off), 4 runs', () => {
    for (let i = 0; i < 4; i++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', 'runtime/backends/webgpu/osr.child.ts'], {
        encoding: 'utf8',
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(out).toMatch(/^ok /m);
    }
  });

  test('errors name what failed', async () => {
    const gpu = await WebGpuBackend.create();
    const k = kernel({
      name: 'scale',
      outputs: [
        { field: 'x', storage: 'u16', axis: 'element', value: d.add(d.field('x', 'u16'), d.field('y', 'u16')) },
      ],
    });
    const prog = await gpu.compile(k);
    const x = gpu.alloc('u16', 64);
    await expect(gpu.run(prog, launchOf(prog, { x }, 64))).rejects.toThrow(/run scale: field y is not bound/);
    await expect(gpu.run(prog, launchOf(prog, { x, y: gpu.alloc('f32', 64) }, 64))).rejects.toThrow(
      /field y is u16, bound to a f32 buffer/,
    );
    await expect(gpu.run(prog, launchOf(prog, { x, y: gpu.alloc('u16', 10) }, 64))).rejects.toThrow(
      /field y has 10 entries, needs 64/,
    );
    await expect(gpu.run(prog, { ...launchOf(prog, { x, y: x }, 64), groups: [0, 3] })).rejects.toThrow(
      /groups \[0, 3\) outside \[0, 2\)/,
    );
    await expect(gpu.write(x, new Float32Array(4))).rejects.toThrow(/u16 buffer needs a Uint16Array/);
    gpu.dispose();
  });

  test("another backend's buffers and programs are refused, by name", async () => {
    const gpu = await WebGpuBackend.create(),
      other = await WebGpuBackend.create(),
      js = new JsBackend({ engine: 'js' });
    const prog = await gpu.compile(inc);
    const fromJs = js.alloc('f32', 64) as never,
      fromOther = other.alloc('f32', 64) as never;
    await expect(gpu.run(prog, launchOf(prog, { x: fromJs }, 64))).rejects.toThrow(
      /webgpu.run inc: field x is not a buffer of this backend \(it belongs to backend js \(engine js\)\)/,
    );
    await expect(gpu.run(prog, launchOf(prog, { x: fromOther }, 64))).rejects.toThrow(
      /field x is not a buffer of this backend \(it belongs to backend webgpu\)/,
    );
    await expect(
      gpu.run(prog, { ...launchOf(prog, { x: gpu.alloc('f32', 64) }, 64), rowOf: fromOther }),
    ).rejects.toThrow(/rowOf is not a buffer of this backend/);
    await expect(gpu.write(fromOther, new Float32Array(4))).rejects.toThrow(
      /webgpu.write: the target buffer is not a buffer of this backend/,
    );
    await expect(gpu.read(fromJs)).rejects.toThrow(/webgpu.read: the source buffer is not a buffer of this backend/);
    expect(() => gpu.free(fromOther)).toThrow(/webgpu.free: the buffer is not a buffer of this backend/);
    await expect(other.run(prog, launchOf(prog, { x: other.alloc('f32', 64) }, 64))).rejects.toThrow(
      /webgpu.run inc: the program was compiled by another backend/,
    );
    gpu.dispose();
    other.dispose();
  });

  test('options: unknown names and wrong values are refused, naming them', async () => {
    const create = (o: unknown) => WebGpuBackend.create(o as WebGpuOptions);
    await expect(create({ legacy: true })).rejects.toThrow(
      /unknown option legacy \(the options are device, elementsPerThread, workgroupSize, exact, splitKernels, timestamps, maxBindingSize, reductionBlockGroups\)/,
    );
    await expect(create({ twoPass: true })).rejects.toThrow(/unknown option twoPass/);
    await expect(create({ maxBindingSize: 1000 })).rejects.toThrow(
      /maxBindingSize must be a positive multiple of 256 bytes, got 1000/,
    );
    await expect(create({ exact: 'yes' })).rejects.toThrow(/exact must be true or false, got "yes"/);
    await expect(create({ splitKernels: 1 })).rejects.toThrow(/splitKernels must be true or false, got 1/);
    for (const v of [1000, 32, 131072])
      await expect(create({ reductionBlockGroups: v })).rejects.toThrow(
        new RegExp(`reductionBlockGroups must be a power of two from 64 to 65536, got ${v}`),
      );
    await expect(create({ elementsPerThread: 2.5 })).rejects.toThrow(
      /elementsPerThread must be a positive integer, got 2.5/,
    );
    await expect(create({ workgroupSize: 1 << 20 })).rejects.toThrow(
      /workgroupSize 1048576 exceeds this device's maxComputeInvocationsPerWorkgroup/,
    );
    // A value only a kernel can refuse: named with the kernel at compile time.
    const gpu = await WebGpuBackend.create({ elementsPerThread: 3 });
    await expect(gpu.compile(inc)).rejects.toThrow(
      /webgpu.compile inc: wgsl: elementsPerThread 3 must divide groupSize 32/,
    );
    gpu.dispose();
  });

  test('compile caches by the prepared kernel: structurally equal kernels share one program; the options shape it', async () => {
    const make = () =>
      kernel({
        name: 'inc',
        outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }],
      });
    const gpu = await WebGpuBackend.create({ elementsPerThread: 4 });
    const [a, b] = [await gpu.compile(make()), await gpu.compile(make())];
    expect(a).toBe(b);
    expect(a.wgsl.elementsPerThread).toBe(4);
    expect(
      await gpu.compile(
        kernel({
          name: 'inc',
          outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 2) }],
        }),
      ),
    ).not.toBe(a);
    const x = gpu.alloc('f32', 100);
    await gpu.run(a, launchOf(a, { x }, 100));
    expect([...(await gpu.read(x, 97, 3))]).toEqual([1, 1, 1]);
    gpu.dispose();
  });

  test('sub-word writes and reads at odd offsets keep the neighbours', async () => {
    const gpu = await WebGpuBackend.create();
    const b = gpu.alloc('i8', 11);
    await gpu.write(
      b,
      Int8Array.from({ length: 11 }, (_, i) => i - 5),
    );
    await gpu.write(b, Int8Array.of(-100, 100), 3);
    expect([...(await gpu.read(b, 1, 6))]).toEqual([-4, -3, -100, 100, 0, 1]);
    gpu.dispose();
  });

  test.runIf(hasTimestamps)(
    'timestamps: true records the GPU time of each launch, within its wall time; counters still come back',
    async () => {
      const gpu = await WebGpuBackend.create({ timestamps: true }),
        plain = await WebGpuBackend.create();
      const n = 1 << 20,
        x = gpu.alloc('f32', n),
        prog = await gpu.compile(inc);
      await gpu.run(prog, launchOf(prog, { x }, n)); // the first launch pays for the pipeline's first use
      const t0 = performance.now();
      await gpu.run(prog, launchOf(prog, { x }, n));
      const wall = performance.now() - t0;
      expect(gpu.kernelTimes).toHaveLength(2);
      expect(gpu.kernelTimes[1]).toBeGreaterThan(0);
      expect(gpu.kernelTimes[1]).toBeLessThanOrEqual(wall);
      expect([...(await gpu.read(x, 0, 2))]).toEqual([2, 2]);
      // A kernel with a counter: the timestamps and the counter share one read-back.
      const neg = kernel({
        name: 'neg',
        outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.neg(d.field('x', 'f32')) }],
        counters: [{ name: 'pos', value: d.lt(0, d.field('x', 'f32')) }],
      });
      const p2 = await gpu.compile(neg);
      expect(await gpu.run(p2, launchOf(p2, { x }, 1000))).toEqual([1000]);
      expect(gpu.kernelTimes).toHaveLength(3);
      const px = plain.alloc('f32', 64),
        pp = await plain.compile(inc);
      await plain.run(pp, launchOf(pp, { x: px }, 64));
      expect(plain.kernelTimes).toEqual([]);
      gpu.dispose();
      plain.dispose();
    },
  );

  test('timestamps: true is refused where the device has no timestamp-query (checked on a device without it)', () => {
    const info = {
      adapter: 'a test adapter',
      subgroupMinSize: 0,
      device: { features: new Set<string>(), limits: { maxComputeInvocationsPerWorkgroup: 256 } },
    };
    expect(() => checkOnDevice({ timestamps: true }, info as never)).toThrow(
      /timestamps: true needs the 'timestamp-query' feature, which adapter a test adapter does not offer/,
    );
    expect(() => checkOnDevice({ workgroupSize: 512 }, info as never)).toThrow(/workgroupSize 512 exceeds/);
    expect(() => checkOnDevice({}, info as never)).not.toThrow();
  });

  test('a lost device is a clear error, not a hang', async () => {
    const gpu = await WebGpuBackend.create();
    const prog = await gpu.compile(inc);
    const x = gpu.alloc('f32', 64);
    gpu.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await expect(gpu.run(prog, launchOf(prog, { x }, 64))).rejects.toThrow(/device was lost/);
    await expect(gpu.read(x)).rejects.toThrow(/device was lost/);
  });
});
