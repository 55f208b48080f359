// The arena in chunks. A device limits what one buffer and one binding may hold (Chrome: 256 MiB
// and 128 MiB unless asked; Android often 128 MiB), so the arena is split into chunks of whole
// groups that fit, one launch each. A chunk is ONE allocation holding every stored field of its
// groups (element fields first, then group fields, each at a 256-byte boundary) reached through
// views, so a kernel binds it once per access class (runtime/backends/webgpu/encode.ts); its
// gradient and its group → row table are allocations of their own (read-only bindings). Chunk
// boundaries fall on tensor boundaries unless a tensor is larger than a chunk. A backend without
// views gets one buffer per field; a backend without limits, one chunk.

import { storageBytes } from '../compiler/ir/kernel.ts';
import type { FieldSlot, Layout } from './arena.ts';
import type { Backend, DeviceBuffer } from './backends/backend.ts';
import type { Work } from './io.ts';
import { write } from './io.ts';

export interface Chunk {
  /** Its groups in the arena, [start, end). */
  readonly groups: readonly [number, number];
  /** Its first element in the arena (groups[0] · groupSize) and its element count. */
  readonly offset: number;
  readonly length: number;
  /** Every stored field for its groups, indexed from the chunk's first element (or group). */
  readonly buffers: Readonly<Record<string, DeviceBuffer>>;
  /** Group (chunk-local) → its tensor's uniform row. */
  readonly rowOf: DeviceBuffer;
  /** What the chunk allocated: freed with it. */
  readonly owned: readonly DeviceBuffer[];
}

const ALIGN = 256;
const align = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

/** Bytes of `slots` for `groups` groups, each field at a 256-byte boundary. */
export function packedBytes(slots: readonly FieldSlot[], groups: number, groupSize: number): number {
  return slots.reduce((s, f) => s + align(storageBytes[f.storage] * groups * (f.axis === 'group' ? 1 : groupSize)), 0);
}

/** The largest chunk, in groups: a multiple of `step`, with every allocation and binding within the limits. */
function chunkGroups(b: Backend, l: Layout, slots: readonly FieldSlot[], grads: readonly FieldSlot[]): number {
  if (!b.limits) return Infinity;
  const max = Math.min(b.limits.maxBufferBytes, b.limits.maxBindingBytes);
  // Chunk edges at whole 256-byte blocks of every field, so views and windows stay aligned.
  const step = ALIGN / gcd(l.groupSize, ALIGN);
  // Per group, the widest single allocation a launch binds: the state, the gradient, or the
  // f32 value buffer of import and export.
  const fits = (k: number) =>
    packedBytes(slots, k, l.groupSize) <= max &&
    packedBytes(grads, k, l.groupSize) <= max &&
    k * l.groupSize * 4 <= max &&
    k * 4 <= max;
  let k = step;
  if (!fits(k))
    throw new RangeError(
      `the device binds at most ${max} bytes at once, less than a chunk of ${k} groups of ${l.groupSize} needs`,
    );
  // Largest multiple of `step` that fits (the byte counts grow monotonically with k).
  let hi = Math.max(step, Math.floor(max / l.groupSize / step) * step + step);
  while (hi - k > step) {
    const mid = Math.floor((k + hi) / 2 / step) * step;
    if (fits(mid)) k = mid;
    else hi = mid;
  }
  return k;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Chunk edges: tensors stay whole unless larger than a chunk, which is then cut at whole chunks. */
export function chunkEdges(l: Layout, k: number): [number, number][] {
  if (!Number.isFinite(k) || k >= l.groups) return [[0, l.groups]];
  const out: [number, number][] = [];
  let start = 0;
  for (const t of l.tensors) {
    const [g0, g1] = t.groups;
    if (g1 - start <= k) continue; // it fits in the open chunk
    if (g0 > start) {
      out.push([start, g0]); // close the open chunk before this tensor
      start = g0;
    }
    while (g1 - start > k) {
      out.push([start, start + k]);
      start += k;
    }
  }
  if (start < l.groups || out.length === 0) out.push([start, l.groups]);
  return out;
}

/** Allocate every chunk (zero-filled), with its views and its row table; frees all again if anything fails. */
export function* allocateChunks(
  b: Backend,
  l: Layout,
  slots: readonly FieldSlot[],
  grads: readonly FieldSlot[],
): Work<Chunk[]> {
  const edges = chunkEdges(l, chunkGroups(b, l, slots, grads));
  const chunks: Chunk[] = [];
  const owned: DeviceBuffer[] = [];
  try {
    for (const [g0, g1] of edges) {
      const n = g1 - g0;
      const buffers: Record<string, DeviceBuffer> = {};
      const mine: DeviceBuffer[] = [];
      const alloc = (storage: Parameters<Backend['alloc']>[0], len: number) => {
        const x = b.alloc(storage, len);
        mine.push(x);
        owned.push(x);
        return x;
      };
      for (const group of [slots, grads]) {
        if (group.length === 0) continue;
        if (b.view) {
          // One allocation, element fields first: a kernel binds them as one range.
          const ordered = [...group].sort((x, y) => Number(x.axis === 'group') - Number(y.axis === 'group'));
          const raw = alloc('u8', packedBytes(ordered, n, l.groupSize));
          let at = 0;
          for (const f of ordered) {
            const len = f.axis === 'group' ? n : n * l.groupSize;
            buffers[f.name] = b.view(raw, f.storage, at, len);
            at += align(len * storageBytes[f.storage]);
          }
        } else
          for (const f of group) {
            buffers[f.name] = alloc(f.storage, f.axis === 'group' ? n : n * l.groupSize);
          }
      }
      const rowOf = alloc('u32', n);
      const rows = new Uint32Array(n);
      for (const t of l.tensors) {
        const a = Math.max(t.groups[0], g0),
          z = Math.min(t.groups[1], g1);
        if (a < z) rows.fill(t.row, a - g0, z - g0);
      }
      yield write(rowOf, rows);
      chunks.push({ groups: [g0, g1], offset: g0 * l.groupSize, length: n * l.groupSize, buffers, rowOf, owned: mine });
    }
    return chunks;
  } catch (e) {
    for (const x of owned) b.free(x);
    throw e;
  }
}

/** A run of a range within one chunk: `at` is chunk-local, `from` counts from the range's start. */
export interface Piece {
  readonly chunk: Chunk;
  readonly at: number;
  readonly from: number;
  readonly length: number;
}

/** The pieces of [start, start + length) of an element axis (or, with `groups`, of the group axis). */
export function pieces(
  chunks: readonly Chunk[],
  start: number,
  length: number,
  groupSize: number,
  groups = false,
): Piece[] {
  const out: Piece[] = [];
  const unit = groups ? 1 : groupSize;
  for (const c of chunks) {
    const c0 = c.groups[0] * unit,
      c1 = c.groups[1] * unit;
    const a = Math.max(start, c0),
      z = Math.min(start + length, c1);
    if (a < z) out.push({ chunk: c, at: a - c0, from: a - start, length: z - a });
  }
  return out;
}
