/// <reference types="@webgpu/types" />
// bench/gpu.ts's correctness half: before any speed is believed, every built-in × scale storage ×
// master bits steps on WebGPU and on the JS backend (WebAssembly engine) from the same state, and
// every stored value is compared. The same bounds as test/conformance-optimizers.test.ts: codes
// within ±1, master weights within 2·S/Q (two correction quanta; one bf16 ulp without correction).

import type { FieldArray } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import * as d from '../dsl/ops.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { prng, uniformF32 } from '../props/prng.ts';
import type { Backend } from '../runtime/backends/backend.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { toBf16 } from '../runtime/codecs.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import { conformanceConfigs, halfUlpBf16 } from '../test/problems.ts';

// The conformance suite's configurations (test/conformance-optimizers.test.ts).
export const configs = conformanceConfigs;

const stored = async (o: Session<Hyper>) =>
  Object.fromEntries(
    await Promise.all(o.fields.map(async (f) => [f.name, await o.readField(f.name)] as const)),
  ) as Record<string, FieldArray>;

/**
 * Step s's bf16 gradients for tensors w (n − 37) and b (37); step 1's carry NaN and ±Inf, skipped
 * alike on both. w's last quarter is 0 at every step: all-zero groups (states 0, scale 2^-126),
 * which a fast path must take as ordinary data (docs/bench-gpu.md §9).
 */
function grads(n: number, s: number): Record<string, Uint16Array> {
  const g = { w: toBf16(uniformF32(n - 37, 10 + s, 0.02)), b: toBf16(uniformF32(37, 20 + s, 0.02)) };
  g.w.fill(0, ((n - 37) * 3) >> 2);
  if (s === 1) {
    g.w[3] = 0x7fc0;
    g.w[100] = 0x7f80;
    g.b[5] = 0xff80;
  }
  return g;
}

export interface CheckResult {
  readonly key: string;
  readonly identical: number;
  readonly codes: number;
  readonly params: number;
  readonly nonFiniteAgree: boolean;
  readonly ok: boolean;
}

/** One configuration, `steps` steps at n params, on `gpu` against a fresh JsBackend. */
export async function checkConfig(
  gpu: WebGpuBackend,
  c: (typeof configs)[number],
  n: number,
  steps = 3,
): Promise<CheckResult> {
  const params = () => ({ w: uniformF32(n - 37, 1), b: uniformF32(37, 2) });
  const opts = { scale: c.scale, masterWeightBits: c.bits };
  const js = await createOptimizer(c.def, params(), { ...opts, backend: new JsBackend() });
  const dev = await createOptimizer(c.def, params(), { ...opts, backend: gpu });
  let same = 0,
    total = 0,
    codes = 0,
    worst = 0,
    nonFiniteAgree = true;
  for (let s = 0; s < steps; s++) {
    await dev.load(await js.save());
    const g = grads(n, s);
    const [a0, b0] = [await dev.nonFinite(), await js.nonFinite()];
    await dev.step(g);
    await js.step(g);
    nonFiniteAgree &&= (await dev.nonFinite()) - a0 === (await js.nonFinite()) - b0;
    const [got, want] = [await stored(dev), await stored(js)];
    for (const f of dev.fields) {
      const x = got[f.name]!,
        y = want[f.name]!;
      for (let i = 0; i < y.length; i++) {
        total++;
        if (Object.is(x[i], y[i])) same++;
        else if (f.owner !== 'p' && f.axis === 'element') codes = Math.max(codes, Math.abs(x[i]! - y[i]!));
      }
    }
    const [pa, pb] = [await dev.exportFp32(), await js.exportFp32()];
    for (const t of Object.keys(pb))
      pb[t]!.forEach((y, i) => {
        const quantum = c.bits === null ? 2 * halfUlpBf16(y) : (2 * halfUlpBf16(y)) / (c.bits === 24 ? 127 : 32767);
        worst = Math.max(worst, Math.abs(pa[t]![i]! - y) / quantum);
      });
  }
  return {
    key: c.key,
    identical: same / total,
    codes,
    params: worst,
    nonFiniteAgree,
    ok: nonFiniteAgree && codes <= 1 && worst <= 1,
  };
}

