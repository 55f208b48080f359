// What an optimizer holds on its backend, field by field and in all: Session.memory().

import { storageBytes } from '../compiler/ir/kernel.ts';
import type { Hyper } from '../optim/define.ts';
import type { DeviceBuffer } from './backends/backend.ts';
import type { Held } from './held.ts';

export interface Memory {
  /** Bytes each stored field holds on the device (as the backend holds them: gpu.js keeps f32 arrays). */
  readonly fields: Readonly<Record<string, number>>;
  readonly total: number;
  readonly params: number;
  readonly bytesPerParam: number;
  readonly perParam: Readonly<Record<string, number>>;
  /**
   * Every byte the optimizer holds on the device: the fields, the 256-byte alignment of each
   * field in each chunk, the group → row tables (4 bytes a group) and the counters.
   */
  readonly allocated: number;
  readonly allocatedPerParam: number;
  /** With gradient release: the largest gradient held at once, only during stepTensor. */
  readonly transientGradBytes: number;
}

/** The memory figures of `state`. */
export function memoryOf<H extends Hyper>(state: Held<H>): Memory {
  const s = state,
    l = s.layout;
  const fields: Record<string, number> = {};
  const held = (b: DeviceBuffer) => s.backend.bytes?.(b) ?? b.length * storageBytes[b.storage];
  // A view's bytes are its values; a buffer of its own is as the backend holds it (gpu.js: f32).
  const bytes = (b: DeviceBuffer) => (s.backend.view ? b.length * storageBytes[b.storage] : held(b));
  for (const c of s.chunks)
    for (const [name, b] of Object.entries(c.buffers)) fields[name] = (fields[name] ?? 0) + bytes(b);
  const total = Object.values(fields).reduce((a, b) => a + b, 0);
  // Reduction partials (runtime/reductions.ts): one f32 per group and reduction, allocated, not a
  // field; with a device combine, its tables and results too.
  const partials = [...(s.reductions?.owned ?? []), ...(s.reductions?.device?.owned ?? [])];
  const allocated = s.chunks.reduce(
    (a, c) => a + c.owned.reduce((x, b) => x + held(b), 0),
    held(s.counters) + partials.reduce((x, b) => x + held(b), 0),
  );
  const largest = Math.max(0, ...l.tensors.map((t) => (t.groups[1] - t.groups[0]) * l.groupSize));
  const per = (x: number) => (l.params > 0 ? x / l.params : 0);
  return {
    fields,
    total,
    params: l.params,
    bytesPerParam: per(total),
    allocated,
    allocatedPerParam: per(allocated),
    perParam: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, per(v)])),
    transientGradBytes: s.options.gradientRelease ? largest * storageBytes[s.gradSlots[0]!.storage] : 0,
  };
}
