// Parameters updated where the caller keeps them (DeviceParam, paramDtype 'f32'): the framework's
// own f32 weights are the master copy, so the arena holds no parameter field. A launch binds each
// tensor's buffer shifted to where the arena would hold the tensor (Backend.shift), so the fused
// kernel reads and writes it at the same index as any arena field: one launch per tensor (per
// chunk it spans), its length cut at the tensor's end so the padding after it is never touched.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';
import { shown } from '../optim/define.ts';
import type { Layout, TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer } from './backends/backend.ts';
import type { Chunk } from './chunks.ts';
import { pieces } from './chunks.ts';
import type { Work } from './io.ts';
import { read, write } from './io.ts';
import type { DeviceParam } from './on-device.ts';

export type InPlace = ReadonlyMap<TensorSlot, DeviceBuffer>;

/** Each device parameter wrapped as the backend's buffer; null when the params are host arrays. */
export function deviceParams(
  b: Backend,
  l: Layout,
  entries: readonly { readonly name: string; readonly device?: DeviceParam }[],
): InPlace | null {
  if (!entries.some((e) => e.device)) return null;
  if (!b.wrap || !b.shift || !b.view)
    throw new TypeError(
      `createOptimizer: device parameters need a backend with device buffers (WebGpuBackend); this optimizer runs on ${b.name}`,
    );
  const out = new Map<TensorSlot, DeviceBuffer>();
  for (const e of entries) {
    const t = l.byName.get(e.name)!;
    try {
      out.set(t, b.wrap(e.device!.buffer, 'f32', t.length, e.device!.offset ?? 0));
    } catch (err) {
      (err as Error).message = `createOptimizer: param ${shown(e.name)}: ${(err as Error).message}`;
      throw err;
    }
  }
  return out;
}

/** A launch's share of tensor pieces: chunk-local groups, the launch length, and the param binding. */
export interface ParamLaunch {
  readonly groups: readonly [number, number];
  readonly length: number;
  readonly param: DeviceBuffer;
}

/** The launches over groups [a, z) (arena groups) of chunk c: one per tensor piece there. */
export function paramLaunches(
  b: Backend,
  inPlace: InPlace,
  chunks: readonly Chunk[],
  c: Chunk,
  groupSize: number,
  [a, z]: readonly [number, number],
): ParamLaunch[] {
  const out: ParamLaunch[] = [];
  const G = groupSize,
    c0 = c.groups[0];
  for (const [t, buf] of inPlace) {
    if (t.groups[1] <= a || t.groups[0] >= z) continue;
    for (const p of pieces(chunks, t.offset, t.length, G)) {
      if (p.chunk !== c) continue;
      // Tensors and chunks start on group boundaries: p.at is a whole number of groups.
      const g0 = Math.max(p.at / G, a - c0),
        g1 = Math.min(Math.ceil((p.at + p.length) / G), z - c0);
      if (g0 >= g1) continue;
      const part = p.from === 0 && p.length === buf.length ? buf : b.view!(buf, 'f32', p.from * 4, p.length);
      out.push({ groups: [g0, g1], length: p.at + p.length, param: b.shift!(part, p.at) });
    }
  }
  return out;
}

/** Values [start, start + length) of the arena's parameter axis, from the tensors' own buffers (0 between them). */
export function* readInPlace(inPlace: InPlace, start: number, length: number): Work<FieldArray> {
  const out = new arrayFor.f32(length);
  for (const [t, buf] of inPlace) {
    const a = Math.max(start, t.offset),
      z = Math.min(start + length, t.offset + t.length);
    if (a < z) out.set((yield read(buf, a - t.offset, z - a)) as Float32Array, a - start);
  }
  return out;
}

/** `data` into the tensors' own buffers from arena element `start` (what lands between tensors is dropped). */
export function* writeInPlace(inPlace: InPlace, start: number, data: FieldArray): Work<void> {
  if (!(data instanceof Float32Array))
    throw new TypeError(`parameters on the device hold f32 values, got a ${data.constructor.name}`);
  for (const [t, buf] of inPlace) {
    const a = Math.max(start, t.offset),
      z = Math.min(start + data.length, t.offset + t.length);
    if (a < z) yield write(buf, data.subarray(a - start, z - start), a - t.offset);
  }
}
