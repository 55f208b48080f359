// The arena: every tensor packed into one buffer per stored field, each tensor starting on a group
// boundary (padded with zeros to a multiple of the group size), so groups never straddle tensors
// and one dispatch covers the whole model. A table maps each group to its tensor's uniform row.

import type { Codec } from '../dsl/codec.ts';
import { storedName } from '../dsl/codec.ts';
import type { Storage } from '../compiler/ir/ir.ts';
import { storageBytes } from '../compiler/ir/kernel.ts';
import type { Backend, DeviceBuffer } from './backends/backend.ts';

export interface TensorSlot {
  readonly name: string;
  readonly shape: readonly number[];
  /** Real element count (without padding). */
  readonly length: number;
  /** First element in the arena (a multiple of the group size). */
  readonly offset: number;
  /** Its groups, [start, end). */
  readonly groups: readonly [number, number];
  /** Its uniform row (one row per tensor: per-tensor step counts and per-group hyperparameters). */
  readonly row: number;
}

export interface FieldSlot {
  readonly name: string;
  readonly storage: Storage;
  readonly axis: 'element' | 'group';
  readonly owner: string;
}

export interface Layout {
  readonly groupSize: number;
  readonly tensors: readonly TensorSlot[];
  readonly byName: ReadonlyMap<string, TensorSlot>;
  /** Padded element count and group count of the whole arena. */
  readonly length: number;
  readonly groups: number;
  /** Real parameter count. */
  readonly params: number;
}

export function layout(
  entries: readonly { name: string; shape: readonly number[]; length: number }[],
  groupSize: number,
): Layout {
  const tensors: TensorSlot[] = [];
  let offset = 0;
  entries.forEach((e, row) => {
    const g0 = offset / groupSize;
    const padded = Math.ceil(e.length / groupSize) * groupSize;
    tensors.push({
      name: e.name,
      shape: e.shape,
      length: e.length,
      offset,
      groups: [g0, g0 + padded / groupSize],
      row,
    });
    offset += padded;
  });
  return {
    groupSize,
    tensors,
    byName: new Map(tensors.map((t) => [t.name, t])),
    length: offset,
    groups: offset / groupSize,
    params: entries.reduce((s, e) => s + e.length, 0),
  };
}

/** The stored fields of a codec for one logical field (`m` → `m`, `m_scale`). */
export function fieldSlots(owner: string, c: Codec): FieldSlot[] {
  return c.fields.map((f) => ({ name: storedName(owner, f), storage: f.storage, axis: f.axis, owner }));
}

/** Allocate one buffer per field (zero-filled), plus the group → row table. */
export async function allocate(backend: Backend, l: Layout, slots: readonly FieldSlot[]) {
  const buffers: Record<string, DeviceBuffer> = {};
  for (const s of slots) buffers[s.name] = backend.alloc(s.storage, s.axis === 'group' ? l.groups : l.length);
  const rows = new Uint32Array(l.groups);
  for (const t of l.tensors) rows.fill(t.row, t.groups[0], t.groups[1]);
  const rowOf = backend.alloc('u32', l.groups);
  await backend.write(rowOf, rows);
  return { buffers, rowOf };
}

/** Bytes a field holds in the arena. */
export const slotBytes = (l: Layout, s: FieldSlot): number =>
  storageBytes[s.storage] * (s.axis === 'group' ? l.groups : l.length);