/** f32 ÷, √ and a·b + c on 2^16 random pairs: how many results differ from the JS backend's. */
/** ÷, √ and a·b + c on n random pairs with exponents in ±`span` (operands of every magnitude AdamW meets at 126). */
export async function arithmetic(gpu: Backend, n = 1 << 16, span = 20): Promise<string> {
  const a = d.field('a', 'f32'),
    b = d.field('b', 'f32'),
    r = prng(3);
  const k = kernel({
    name: 'arith',
    outputs: [
      { field: 'q', storage: 'f32', axis: 'element', value: d.div(a, b) },
      { field: 's', storage: 'f32', axis: 'element', value: d.sqrt(d.abs(a)) },
      { field: 'p', storage: 'f32', axis: 'element', value: d.add(d.mul(a, b), 0.1) },
    ],
  });
  const rand = () => Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 2 * span - span));
  const input = { a: rand(), b: rand() };
  const outputs = async (be: Backend) => {
    const prog = await be.compile(k),
      bufs: Record<string, ReturnType<Backend['alloc']>> = {};
    for (const f of ['a', 'b', 'q', 's', 'p']) bufs[f] = be.alloc('f32', n);
    await be.write(bufs.a!, input.a);
    await be.write(bufs.b!, input.b);
    await be.run(prog, {
      bindings: bufs,
      uniforms: uniformTable(prog.prepared, [{}]),
      rowOf: null,
      groups: [0, n / 32],
      length: n,
    });
    return Promise.all(['q', 's', 'p'].map((f) => be.read(bufs[f]!)));
  };
  const [x, y] = [await outputs(gpu), await outputs(new JsBackend())];
  const differ = (i: number) => {
    let c = 0;
    x[i]!.forEach((v, j) => {
      if (!Object.is(v, y[i]![j])) c++;
    });
    return c;
  };
  return `÷ ${differ(0)}, √ ${differ(1)}, a·b+c ${differ(2)} of ${n} differ from JS`;
}

/**
 * The device gradient paths on this GPU: three steps with gradients in GPUBuffers (f32, converted
 * on the device; bf16, copied; written into the arena) store exactly what host gradients store.
 */
export async function checkDeviceGradients(
  gpu: WebGpuBackend,
  def: OptimizerDef,
  n: number,
): Promise<{ ok: boolean; summary: string }> {
  const params = () => ({ w: uniformF32(n - 38, 1), b: uniformF32(37, 2) });
  const host = await createOptimizer(def, params(), { backend: gpu });
  const ways = ['f32', 'bf16', 'arena'] as const;
  const devs = await Promise.all(ways.map(() => createOptimizer(def, params(), { backend: gpu })));
  const made: GPUBuffer[] = [];
  const buffer = (data: Float32Array | Uint16Array) => {
    const bytes = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    const b = gpu.device.createBuffer({ size: bytes.byteLength, usage: 0x80 | 0x4 | 0x8 });
    gpu.device.queue.writeBuffer(b, 0, bytes);
    made.push(b);
    return b;
  };
  let differ = 0,
    total = 0;
  try {
    for (let s = 0; s < 3; s++) {
      const g = { w: uniformF32(n - 38, 10 + s, 0.02), b: uniformF32(37, 20 + s, 0.02) };
      if (s === 1) [g.w[3], g.b[5]] = [NaN, -Infinity];
      await host.step(g);
      await devs[0]!.step({ w: { buffer: buffer(g.w), dtype: 'f32' }, b: { buffer: buffer(g.b), dtype: 'f32' } });
      await devs[1]!.step({
        w: { buffer: buffer(toBf16(g.w)), dtype: 'bf16' },
        b: { buffer: buffer(toBf16(g.b)), dtype: 'bf16' },
      });
      const at = devs[2]!.deviceGradients();
      for (const [k, v] of Object.entries(g)) {
        const bits = toBf16(v),
          bytes = new Uint8Array(Math.ceil(bits.byteLength / 4) * 4);
        bytes.set(new Uint8Array(bits.buffer));
        gpu.device.queue.writeBuffer(at[k]!.buffer as GPUBuffer, at[k]!.offset!, bytes);
      }
      await devs[2]!.step(at);
      const want = await stored(host);
      for (const dev of devs) {
        const got = await stored(dev);
        for (const f of host.fields)
          want[f.name]!.forEach((x, i) => {
            total++;
            if (!Object.is(x, got[f.name]![i])) differ++;
          });
      }
    }
    const counts = await Promise.all([host, ...devs].map((o) => o.nonFinite()));
    const ok = differ === 0 && counts.every((c) => c === counts[0]);
    return {
      ok,
      summary: `${total - differ} of ${total} stored values identical to host gradients; non-finite counts ${counts.join(', ')}${ok ? '' : '  FAIL'}`,
    };
  } finally {
    for (const o of [host, ...devs]) await o.dispose();
    for (const b of made) b.destroy();
  }
}
